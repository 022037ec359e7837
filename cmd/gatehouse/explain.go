package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/provision/sqldir"
	"gatehouse/proxy"
	"gatehouse/scim"
	"gatehouse/session"
)

// explainCommand validates a saved SAML response offline and prints the
// identity, the user record the mapping makes of it, and what a login
// would write to the store. It writes nothing anywhere.
func explainCommand(ctx context.Context, configPath, idpName, responsePath, userinfoPath, at string, stdout, stderr io.Writer) int {
	f, report := readConfig(configPath, os.LookupEnv)
	if err := report.Err(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var pol *IdPConfig
	for i := range f.IdPs {
		if f.IdPs[i].Name == idpName {
			pol = &f.IdPs[i]
		}
	}
	if pol == nil {
		fmt.Fprintf(stderr, "gatehouse explain: no IdP called %q in %s\n", idpName, configPath)
		return 1
	}
	raw, err := os.ReadFile(responsePath)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse explain:", err)
		return 1
	}
	var userinfo []byte
	if userinfoPath != "" {
		if pol.Kind != session.KindOIDC {
			fmt.Fprintln(stderr, "gatehouse explain: --userinfo is for OpenID providers")
			return 2
		}
		if userinfo, err = os.ReadFile(userinfoPath); err != nil {
			fmt.Fprintln(stderr, "gatehouse explain:", err)
			return 1
		}
	}
	doc := raw
	if pol.Kind != session.KindOIDC {
		if doc, err = decodeResponse(raw); err != nil {
			fmt.Fprintf(stderr, "gatehouse explain: %s: %v\n", responsePath, err)
			return 1
		}
	}
	var when time.Time
	switch at {
	case "", "issued":
	case "now":
		when = time.Now()
	default:
		if when, err = time.Parse(time.RFC3339, at); err != nil {
			fmt.Fprintf(stderr, "gatehouse explain: --at: want issued, now or an RFC 3339 time, got %q\n", at)
			return 2
		}
	}
	sm, err := session.New(ctx, f.Session, session.Options{Logger: zap.NewNop(), Pages: proxy.NewPages(zap.NewNop())})
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse explain:", err)
		return 1
	}
	var id session.Identity
	var used time.Time
	what, valid, instant := "response", "signature, issuer, audience, recipient, times", "IssueInstant"
	if pol.Kind == session.KindOIDC {
		what, valid, instant = "id token", "signature, issuer, audience, azp, times; not the nonce, which only the login knew", "iat"
		id, used, err = sm.ExplainIDToken(ctx, doc, userinfo, idpName, when)
	} else {
		id, used, err = sm.Explain(doc, idpName, when)
	}
	w := &explainWriter{w: stdout}
	if err != nil {
		w.line("%s: REFUSED at %s", what, used.UTC().Format(time.RFC3339))
		w.line("  %v", err)
		return 1
	}
	w.line("%s: valid (%s) at %s", what, valid, used.UTC().Format(time.RFC3339))
	if at == "" || at == "issued" {
		w.line("  checked as at its %s; --at now checks it as it would be now", instant)
	}
	w.line("identity:")
	w.line("  idp            %s (%s)", id.IdP, id.EntityID)
	w.line("  name id        %s", id.NameID)
	w.line("  name id format %s", id.NameIDFormat)
	if id.SessionIndex != "" {
		w.line("  session index  %s", id.SessionIndex)
	}
	w.line("  attributes:")
	for _, name := range slices.Sorted(maps.Keys(id.Attributes)) {
		w.line("    %s = %s", name, strings.Join(id.Attributes[name], " | "))
	}
	l, err := pol.Mapping.Map(provision.Assertion{IdP: id.EntityID, NameID: id.NameID, NameIDFormat: id.NameIDFormat, Attributes: id.Attributes})
	if err != nil {
		w.line("mapping: REFUSED: %v", err)
		return 1
	}
	w.line("mapped user (idps[%s].mapping):", idpName)
	w.line("  key            %s %s", l.Key.Kind, l.Key.Subject)
	for _, name := range slices.Sorted(maps.Keys(l.Claims.Fields)) {
		w.line("  %-14s %q", name, l.Claims.Fields[name])
	}
	for _, name := range slices.Sorted(maps.Keys(l.Claims.Extra)) {
		w.line("  %-14s %q (extra)", name, l.Claims.Extra[name])
	}
	if l.Claims.HasGroups {
		w.line("  %-14s %s", "groups", strings.Join(l.Claims.Groups, ", "))
	}
	return explainStore(ctx, f, l, w)
}

// explainStore prints what a login would write, reading the store only.
func explainStore(ctx context.Context, f *File, l provision.Login, w *explainWriter) int {
	st, name, err := openReadOnly(ctx, f)
	if err != nil {
		w.line("store: %v", err)
		return 1
	}
	if st == nil {
		w.line("store (%s): no database yet: a login would create the user with the fields above", name)
		return 0
	}
	defer st.Close()
	pl, ok := st.(provision.Planner)
	if !ok {
		w.line("store (%s): cannot preview a login's writes; the mapped user above is what a login would send it", name)
		return 0
	}
	if f.SCIM != nil {
		// A login leaves alone the fields SCIM owns: the same list serve
		// gives the proxy.
		sc, err := scim.NewServer(f.SCIM.Config, st, scim.Options{})
		if err != nil {
			w.line("scim: %v", err)
			return 1
		}
		l.Reserved = sc.OwnedFields()
	}
	res, err := pl.Plan(ctx, l)
	switch {
	case errors.Is(err, provision.ErrDisabled):
		w.line("store (%s): a login would be REFUSED: the user is deactivated or was deleted over SCIM", name)
		return 0
	case errors.Is(err, provision.ErrNotFound):
		w.line("store (%s): a login would be REFUSED: the user does not exist and no_create is set", name)
		return 0
	case errors.Is(err, provision.ErrConflict), errors.Is(err, provision.ErrInvalid):
		w.line("store (%s): a login would be REFUSED (rejected): %v", name, err)
		return 0
	case err != nil:
		w.line("store (%s): %v", name, err)
		return 1
	}
	switch res.Outcome {
	case provision.Unchanged:
		w.line("store (%s): unchanged: user %s; a login would write nothing", name, res.User.ID)
		explainKept(res, w)
		return 0
	case provision.Created:
		w.line("store (%s): a login would CREATE the user, writing: %s", name, strings.Join(res.Changed, ", "))
	case provision.Linked:
		w.line("store (%s): a login would LINK this identity to the existing user %s and write: %s", name, res.User.ID,
			strings.Join(cmpOr(res.Changed, []string{"nothing else"}), ", "))
	default:
		w.line("store (%s): a login would UPDATE user %s: %s", name, res.User.ID, strings.Join(res.Changed, ", "))
	}
	for _, field := range res.Changed {
		if field == provision.FieldGroups {
			w.line("  %-14s %s", field, strings.Join(res.User.Groups, ", "))
			continue
		}
		w.line("  %-14s %q", field, res.User.Field(field))
	}
	explainKept(res, w)
	return 0
}

// explainKept names each asserted field a login would leave alone, and
// why: "kept: email (owned by SCIM)".
func explainKept(res provision.Result, w *explainWriter) {
	for _, k := range res.Kept {
		w.line("  kept: %s; the store keeps %q", k, res.User.Field(k.Field))
	}
}

func cmpOr(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// openReadOnly opens the configured store without creating or migrating
// anything: nil when a SQLite file does not exist yet.
func openReadOnly(ctx context.Context, f *File) (provision.Store, string, error) {
	if f.Store.LDAP != nil {
		st, err := ldapdir.New(*f.Store.LDAP)
		return st, "ldap", err
	}
	for name, c := range f.Store.sql() {
		if name == sqldir.SQLite {
			if _, err := os.Stat(c.Path); errors.Is(err, os.ErrNotExist) {
				return nil, name, nil
			}
		}
		if c.Mapped != nil {
			st, err := sqldir.OpenMapped(ctx, *c, sqldir.WithoutMigration())
			return st, name, err
		}
		st, err := sqldir.Open(ctx, *c, sqldir.WithoutMigration())
		return st, name, err
	}
	return nil, "", errors.New("no store configured")
}

// decodeResponse accepts the XML of a response, its base64 form, or a
// form body or URL query holding SAMLResponse=..., as copied from a
// browser's developer tools.
func decodeResponse(raw []byte) ([]byte, error) {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, "<") {
		return []byte(s), nil
	}
	if strings.Contains(s, "SAMLResponse=") {
		q, err := url.ParseQuery(s[strings.Index(s, "SAMLResponse="):])
		if err != nil {
			return nil, fmt.Errorf("form: %w", err)
		}
		s = q.Get("SAMLResponse")
	} else if strings.Contains(s, "%") {
		if u, err := url.QueryUnescape(s); err == nil {
			s = u
		}
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	doc, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("neither XML nor base64")
	}
	if !bytes.HasPrefix(bytes.TrimSpace(doc), []byte("<")) {
		return nil, errors.New("the base64 does not decode to XML")
	}
	return doc, nil
}

type explainWriter struct{ w io.Writer }

func (e *explainWriter) line(format string, a ...any) { fmt.Fprintf(e.w, format+"\n", a...) }
