package ldapdir_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/provision/storetest"
	"gatehouse/test/slapd"
)

// server is one slapd shared by the tests of this package; every test
// works in its own subtree (tenant). A slapd that cannot start fails the
// package.
var server *slapd.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ldapdir-slapd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server, err = slapd.New(dir, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: the LDAP tests need slapd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	stopAD()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startServer(t *testing.T) *slapd.Server {
	t.Helper()
	return server
}

func baseConfig(srv *slapd.Server, tn slapd.Tenant) ldapdir.Config {
	return ldapdir.Config{
		URL: srv.URL, CAFile: srv.CAFile,
		BindDN: slapd.BindDN, BindPassword: slapd.BindPassword,
		UserBase: tn.People, GroupBase: tn.Groups,
		Attributes: map[string]string{
			provision.FieldUserName: "uid", provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName",
			provision.FieldGivenName: "givenName", provision.FieldFamilyName: "sn",
			"department": "departmentNumber", "office": "roomNumber",
		},
	}
}

func open(t *testing.T, cfg ldapdir.Config) *ldapdir.Store {
	t.Helper()
	s, err := ldapdir.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := startServer(t)
	storetest.Run(t, func(t *testing.T) provision.Store {
		return open(t, baseConfig(srv, srv.NewTenant(t)))
	})
}

func aliceLogin() provision.Login {
	return provision.Login{
		Key: provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: "alice-id"},
		Claims: provision.Claims{Fields: map[string]string{
			provision.FieldUserName: "alice", provision.FieldEmail: "alice@example.test", provision.FieldDisplayName: "Alice Liddell",
		}, Groups: []string{"staff"}, HasGroups: true},
	}
}

// TestUnchangedLoginSendsNoWrite counts on the server: slapd's stats log
// shows the operations a repeat login sent, and the entry's entryCSN
// (which every write moves, even a no-op replace) stays put.
func TestUnchangedLoginSendsNoWrite(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	first, err := s.Provision(ctx, aliceLogin())
	if err != nil {
		t.Fatal(err)
	}
	csn := entryCSN(t, srv, "uid=alice,"+tn.People)
	mark, before := srv.Mark(), s.Stats()
	for range 3 {
		res, err := s.Provision(ctx, aliceLogin())
		if err != nil || res.Outcome != provision.Unchanged {
			t.Fatalf("repeat login: %v %v", res.Outcome, err)
		}
		if res.User.ID != first.User.ID || !slices.Equal(res.User.Groups, []string{"staff"}) {
			t.Errorf("repeat login returned %+v", res.User)
		}
	}
	ops, after := srv.Ops(mark), s.Stats()
	if w := ops["ADD"] + ops["MOD"] + ops["DEL"] + ops["MODRDN"]; w != 0 {
		t.Errorf("slapd logged %d write operations for 3 unchanged logins: %v", w, ops)
	}
	if ops["SRCH"] != 3 {
		t.Errorf("slapd logged %d searches for 3 unchanged logins, want 3 (one each)", ops["SRCH"])
	}
	if d := after.Modifies - before.Modifies + after.Adds - before.Adds; d != 0 {
		t.Errorf("store sent %d writes", d)
	}
	if got := entryCSN(t, srv, "uid=alice,"+tn.People); got != csn {
		t.Errorf("entryCSN moved %s -> %s", csn, got)
	}

	// The watch can see writes: a changed login moves it.
	l := aliceLogin()
	l.Claims.Fields[provision.FieldEmail] = "alice@new.example.test"
	mark = srv.Mark()
	if res, err := s.Provision(ctx, l); err != nil || res.Outcome != provision.Updated {
		t.Fatalf("changed login: %v %v", res.Outcome, err)
	}
	if ops := srv.Ops(mark); ops["MOD"] != 1 {
		t.Errorf("changed login: slapd logged %v, want exactly one MOD", ops)
	}
	if got := entryCSN(t, srv, "uid=alice,"+tn.People); got == csn {
		t.Error("entryCSN did not move on a changed login: the watch is blind")
	}
}

func entryCSN(t *testing.T, srv *slapd.Server, dn string) string {
	t.Helper()
	e := readEntry(t, srv, dn, "entryCSN")
	return e.GetAttributeValue("entryCSN")
}

func readEntry(t *testing.T, srv *slapd.Server, dn string, attrs ...string) *ldap.Entry {
	t.Helper()
	res, err := srv.Admin(t).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", attrs, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s: %v", dn, err)
	}
	return res.Entries[0]
}

// TestConcurrentFirstLoginsAcrossReplicas races 50 first logins through
// five separate stores (as five gatehouse replicas would): exactly one
// entry is added, every login gets it, and the losers went through the
// entryAlreadyExists path.
func TestConcurrentFirstLoginsAcrossReplicas(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	var stores []*ldapdir.Store
	for range 5 {
		stores = append(stores, open(t, baseConfig(srv, tn)))
	}
	mark := srv.Mark()
	var wg sync.WaitGroup
	ids := make([]string, 50)
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() {
			res, err := stores[i%5].Provision(context.Background(), aliceLogin())
			ids[i], errs[i] = res.User.ID, err
		})
	}
	wg.Wait()
	for i := range 50 {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("login %d: id %q err %v (login 0: %q)", i, ids[i], errs[i], ids[0])
		}
	}
	res, err := srv.Admin(t).Search(ldap.NewSearchRequest(tn.People, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("entries under %s: %d (err %v), want 1", tn.People, len(res.Entries), err)
	}
	if n := srv.Ops(mark)["ADD"]; n < 2 {
		t.Logf("only %d ADD operations: the race was not exercised this run", n)
	}
	u, err := stores[0].User(context.Background(), ids[0])
	if err != nil || u.Version != 1 || !slices.Equal(u.Groups, []string{"staff"}) {
		t.Errorf("after the race: %+v, %v; want version 1 and group staff", u, err)
	}
}

// TestGroupsOwnedByOthersAreKept: a membership an administrator made is
// never removed by a login, even when the IdP stops asserting the group;
// a membership the login made is removed; a groupOfNames whose last
// member leaves keeps a placeholder instead of failing.
func TestGroupsOwnedByOthersAreKept(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	l := aliceLogin()
	l.Claims.Groups = []string{"jit-only", "staff"}
	res, err := s.Provision(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	userDN := "uid=alice," + tn.People
	admin := srv.Admin(t)
	// An administrator adds alice to "admins" by hand, and to "staff",
	// which the IdP also asserts.
	g := ldap.NewAddRequest("cn=admins,"+tn.Groups, nil)
	g.Attribute("objectClass", []string{"groupOfNames"})
	g.Attribute("cn", []string{"admins"})
	g.Attribute("member", []string{userDN})
	if err := admin.Add(g); err != nil {
		t.Fatal(err)
	}
	l.Claims.Groups = nil // the IdP now asserts no group at all
	res, err = s.Provision(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.User.Groups, []string{"admins"}) {
		t.Errorf("after the IdP dropped its groups: %v, want only the administrator's [admins]", res.User.Groups)
	}
	got, _ := s.User(ctx, res.User.ID)
	if !slices.Equal(got.Groups, []string{"admins"}) {
		t.Errorf("stored groups %v, want [admins]", got.Groups)
	}
	// jit-only lost its last member and still exists, with the
	// placeholder.
	e := readEntry(t, srv, "cn=jit-only,"+tn.Groups, "member")
	if m := e.GetAttributeValues("member"); !slices.Equal(m, []string{""}) {
		t.Errorf("emptied group members = %q, want the placeholder only", m)
	}
	// Rejoining replaces the placeholder.
	l.Claims.Groups = []string{"jit-only"}
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	e = readEntry(t, srv, "cn=jit-only,"+tn.Groups, "member")
	if m := e.GetAttributeValues("member"); len(m) != 1 || !dnEqual(m[0], userDN) {
		t.Errorf("rejoined group members = %q, want [%s]", m, userDN)
	}
}

func dnEqual(a, b string) bool {
	x, err1 := ldap.ParseDN(a)
	y, err2 := ldap.ParseDN(b)
	return err1 == nil && err2 == nil && x.EqualFold(y)
}

// TestDisabledInDirectoryIsRefused: an administrator's ppolicy lock
// refuses the login, and the login does not lift it.
func TestDisabledInDirectoryIsRefused(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	res, err := s.Provision(ctx, aliceLogin())
	if err != nil {
		t.Fatal(err)
	}
	m := ldap.NewModifyRequest("uid=alice,"+tn.People, nil)
	m.Add("pwdAccountLockedTime", []string{"000001010000Z"})
	if err := srv.Admin(t).Modify(m); err != nil {
		t.Fatal(err)
	}
	l := aliceLogin()
	l.Claims.Fields[provision.FieldDisplayName] = "changed"
	if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrDisabled) {
		t.Fatalf("login of a locked account: err = %v, want ErrDisabled", err)
	}
	e := readEntry(t, srv, "uid=alice,"+tn.People, "pwdAccountLockedTime", "displayName")
	if e.GetAttributeValue("pwdAccountLockedTime") == "" || e.GetAttributeValue("displayName") != "Alice Liddell" {
		t.Errorf("locked entry changed by the login: %v", e.Attributes)
	}
	if err := s.SetActive(ctx, res.User.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Provision(ctx, l); err != nil {
		t.Errorf("login after re-enabling: %v", err)
	}
}

// TestHostileValuesInEveryAttribute drives values that break naive
// filters and DNs through every mapped attribute, the key and the group
// name: each round-trips exactly, matches only its own entry, and a value
// no directory string can hold is refused before any I/O.
func TestHostileValuesInEveryAttribute(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	hostile := []string{`*`, `)(uid=*`, `\`, `a,b`, `a+b`, `#lead`, `in ner`, `x\00y`, `"q"`, `<a>;b=c`, "Zoë 😀 名前", `\2a`}
	ids := map[string]bool{}
	for i, v := range hostile {
		name := v
		if i > 0 && slices.Contains(hostile[:i], v) {
			name = fmt.Sprintf("%s%d", v, i)
		}
		mail := v // mail is an IA5 (ASCII) string in the directory's schema
		if !isASCII(v) {
			mail = "x@example.test"
		}
		l := provision.Login{
			Key: provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: v},
			Claims: provision.Claims{Fields: map[string]string{
				provision.FieldUserName: name, provision.FieldEmail: mail, provision.FieldDisplayName: v,
				provision.FieldGivenName: v, provision.FieldFamilyName: v,
			}, Extra: map[string]string{"department": v, "office": v}, Groups: []string{v}, HasGroups: true},
		}
		res, err := s.Provision(ctx, l)
		if err != nil {
			t.Errorf("value %q: %v", v, err)
			continue
		}
		if ids[res.User.ID] {
			t.Errorf("value %q: matched another value's user %s", v, res.User.ID)
		}
		ids[res.User.ID] = true
		got, err := s.User(ctx, res.User.ID)
		want := provision.User{UserName: name, Email: mail, DisplayName: v, GivenName: v, FamilyName: v,
			Extra: map[string]string{"department": v, "office": v}, Groups: []string{v}}
		if err != nil || got.UserName != want.UserName || got.Email != mail || got.DisplayName != v || got.GivenName != v ||
			got.FamilyName != v || got.Extra["department"] != v || got.Extra["office"] != v || !slices.Equal(got.Groups, want.Groups) {
			t.Errorf("value %q: stored %+v (err %v)", v, got, err)
		}
		if again, err := s.Provision(ctx, l); err != nil || again.Outcome != provision.Unchanged || again.User.ID != res.User.ID {
			t.Errorf("value %q: repeat login %v %v", v, again.Outcome, err)
		}
	}
	// The directory's own syntax rules refuse a value: a clear rejection,
	// not an outage.
	l := aliceLogin()
	l.Key.Subject = "syntax"
	l.Claims.Fields[provision.FieldEmail] = "zoë@example.test"
	if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("non-ASCII mail: err = %v, want ErrInvalid", err)
	}
	for _, bad := range []string{"nul\x00byte", "bad\xffutf8", "line\nbreak"} {
		l := aliceLogin()
		l.Key.Subject = "s-" + bad
		mark := srv.Mark()
		if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("subject %q: err = %v, want ErrInvalid", bad, err)
		}
		l = aliceLogin()
		l.Claims.Fields[provision.FieldDisplayName] = bad
		if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrInvalid) {
			t.Errorf("display name %q: err = %v, want ErrInvalid", bad, err)
		}
		if ops := srv.Ops(mark); len(ops) != 0 {
			t.Errorf("value %q reached the directory: %v", bad, ops)
		}
	}
}

// TestRenameMovesEntryAndKeepsID: a changed user name renames the entry
// (ModifyDN); the anchor, and so the user ID, stays.
func TestRenameMovesEntryAndKeepsID(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	first, err := s.Provision(ctx, aliceLogin())
	if err != nil {
		t.Fatal(err)
	}
	l := aliceLogin()
	l.Claims.Fields[provision.FieldUserName] = "alice.liddell"
	res, err := s.Provision(ctx, l)
	if err != nil || res.Outcome != provision.Updated || !slices.Equal(res.Changed, []string{provision.FieldUserName}) {
		t.Fatalf("rename: %+v %v", res, err)
	}
	got, err := s.User(ctx, first.User.ID)
	if err != nil || got.UserName != "alice.liddell" || got.Version != 2 {
		t.Errorf("after rename: %+v %v", got, err)
	}
	readEntry(t, srv, "uid=alice.liddell,"+tn.People)
}

// TestAdoptExisting: an entry made before gatehouse, holding the DN a
// first login wants, is a conflict unless adopt_existing is set; then the
// login takes it over without creating a second entry, and says so as a
// link of its key to an existing user (linked).
func TestAdoptExisting(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	add := ldap.NewAddRequest("uid=alice,"+tn.People, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"alice"})
	add.Attribute("cn", []string{"Alice"})
	add.Attribute("sn", []string{"Liddell"})
	if err := srv.Admin(t).Add(add); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := open(t, baseConfig(srv, tn)).Provision(ctx, aliceLogin()); !errors.Is(err, provision.ErrConflict) {
		t.Fatalf("first login onto a foreign entry: err = %v, want ErrConflict", err)
	}
	cfg := baseConfig(srv, tn)
	cfg.AdoptExisting = true
	s := open(t, cfg)
	res, err := s.Provision(ctx, aliceLogin())
	if err != nil || res.Outcome != provision.Linked {
		t.Fatalf("adopting login: %+v %v", res, err)
	}
	again, err := s.Provision(ctx, aliceLogin())
	if err != nil || again.Outcome != provision.Unchanged || again.User.ID != res.User.ID {
		t.Errorf("login after adoption: %+v %v", again, err)
	}
	other := aliceLogin()
	other.Key.Subject = "someone-else"
	if _, err := s.Provision(ctx, other); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("second identity of the same IdP onto the adopted entry: err = %v, want ErrConflict", err)
	}
}

// TestDirectoryDownAndBack: with slapd gone a login fails fast with a
// plain error (not a sentinel, so the proxy answers 503) and writes
// nothing; when slapd returns, the pool re-dials and the login succeeds.
func TestDirectoryDownAndBack(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	tn := srv.NewTenant(t)
	cfg := baseConfig(srv, tn)
	cfg.DialTimeout = time.Second
	s := open(t, cfg)
	ctx := context.Background()
	if _, err := s.Provision(ctx, aliceLogin()); err != nil { // pool holds a live connection now
		t.Fatal(err)
	}
	srv.Kill()
	bob := aliceLogin()
	bob.Key.Subject, bob.Claims.Fields[provision.FieldUserName] = "bob-id", "bob"
	_, err := s.Provision(ctx, bob)
	if err == nil || errors.Is(err, provision.ErrNotFound) || errors.Is(err, provision.ErrConflict) {
		t.Fatalf("login with slapd down: err = %v, want an unavailability error", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with slapd down succeeded")
	}
	srv.Restart(t)
	res, err := s.Provision(ctx, bob)
	if err != nil || res.Outcome != provision.Created {
		t.Fatalf("login after restart: %+v %v", res, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after restart: %v", err)
	}
}

// TestCancelClosesConnection: a login whose context ends while slapd does
// not answer returns promptly with the context's error.
func TestCancelClosesConnection(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	if _, err := s.Provision(context.Background(), aliceLogin()); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Provision(ctx, aliceLogin())
	if err == nil {
		t.Fatal("login against a frozen slapd succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("login took %v after its 300ms deadline", d)
	}
	srv.Resume()
	if _, err := s.Provision(context.Background(), aliceLogin()); err != nil {
		t.Errorf("login after slapd resumed: %v", err)
	}
}

// TestConnectionSecurity: StartTLS and LDAPS verify the server against
// ca_file; without the CA the connection is refused, not downgraded.
func TestConnectionSecurity(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	ctx := context.Background()

	ldaps := baseConfig(srv, tn)
	ldaps.URL = srv.TLSURL
	if err := open(t, ldaps).Ping(ctx); err != nil {
		t.Errorf("ldaps with ca_file: %v", err)
	}
	noCA := baseConfig(srv, tn)
	noCA.CAFile = ""
	if err := open(t, noCA).Ping(ctx); err == nil {
		t.Error("StartTLS against an untrusted certificate succeeded")
	}
	wrongPW := baseConfig(srv, tn)
	wrongPW.BindPassword = "wrong"
	if err := open(t, wrongPW).Ping(ctx); err == nil || !strings.Contains(err.Error(), "wrong DN or password") {
		t.Errorf("wrong bind password: err = %v", err)
	}
	missing := baseConfig(srv, tn)
	missing.UserBase = "ou=nowhere," + slapd.Suffix
	if err := open(t, missing).Ping(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing base: err = %v", err)
	}
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestConformanceWithoutMemberOf runs the suite with memberships read by
// a paged search of the groups, as on a directory without the memberof
// overlay.
func TestConformanceWithoutMemberOf(t *testing.T) {
	srv := startServer(t)
	storetest.Run(t, func(t *testing.T) provision.Store {
		cfg := baseConfig(srv, srv.NewTenant(t))
		cfg.MemberOfAttribute = "none"
		cfg.PageSize = 2 // several pages for a user in several groups
		return open(t, cfg)
	})
}

// TestCheck: a sound configuration passes; a missing group base, an
// unknown attribute and a directory without the gatehouse schema are each
// named.
func TestCheck(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	ctx := context.Background()
	if err := open(t, baseConfig(srv, tn)).Check(ctx); err != nil {
		t.Errorf("Check(sound config) = %v", err)
	}
	cfg := baseConfig(srv, tn)
	cfg.GroupBase = "ou=missing," + tn.Base
	cfg.Attributes["badge"] = "badgeNumber"
	err := open(t, cfg).Check(ctx)
	for _, want := range []string{"group_base: ldapdir: ou=missing," + tn.Base + " does not exist", "no attribute badgeNumber"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v, want mention of %q", err, want)
		}
	}

	// TestCheckStateAttributeHolders: an attribute the schema knows but
	// that no class of new users may hold fails every first login.
	cfg = baseConfig(srv, tn)
	cfg.StateAttribute, cfg.StateObjectClass = "associatedDomain", ""
	if err := open(t, cfg).Check(ctx); err == nil || !strings.Contains(err.Error(), "no class of new users") ||
		!strings.Contains(err.Error(), "may hold associatedDomain") {
		t.Errorf("Check with a state attribute no user class holds = %v", err)
	}
	cfg.UserObjectClasses = append(cfg.UserObjectClasses, "domainRelatedObject")
	if err := open(t, cfg).Check(ctx); err == nil || strings.Contains(err.Error(), "no class of new users") ||
		!strings.Contains(err.Error(), "tombstone") {
		t.Errorf("Check with the state attribute held by an auxiliary user class, not by tombstones = %v", err)
	}

	plain := slapd.Start(t) // no gatehouse schema loaded
	ptn := plain.NewTenant(t)
	err = open(t, baseConfig(plain, ptn)).Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "no attribute gatehouseState (load gatehouse-schema.ldif") ||
		!strings.Contains(err.Error(), "no object class gatehouseAccount") {
		t.Errorf("Check without the schema = %v", err)
	}
	stopped := slapd.Start(t)
	cfg = baseConfig(stopped, ptn)
	cfg.DialTimeout = time.Second
	stopped.Stop()
	if err := open(t, cfg).Check(ctx); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("Check against a stopped server = %v", err)
	}
}

// TestInterruptedJoinIsRepaired: the entry records the memberships a login
// owns before it joins the groups, so a login cut off between the two
// (simulated by removing the member by hand) is completed by the next one.
func TestInterruptedJoinIsRepaired(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	l := aliceLogin()
	l.Claims.Groups = []string{"staff", "ops"}
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	m := ldap.NewModifyRequest("cn=ops,"+tn.Groups, nil)
	m.Delete("member", []string{"uid=alice," + tn.People})
	m.Add("member", []string{""})
	if err := srv.Admin(t).Modify(m); err != nil {
		t.Fatal(err)
	}
	res, err := s.Provision(ctx, l)
	if err != nil || res.Outcome != provision.Updated || !slices.Equal(res.User.Groups, []string{"ops", "staff"}) {
		t.Fatalf("repairing login: %+v %v", res, err)
	}
	if again, _ := s.Provision(ctx, l); again.Outcome != provision.Unchanged {
		t.Errorf("login after repair: %v", again.Outcome)
	}
}
