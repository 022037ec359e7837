package ldapdir

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
)

// Store is a provision.Store over an LDAP directory (OpenLDAP, 389 DS,
// Active Directory). Users are found by an IdP-scoped identity key kept in
// the state attribute; their ID is the directory's immutable anchor
// (entryUUID, or objectGUID on AD), so renames and moves keep sessions.
type Store struct {
	l     *layout
	p     *pool
	stats counters
	// emptyRefused: the directory refused a group without members once,
	// so the last member's removal asks for the placeholder up front.
	emptyRefused atomic.Bool
	now          func() time.Time
	rand         io.Reader
	// turns serializes this process's logins of one identity (by a hash
	// of its key; see turn): a directory has no transactions, and a login
	// that read the entry while another was still creating it (its
	// memberships not yet written) would write them again and report the
	// user updated.
	turns [loginTurns]chan struct{}
	// rootDN is the AD domain's root DN, once read (namingContext).
	rootDN atomic.Pointer[string]
}

// loginTurns is the number of turns logins are hashed into.
const loginTurns = 256

// turn waits for the turn of key's logins in this process and returns
// its release; ctx ends the wait.
func (s *Store) turn(ctx context.Context, key provision.Key) (func(), error) {
	h := fnv.New32a()
	for _, part := range []string{key.IdP, key.Kind, key.Subject} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	t := s.turns[h.Sum32()%loginTurns]
	if t == nil { // a Store not made by New (unit tests of its parts)
		return func() {}, nil
	}
	select {
	case t <- struct{}{}:
		return func() { <-t }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ldapdir: waiting for another login of the same identity: %w", ctx.Err())
	}
}

var _ provision.Store = (*Store)(nil)

// Option adjusts a Store.
type Option func(*Store)

// WithClock sets the clock used for pool idle times.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithRandom sets the source of AD passwords.
func WithRandom(r io.Reader) Option { return func(s *Store) { s.rand = r } }

// New builds a Store. It does no network I/O: connections are made on
// first use, so a directory that is down at start-up does not stop
// gatehouse, and the first login after it returns succeeds.
func New(cfg Config, opts ...Option) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldapdir: %w", err)
	}
	l, err := newLayout(cfg)
	if err != nil {
		return nil, fmt.Errorf("ldapdir: %w", err)
	}
	u, _ := url.Parse(cfg.URL)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if cfg.ServerName != "" {
		tc.ServerName = cfg.ServerName
	}
	if cfg.CAFile != "" {
		if tc.RootCAs, err = readCAFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("ldapdir: ca_file: %w", err)
		}
	}
	s := &Store{l: l, now: time.Now, rand: rand.Reader}
	for i := range s.turns {
		s.turns[i] = make(chan struct{}, 1)
	}
	for _, o := range opts {
		o(s)
	}
	l.now = func() time.Time { return s.now() }
	// Called at every dial: the caller's Password re-reads a rotated secret.
	password := cfg.Password
	if password == nil {
		if cfg.BindPasswordFile != "" {
			return nil, errors.New("ldapdir: bind_password_file: not read here; the caller passes Password")
		}
		password = func() (string, error) { return cfg.BindPassword, nil }
	}
	s.p = &pool{
		url: u, startTLS: u.Scheme == "ldap" && !cfg.InsecurePlaintext, tls: tc,
		bindDN: cfg.BindDN, password: password,
		dialTO: cfg.DialTimeout, opTO: cfg.OpTimeout, idleTO: cfg.IdleTimeout,
		slots: make(chan struct{}, cfg.PoolSize), stats: &s.stats, now: func() time.Time { return s.now() },
	}
	return s, nil
}

// readCAFile reads a PEM bundle of CA certificates. A certificate that
// does not parse is named with the reason, rather than the bundle being
// reported as holding none: Samba's self-made certificate, for one, has
// a negative serial number, which Go refuses.
func readCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for i := 1; ; i++ {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			hint := ""
			if strings.Contains(err.Error(), "negative serial") {
				hint = " (Samba's self-made certificate has one: give Samba a certificate from your own CA in tls certfile, keyfile and cafile)"
			}
			return nil, fmt.Errorf("%s: PEM block %d is a certificate Go cannot use: %w%s", path, i, err, hint)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// Stats returns the operations sent so far.
func (s *Store) Stats() Stats { return s.stats.snapshot() }

// Close closes the pooled connections.
func (s *Store) Close() error {
	s.p.close()
	return nil
}

// Ping reads the user base entry.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.readBase(ctx, s.l.cfg.UserBase)
	return err
}

func (s *Store) readBase(ctx context.Context, dn string) (*ldap.Entry, error) {
	res, err := s.search(ctx, ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil), false)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, fmt.Errorf("ldapdir: %s %w", dn, errNoBase)
	}
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("ldapdir: %s is not readable by the bind DN", dn)
	}
	return res.Entries[0], nil
}

func (s *Store) search(ctx context.Context, req *ldap.SearchRequest, paged bool) (*ldap.SearchResult, error) {
	var res *ldap.SearchResult
	err := s.p.do(ctx, func(c *ldap.Conn) error {
		s.stats.searches.Add(1)
		var err error
		r := *req
		r.Controls = slices.Clone(req.Controls)
		if paged {
			res, err = c.SearchWithPaging(&r, uint32(s.l.cfg.PageSize))
		} else {
			res, err = c.Search(&r)
		}
		return err
	})
	return res, err
}

func (s *Store) modify(ctx context.Context, req *ldap.ModifyRequest) error {
	return s.p.do(ctx, func(c *ldap.Conn) error {
		s.stats.modifies.Add(1)
		return c.Modify(req)
	})
}

func (s *Store) add(ctx context.Context, req *ldap.AddRequest) error {
	return s.p.do(ctx, func(c *ldap.Conn) error {
		s.stats.adds.Add(1)
		return c.Add(req)
	})
}

// entry is a user entry with its decoded state.
type entry struct {
	e  *ldap.Entry
	st state
}

// findByKey returns the entry holding the identity key, or nil.
func (s *Store) findByKey(ctx context.Context, k provision.Key) (*entry, error) {
	kv := keyValue(k)
	return s.findOne(ctx, "("+s.l.cfg.StateAttribute+"="+ldap.EscapeFilter(kv)+")", func(st state) bool {
		return slices.Contains(st.keys, kv) // the directory's matching rule may be looser
	})
}

// nameFree fails with ErrConflict when an entry other than the one at
// self holds a user name of the same fold as name. The directory's own
// matching rules decide clashes of the naming attribute; this catches
// what they do not fold (full case folding: "STRASSE" and "straße").
// A clash with an entry holding key (a keyValue, or "") is a concurrent
// first login of the same identity: errRace, so that the caller reads
// again.
func (s *Store) nameFree(ctx context.Context, name, self, key string) error {
	want := nameValue(name)
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		"("+s.l.cfg.StateAttribute+"="+ldap.EscapeFilter(want)+")", []string{s.l.cfg.StateAttribute}, nil), false)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || res == nil {
		return fmt.Errorf("ldapdir: find user name: %w", err)
	}
	for _, e := range res.Entries {
		if self != "" && sameDN(e.DN, self) {
			continue
		}
		st := e.GetEqualFoldAttributeValues(s.l.cfg.StateAttribute)
		if key != "" && slices.Contains(st, key) {
			return errRace
		}
		if slices.Contains(st, want) {
			return fmt.Errorf("ldapdir: user name %q folds like the one of %s: %w", name, e.DN, provision.ErrConflict)
		}
	}
	return nil
}

func sameDN(a, b string) bool {
	x, err1 := ldap.ParseDN(a)
	y, err2 := ldap.ParseDN(b)
	return err1 == nil && err2 == nil && x.EqualFold(y)
}

func (s *Store) findOne(ctx context.Context, filter string, match func(state) bool) (*entry, error) {
	res, err := s.search(ctx, ldap.NewSearchRequest(s.l.cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, s.l.userAttributes(), nil), false)
	if err != nil {
		return nil, fmt.Errorf("ldapdir: find user: %w", err)
	}
	var found *entry
	for _, e := range res.Entries {
		st := parseState(e.GetEqualFoldAttributeValues(s.l.cfg.StateAttribute))
		if !match(st) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("ldapdir: both %s and %s match %s: the directory is inconsistent", found.e.DN, e.DN, filter)
		}
		found = &entry{e, st}
	}
	return found, nil
}

func (s *Store) readDN(ctx context.Context, dn string) (*entry, error) {
	res, err := s.search(ctx, ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", s.l.userAttributes(), nil), false)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, errNoEntry
	}
	if err != nil {
		return nil, fmt.Errorf("ldapdir: read %s: %w", dn, err)
	}
	if len(res.Entries) != 1 {
		return nil, errNoEntry
	}
	e := res.Entries[0]
	return &entry{e, parseState(e.GetEqualFoldAttributeValues(s.l.cfg.StateAttribute))}, nil
}

// errNoBase: a configured base DN is missing.
var errNoBase = errors.New("does not exist")

// errRace means another writer changed the entry between our read and our
// write; the caller starts over from a fresh read.
var errRace = errors.New("ldapdir: concurrent change")

const maxAttempts = 8

// The JIT decision is provision.Decide's. A login here reads what Decide
// needs (find), asks it, and carries out its plan: create adds the entry,
// update writes what differs; a plan of nothing writes nothing. What stays
// here is how the directory does it: memberships reconciled with
// planGroups, state values, renames, AD's enable step, and a new read
// whenever another writer got in between (errRace).

// found is what one login's read found: the provision.Found that Decide
// takes, and what carrying out its plan needs.
type found struct {
	provision.Found
	// login is the login as Decide sees it: on a stored entry, without
	// the fields the directory keeps no attribute for.
	login provision.Login
	// cur is the entry of Found.User or Found.Link; nil when none.
	cur *entry
	// member are cur's groups; owned the memberships its state records as
	// the login's source's.
	member *membership
	owned  map[string]bool
}

// find reads what a login needs: the entry holding its key, with its
// memberships; when there is none, whether the key, user name or external
// ID was deleted over SCIM, the SCIM user the login may link to, and
// whether the user name is taken. dnTaken says that an add of the login's
// entry found its DN held (Provision reads again then); probe reads that
// DN up front (Plan, which adds nothing). An entry holding the DN without
// an identity of this IdP is one to adopt (a Found.Link) when
// adopt_existing allows it; otherwise the name is taken. find writes
// nothing; errRace asks for a new read.
func (s *Store) find(ctx context.Context, l provision.Login, dnTaken, probe bool) (*found, error) {
	f := &found{login: l}
	cur, err := s.findByKey(ctx, l.Key)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		return f, s.target(ctx, f, cur, false)
	}
	if f.Tombstoned, err = s.buried(ctx, l); err != nil || f.Tombstoned {
		return f, err
	}
	if cur, err = s.linkable(ctx, l); err != nil {
		return nil, err
	}
	if cur == nil && (dnTaken || probe) {
		if cur, err = s.adoptable(ctx, f, dnTaken); err != nil {
			return nil, err
		}
	}
	if cur != nil {
		return f, s.target(ctx, f, cur, true)
	}
	if name := l.Claims.Fields[provision.FieldUserName]; name != "" && !l.NoCreate && !f.NameTaken {
		err := s.nameFree(ctx, name, "", keyValue(l.Key))
		switch {
		case errors.Is(err, provision.ErrConflict):
			f.NameTaken = true
		case err != nil:
			return nil, err
		}
	}
	return f, nil
}

// target records cur as the entry the login writes: Found.User, or
// Found.Link when the login would link to it.
func (s *Store) target(ctx context.Context, f *found, cur *entry, link bool) error {
	m, err := s.memberships(ctx, cur.e)
	if err != nil {
		return err
	}
	u := s.l.user(cur.e, cur.st)
	u.Groups = m.names()
	f.cur, f.member, f.owned = cur, m, cur.st.groups[provision.GroupSource(f.login.Key.IdP)]
	held := heldGroups(f.login.Claims, m, f.owned)
	if link {
		f.Link, f.LinkGroups = &u, held
	} else {
		f.User, f.Groups = &u, held
	}
	f.login.Claims = s.l.holdable(f.login.Claims)
	return nil
}

// adoptable reads the entry at the DN a new entry for the login would
// get. With dnTaken an add found it there; without, there may be none.
// An entry holding no identity of this IdP may be adopted when
// adopt_existing is set; any other makes the name taken (f.NameTaken).
func (s *Store) adoptable(ctx context.Context, f *found, dnTaken bool) (*entry, error) {
	var u provision.User
	u.Apply(f.login.Claims)
	if u.Field(s.l.rdnField) == "" {
		return nil, nil // no DN: the create is refused
	}
	if dnTaken && !s.l.cfg.AdoptExisting {
		f.NameTaken = true
		return nil, nil
	}
	cur, err := s.readDN(ctx, s.l.dn(&u))
	switch {
	case errors.Is(err, errNoEntry) && dnTaken:
		return nil, errRace // gone again since the add
	case errors.Is(err, errNoEntry):
		return nil, nil
	case err != nil:
		return nil, err
	case slices.Contains(cur.st.keys, keyValue(f.login.Key)):
		return nil, errRace // created by a login of this key since the read
	}
	prefix := stateKey + f.login.Key.IdP + " "
	if !s.l.cfg.AdoptExisting || slices.ContainsFunc(cur.st.keys, func(k string) bool { return strings.HasPrefix(k, prefix) }) {
		f.NameTaken = true
		return nil, nil
	}
	if err := s.checkUnprotected(ctx, cur.e, "adopt"); err != nil {
		return nil, err
	}
	return cur, nil
}

// Provision performs the JIT upsert for one login: the plan
// provision.Decide makes of what find read, carried out.
func (s *Store) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := s.checkLogin(l); err != nil {
		return provision.Result{}, err
	}
	release, err := s.turn(ctx, l.Key)
	if err != nil {
		return provision.Result{}, err
	}
	defer release()
	enabled := false
	res, err := s.provision(ctx, l, &enabled)
	if err == nil && enabled && res.Outcome == provision.Unchanged {
		// This login wrote: it enabled the account.
		res.Outcome, res.Changed = provision.Updated, []string{provision.FieldActive}
	}
	return res, err
}

// provision is Provision's work, once its turn has come. It sets
// *enabled when it finished enabling an AD account that an earlier login
// had created.
func (s *Store) provision(ctx context.Context, l provision.Login, enabled *bool) (provision.Result, error) {
	dnTaken := false
	for range maxAttempts {
		f, err := s.find(ctx, l, dnTaken, false)
		if errors.Is(err, errRace) {
			continue
		}
		if err != nil {
			return provision.Result{}, err
		}
		if f.cur != nil && s.l.finishable(f.cur.e, f.cur.st) {
			// An AD account created disabled whose enable step was cut
			// off: finish it, then read again.
			_, err := s.enable(ctx, f.cur, true)
			if err != nil && !errors.Is(err, errRace) {
				return provision.Result{}, err
			}
			*enabled = *enabled || err == nil
			continue
		}
		p, err := provision.Decide(f.login, f.Found)
		if err != nil {
			return provision.Result{User: p.Before}, fmt.Errorf("ldapdir: %w", err)
		}
		var res provision.Result
		switch p.Action {
		case provision.ActNothing:
			if f.cur == nil || !f.cur.st.staleName(p.Before.UserName) {
				return p.Result(), nil
			}
			// Nothing of the user changes, but the entry records its name
			// under a fold an older gatehouse computed (or not at all):
			// repair that first, so that the uniqueness checks of other
			// logins see this name as it folds now. The user is unchanged.
			res, err = s.update(ctx, f, l.Key, p, false)
			if err == nil {
				res.Outcome, res.Changed = provision.Unchanged, nil
			}
		case provision.ActCreate:
			res, err = s.create(ctx, l.Key, p)
			if ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
				// A concurrent login created it, or the DN belongs to an
				// entry without this identity: read again to tell.
				dnTaken = true
				continue
			}
		default:
			// After losing the race to create the entry, the memberships
			// its state already records are the creator's to add.
			res, err = s.update(ctx, f, l.Key, p, dnTaken && p.Action == provision.ActUpdate)
		}
		if errors.Is(err, errRace) {
			continue
		}
		return res, err
	}
	return provision.Result{}, fmt.Errorf("ldapdir: user %q kept changing under %d attempts", l.Key.Subject, maxAttempts)
}

var _ provision.Planner = (*Store)(nil)

// Plan says what Provision would do for a login (provision.Planner): the
// same read and the same decision, without a write. The entry at the DN a
// new user would get is read up front, where Provision learns of it from
// its add.
func (s *Store) Plan(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := s.checkLogin(l); err != nil {
		return provision.Result{}, err
	}
	for range maxAttempts {
		f, err := s.find(ctx, l, false, !l.NoCreate)
		if errors.Is(err, errRace) {
			continue
		}
		if err != nil {
			return provision.Result{}, err
		}
		p, err := provision.Decide(f.login, f.Found)
		if err != nil {
			return provision.Result{User: p.Before}, fmt.Errorf("ldapdir: %w", err)
		}
		if p.Action == provision.ActCreate {
			if err := s.l.checkNaming(&p.After); err != nil {
				return provision.Result{}, err
			}
		}
		return p.Result(), nil
	}
	return provision.Result{}, fmt.Errorf("ldapdir: user %q kept changing under %d attempts", l.Key.Subject, maxAttempts)
}

// checkLogin refuses a login whose values no entry of this directory can
// hold, before anything is read or written.
func (s *Store) checkLogin(l provision.Login) error {
	if err := checkKey(l.Key); err != nil {
		return err
	}
	if err := l.Claims.Check(); err != nil {
		return fmt.Errorf("ldapdir: %w", err)
	}
	for f, v := range l.Claims.Fields {
		if err := checkValue(f, v); err != nil {
			return err
		}
	}
	for f, v := range l.Claims.Extra {
		if err := checkValue(f, v); err != nil {
			return err
		}
	}
	for _, g := range l.Claims.Groups {
		if err := checkValue("groups", g); err != nil {
			return err
		}
	}
	return s.l.checkGroups(l.Claims.Groups)
}

// touched lists the fields a login asserts.
func touched(c provision.Claims) map[string]bool {
	t := map[string]bool{}
	for f := range c.Fields {
		t[f] = true
	}
	for f := range c.Extra {
		t[f] = true
	}
	return t
}

// create adds the entry a plan creates, with the login's key and the
// memberships it will own recorded, then joins the groups.
func (s *Store) create(ctx context.Context, key provision.Key, p provision.Plan) (provision.Result, error) {
	u := p.After
	if err := s.l.checkNaming(&u); err != nil {
		return provision.Result{}, err
	}
	req, err := s.l.addRequest(&u, key, p.AddGroups, provision.GroupSource(key.IdP))
	if err != nil {
		return provision.Result{}, err
	}
	if err := s.add(ctx, req); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) || s.l.ad && ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
			return provision.Result{}, s.userClash(ctx, req, &u, err)
		}
		return provision.Result{}, fmt.Errorf("ldapdir: add %s: %w", req.DN, refused(err))
	}
	cur, err := s.readDN(ctx, req.DN)
	if err != nil {
		return provision.Result{}, fmt.Errorf("ldapdir: read back %s: %w", req.DN, err)
	}
	if cur.st.pending {
		if cur, err = s.enable(ctx, cur, true); err != nil {
			return provision.Result{}, err
		}
	}
	res := p.Result()
	res.User = s.l.user(cur.e, cur.st)
	var plan groupPlan
	for _, g := range p.AddGroups {
		plan.add = append(plan.add, groupRef{norm: provision.NormalizeName(g), name: g})
	}
	if res.User.Groups, err = s.applyGroups(ctx, cur.e.DN, plan, nil); err != nil {
		return provision.Result{}, err
	}
	return res, nil
}

// userClash tells why the add of a new user (req) found something already
// there. With an entry at its DN, it is err, which Provision reads as the
// DN taken. Without one, on Active Directory, the new entry's
// sAMAccountName or userPrincipalName is held by another object
// somewhere in the domain (both are unique across it, and the object may
// lie outside user_base, where gatehouse does not look): the login is
// refused with that reason, and nothing is derived in its place. A
// logon name held by another account is a question for an
// administrator: it may be the same person's older account.
func (s *Store) userClash(ctx context.Context, req *ldap.AddRequest, u *provision.User, err error) error {
	if !s.l.ad {
		return err
	}
	sam, name := samAccountName(u.UserName), upn(u.UserName, s.l.cfg.UPNSuffix)
	holder := "another object in the domain"
	if ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) {
		// AD refuses a userPrincipalName held elsewhere as a constraint
		// violation; so it does values past their limits.
		dn := s.logonNameHolder(ctx, sam, name)
		if dn == "" {
			return fmt.Errorf("ldapdir: add %s: %w", req.DN, refused(err))
		}
		holder = dn
	} else if _, rerr := s.readDN(ctx, req.DN); !errors.Is(rerr, errNoEntry) {
		return err // the DN is taken (or unreadable: read again to tell)
	} else if dn := s.logonNameHolder(ctx, sam, name); dn != "" {
		holder = dn
	}
	return fmt.Errorf("ldapdir: user %q: its sAMAccountName %q or userPrincipalName %q is held by %s (Active Directory keeps both unique across the domain): %w",
		u.UserName, sam, name, holder, provision.ErrConflict)
}

// logonNameHolder finds the DN of the object holding a sAMAccountName or
// userPrincipalName anywhere in the domain, or "" when the service account
// cannot see it.
func (s *Store) logonNameHolder(ctx context.Context, sam, upn string) string {
	root, err := s.search(ctx, ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"defaultNamingContext"}, nil), false)
	if err != nil || len(root.Entries) != 1 {
		return ""
	}
	base := root.Entries[0].GetAttributeValue("defaultNamingContext")
	if base == "" {
		return ""
	}
	res, err := s.search(ctx, ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1, 0, false,
		"(|(sAMAccountName="+ldap.EscapeFilter(sam)+")(userPrincipalName="+ldap.EscapeFilter(upn)+"))", []string{"1.1"}, nil), false)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || res == nil || len(res.Entries) == 0 {
		return ""
	}
	return res.Entries[0].DN
}

// update carries out a plan on a stored entry (ActUpdate), or on the
// entry a first login links to (ActLink: the login's key is recorded too):
// the attributes that differ are replaced, the entry is renamed when its
// naming field changed, and the memberships of the login's source are
// reconciled. lostCreate says that this login's add of the entry found
// it created by a concurrent login of the same user. If all that is left
// then is to add the memberships the new entry's state records, the
// creator is adding them too: whichever add lands first, this login
// changed nothing of its own (unchanged).
func (s *Store) update(ctx context.Context, f *found, key provision.Key, p provision.Plan, lostCreate bool) (provision.Result, error) {
	cur, want := f.cur, p.After
	// An account an administrator has since made a domain administrator
	// (or otherwise protected) is not gatehouse's to change: a login that
	// would write to it is refused; one that writes nothing is not.
	if err := s.checkUnprotected(ctx, cur.e, "update"); err != nil {
		return provision.Result{}, err
	}
	source := provision.GroupSource(key.IdP)
	tf := touched(p.Claims)
	dn := cur.e.DN
	if provision.NormalizeName(want.UserName) != provision.NormalizeName(p.Before.UserName) {
		if err := s.nameFree(ctx, want.UserName, dn, ""); err != nil {
			return provision.Result{}, err
		}
	}
	renamed := false
	if tf[s.l.rdnField] {
		var err error
		if dn, renamed, err = s.rename(ctx, cur, &want); err != nil {
			return provision.Result{}, err
		}
	}
	changes, fields, err := s.l.diffAttributes(cur.e, &want, tf)
	if err != nil {
		return provision.Result{}, err
	}
	if renamed {
		fields[s.l.rdnField] = true
	}
	plan := planGroups(p.Claims, f.member, f.owned)

	var stateAdd, stateDel []string
	if want.UserName != "" {
		stateAdd, stateDel = cur.st.nameChange(want.UserName)
	}
	if p.Action == provision.ActLink {
		stateAdd = append(stateAdd, keyValue(key))
	}
	for _, g := range plan.add {
		if !f.owned[g.norm] {
			stateAdd = append(stateAdd, groupValue(source, g.norm))
		}
	}
	for _, n := range plan.forget {
		stateDel = append(stateDel, cur.st.groupValue(source, n))
	}
	// Changed names what the plan changed and the directory took: a
	// field whose attributes already held the value was not written.
	var changed []string
	for _, name := range p.Changed {
		if fields[name] || name == provision.FieldGroups && plan.changes() {
			changed = append(changed, name)
		}
	}
	res := provision.Result{User: want, Outcome: provision.Updated, Changed: changed, Kept: p.Kept}
	if p.Action == provision.ActLink {
		res.Outcome = provision.Linked
	}
	if len(changes) == 0 && len(stateAdd)+len(stateDel) == 0 && !plan.changes() && !renamed {
		res.User, res.Outcome, res.Changed = p.Before, provision.Unchanged, nil
		return res, nil
	}

	// Memberships go first out of the groups, then the entry records what
	// it owns, then memberships go into groups: whatever step fails, the
	// next login finds the same plan or a smaller one.
	// wrote: a write of this login took effect. A login whose writes all
	// found the change made already (another login of the same user had
	// just made it) changed nothing, and says so: unchanged.
	_, wrote, err := s.applyGroupsWrote(ctx, dn, groupPlan{remove: plan.remove}, f.member)
	if err != nil {
		return provision.Result{}, err
	}
	wrote = wrote || renamed
	version := cur.st.version
	if len(changes) > 0 || len(stateAdd)+len(stateDel) > 0 || renamed {
		req := ldap.NewModifyRequest(dn, nil)
		req.Changes = changes
		version = s.l.bumpState(req, cur, stateAdd, stateDel)
		if err := s.modify(ctx, req); err != nil {
			if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) || ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) {
				return provision.Result{}, errRace
			}
			return provision.Result{}, fmt.Errorf("ldapdir: modify %s: %w", dn, refused(err))
		}
		wrote = true
	}
	names, joined, err := s.applyGroupsWrote(ctx, dn, groupPlan{add: plan.add}, f.member.without(plan.remove))
	if err != nil {
		return provision.Result{}, err
	}
	res.User.Version, res.User.Groups = version, names
	completing := lostCreate && len(changes) == 0 && len(stateAdd)+len(stateDel) == 0 && !renamed && len(plan.remove) == 0
	if !wrote && (!joined || completing) {
		res.Outcome, res.Changed = provision.Unchanged, nil
	}
	return res, nil
}

// rename moves the entry when its naming field changed.
func (s *Store) rename(ctx context.Context, cur *entry, want *provision.User) (string, bool, error) {
	newDN := s.l.dn(want)
	if err := s.l.checkNaming(want); err != nil {
		return "", false, err
	}
	a, err1 := ldap.ParseDN(cur.e.DN)
	b, err2 := ldap.ParseDN(newDN)
	if err1 != nil || err2 != nil {
		return "", false, fmt.Errorf("ldapdir: %w: cannot parse DN %q or %q", provision.ErrInvalid, cur.e.DN, newDN)
	}
	if a.EqualFold(b) {
		return cur.e.DN, false, nil
	}
	rdn := s.l.rdnAttr + "=" + escapeRDNValue(want.Field(s.l.rdnField))
	err := s.p.do(ctx, func(c *ldap.Conn) error {
		s.stats.modifyDNs.Add(1)
		return c.ModifyDN(ldap.NewModifyDNRequest(cur.e.DN, rdn, true, ""))
	})
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists):
		return "", false, fmt.Errorf("ldapdir: rename to %s: %w", newDN, provision.ErrConflict)
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return "", false, errRace
	case err != nil:
		return "", false, fmt.Errorf("ldapdir: rename %s: %w", cur.e.DN, err)
	}
	// The RDN value is now the new one; keep the diff from rewriting it.
	for i, a := range cur.e.Attributes {
		if strings.EqualFold(a.Name, s.l.rdnAttr) {
			cur.e.Attributes[i].Values = []string{want.Field(s.l.rdnField)}
		}
	}
	return newDN, true, nil
}

// enable finishes an AD account that was created disabled: it sets a
// random password nobody knows and clears the disabled bit (unless
// active is false). A login that finds the account half-done, and still
// finishable, completes it.
func (s *Store) enable(ctx context.Context, cur *entry, active bool) (*entry, error) {
	buf := make([]byte, 48)
	if _, err := io.ReadFull(s.rand, buf); err != nil {
		return nil, fmt.Errorf("ldapdir: random password: %w", err)
	}
	// Letters, digits and symbols: any complexity policy is met.
	pw := base64.RawURLEncoding.EncodeToString(buf) + "aA1!"
	uac, _ := strconv.ParseInt(cur.e.GetEqualFoldAttributeValue("userAccountControl"), 10, 64)
	if err := s.modify(ctx, s.l.enableRequest(cur.e.DN, uac, pw, active)); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
			return nil, errRace // another login finished it, or someone changed its flags
		}
		return nil, fmt.Errorf("ldapdir: enable %s: %w", cur.e.DN, err)
	}
	return s.readDN(ctx, cur.e.DN)
}

// User returns the user with the given ID (its anchor).
func (s *Store) User(ctx context.Context, id string) (provision.User, error) {
	cur, err := s.findByID(ctx, id)
	if err != nil {
		return provision.User{}, err
	}
	u := s.l.user(cur.e, cur.st)
	m, err := s.memberships(ctx, cur.e)
	if err != nil {
		return provision.User{}, err
	}
	u.Groups = m.names()
	return u, nil
}

func (s *Store) findByID(ctx context.Context, id string) (*entry, error) {
	filter, ok := s.l.anchorFilter(id)
	if !ok {
		return nil, fmt.Errorf("ldapdir: user %q: %w", id, provision.ErrNotFound)
	}
	cur, err := s.findOne(ctx, filter, func(state) bool { return true })
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("ldapdir: user %s: %w", id, provision.ErrNotFound)
	}
	return cur, nil
}

// SetActive enables or disables an account; the state it already has is
// not written again.
func (s *Store) SetActive(ctx context.Context, id string, active bool) error {
	for range maxAttempts {
		cur, err := s.findByID(ctx, id)
		if err != nil {
			return err
		}
		if s.l.disabled(cur.e, cur.st) != active {
			return nil
		}
		if err := s.checkUnprotected(ctx, cur.e, "set active on"); err != nil {
			return err
		}
		req := ldap.NewModifyRequest(cur.e.DN, nil)
		s.l.activeChange(req, cur.e, active)
		s.l.bumpState(req, cur, nil, nil)
		err = s.modify(ctx, req)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) || ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ldapdir: set active on %s: %w", cur.e.DN, s.unknownAttr(err))
		}
		return nil
	}
	return fmt.Errorf("ldapdir: user %s kept changing under %d attempts", id, maxAttempts)
}

func hasValueFold(vals []string, v string) bool {
	return slices.ContainsFunc(vals, func(x string) bool { return strings.EqualFold(x, v) })
}

// refused marks the directory's refusals of a value (syntax, constraint)
// as invalid attributes: the login is rejected with a reason rather than
// treated as an outage.
func refused(err error) error {
	if ldap.IsErrorWithCode(err, ldap.LDAPResultUndefinedAttributeType) {
		return err
	}
	// invalidDNSyntax and namingViolation: the value names the entry, and
	// the directory refuses it in a DN.
	if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidAttributeSyntax) || ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation) ||
		ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax) || ldap.IsErrorWithCode(err, ldap.LDAPResultNamingViolation) {
		return fmt.Errorf("%w: %w", provision.ErrInvalid, err)
	}
	return err
}
