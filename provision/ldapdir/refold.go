package ldapdir

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-ldap/ldap/v3"
)

// refolder brings the "name <fold>" values that entries record up to the
// current provision.NormalizeName once per process, before the first name
// check or folded lookup: an entry written while the fold kept accents
// records "name àlice", and a new "alice" must find it. Until it has run
// successfully, each name check tries it again.
type refolder struct {
	mu   sync.Mutex
	done bool
}

// refoldNames rewrites the recorded fold of every entry whose fold is not
// its user name's current one (entries of other tools, which record none,
// are left alone).
func (s *Store) refoldNames(ctx context.Context) error {
	s.refold.mu.Lock()
	defer s.refold.mu.Unlock()
	if s.refold.done {
		return nil
	}
	attr := s.l.cfg.StateAttribute
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"("+attr+"="+ldap.EscapeFilter(stateName)+"*)", s.l.userAttributes(), nil), true)
	if err != nil {
		return fmt.Errorf("ldapdir: read recorded name folds: %w", err)
	}
	for _, e := range res.Entries {
		st := parseState(e.GetEqualFoldAttributeValues(attr))
		u := s.l.user(e, st)
		if u.UserName == "" {
			continue
		}
		add, del := st.nameChange(u.UserName)
		if len(add) == 0 && len(del) == 0 {
			continue
		}
		req := ldap.NewModifyRequest(e.DN, nil)
		if len(add) > 0 {
			req.Add(attr, add)
		}
		if len(del) > 0 {
			req.Delete(attr, del)
		}
		if err := s.modify(ctx, req); err != nil {
			return fmt.Errorf("ldapdir: record the name fold of %s: %w", e.DN, err)
		}
	}
	s.refold.done = true
	return nil
}
