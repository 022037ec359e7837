package session

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Explain validates a saved response from the IdP called idpName as the
// ACS would have at the instant at (zero: the response's IssueInstant),
// with the same checks except those that need the browser: no login state
// (its InResponseTo is taken as the request it answers) and no replay
// cache. It returns the identity and the instant used.
//
// It is for the offline `gatehouse explain` command, and is safe while the
// Manager serves: the instant is handed to the checks (validate), and
// neither the Manager's clock nor crewjam/saml's package clock
// (saml.TimeNow, saml.Clock) is touched. No check of the ACS path reads
// crewjam/saml's clock: gatehouse verifies responses itself (verify.go).
func (m *Manager) Explain(doc []byte, idpName string, at time.Time) (Identity, time.Time, error) {
	sh, err := precheck(doc)
	if err != nil {
		return Identity{}, at, fmt.Errorf("structure: %w", err)
	}
	in := m.byName[idpName]
	if in == nil {
		names := make([]string, 0, len(m.byName))
		for n := range m.byName {
			names = append(names, n)
		}
		slices.Sort(names)
		return Identity{}, at, fmt.Errorf("no IdP called %q (configured: %s)", idpName, strings.Join(names, ", "))
	}
	if sh.issuer != in.cfg.EntityID {
		return Identity{}, at, fmt.Errorf("issuer: the response comes from %q, not %s's %q", sh.issuer, idpName, in.cfg.EntityID)
	}
	if at.IsZero() {
		if at, err = time.Parse(time.RFC3339Nano, sh.issueInstant); err != nil {
			return Identity{}, at, errors.New("structure: the response has no valid IssueInstant; give the instant to check at")
		}
	}
	var requestIDs []string
	unsolicited := sh.inResponseTo == ""
	if !unsolicited {
		requestIDs = []string{sh.inResponseTo}
	}
	id, _, f := m.validate(in, sh, requestIDs, unsolicited, at)
	if f != nil {
		return Identity{}, at, fmt.Errorf("%s: %w", f.Reason, f.Err)
	}
	if err := acceptedContext(in, nil, id.AuthnContext); err != nil {
		return Identity{}, at, fmt.Errorf("authn_context: %w", err)
	}
	return id, at, nil
}
