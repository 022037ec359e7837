package test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/test/slapd"
)

func ldapStoreConfig(srv *slapd.Server, tn slapd.Tenant) ldapdir.Config {
	return ldapdir.Config{
		URL: srv.URL, CAFile: srv.CAFile, BindDN: slapd.BindDN, BindPassword: slapd.BindPassword,
		UserBase: tn.People, GroupBase: tn.Groups, DialTimeout: time.Second,
		Attributes: map[string]string{
			provision.FieldUserName: "uid", provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName",
			provision.FieldGivenName: "givenName", provision.FieldFamilyName: "sn", "employee_id": "employeeNumber",
		},
	}
}

func newLDAPStore(t testing.TB, srv *slapd.Server, tn slapd.Tenant) *ldapdir.Store {
	t.Helper()
	st, err := ldapdir.New(ldapStoreConfig(srv, tn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestLDAPLoginEndToEnd: a SAML login creates the user's entry and group
// memberships in slapd before the request reaches the application, whose
// identity headers come from the entry; a repeat login writes nothing.
func TestLDAPLoginEndToEnd(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	tn := srv.NewTenant(t)
	h := newHarness(t, options{store: newLDAPStore(t, srv, tn)})

	readResp(t, h.login(h.browser(), "/reports", alice))
	up := h.upstream.last(t)
	if up.Header.Get("X-Forwarded-User") != "alice" || up.Header.Get("X-Forwarded-Groups") != "admins,staff" ||
		up.Header.Get("X-Forwarded-Email") != "alice@example.com" {
		t.Errorf("upstream headers = %v", up.Header)
	}
	admin := srv.Admin(t)
	res, err := admin.Search(ldap.NewSearchRequest("uid=alice,"+tn.People, ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"mail", "employeeNumber", "memberOf"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("alice's entry: %v", err)
	}
	e := res.Entries[0]
	if e.GetAttributeValue("mail") != "alice@example.com" || e.GetAttributeValue("employeeNumber") != "E1001" || len(e.GetAttributeValues("memberOf")) != 2 {
		t.Errorf("entry = mail %q employeeNumber %q memberOf %v", e.GetAttributeValue("mail"), e.GetAttributeValue("employeeNumber"), e.GetAttributeValues("memberOf"))
	}

	mark := srv.Mark()
	readResp(t, h.login(h.browser(), "/", alice))
	if ops := srv.Ops(mark); ops["ADD"]+ops["MOD"]+ops["DEL"]+ops["MODRDN"] != 0 {
		t.Errorf("repeat login wrote to the directory: %v", ops)
	}
}

// TestLDAPKilledMidLogin: slapd dies while a login waits on it; the
// browser gets the 503 page with an error ID, the log names the cause, no
// entry is left behind, and once slapd is back the next login succeeds
// without a restart of gatehouse.
func TestLDAPKilledMidLogin(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	tn := srv.NewTenant(t)
	st := newLDAPStore(t, srv, tn)
	h := newHarness(t, options{store: st})
	readResp(t, h.login(h.browser(), "/", alice)) // the pool now holds a live connection

	bob := person{nameID: "b0b-0002", uid: "bob", mail: "bob@example.com", display: "Bob", family: "Builder", groups: []string{"staff"}}
	c := h.browser()
	id, relay := h.startLogin(c, "/")
	doc := h.signedResponse(h.spec(bob, id))
	srv.Pause() // the login's first operation goes unanswered ...
	done := make(chan *http.Response)
	go func() { done <- h.post(c, doc, relay) }()
	time.Sleep(300 * time.Millisecond)
	srv.Kill() // ... and slapd dies under it
	var resp *http.Response
	select {
	case resp = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("login hung after slapd died")
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "error ID") {
		t.Fatalf("login with slapd killed: %d %s", resp.StatusCode, body)
	}
	var cause string
	for _, ev := range h.auditEvents() {
		if ev["name_id"] == bob.nameID {
			cause = fmt.Sprint(ev["reason"], " ", ev["error"])
		}
	}
	if !strings.Contains(cause, "store") || !strings.Contains(cause, "ldapdir") {
		t.Errorf("audit event for the failed login = %q, want the store reason and the directory error", cause)
	}

	srv.Restart(t)
	admin := srv.Admin(t)
	res, err := admin.Search(ldap.NewSearchRequest(tn.People, ldap.ScopeSingleLevel, 0, 0, 0, false, "(uid=bob)", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Fatalf("after the failed login: %d entries for bob (err %v), want none", len(res.Entries), err)
	}
	readResp(t, h.login(h.browser(), "/", bob))
	if up := h.upstream.last(t); up.Header.Get("X-Forwarded-User") != "bob" {
		t.Errorf("login after restart: upstream user %q", up.Header.Get("X-Forwarded-User"))
	}
	if err := st.Ping(context.Background()); err != nil {
		t.Errorf("Ping after restart: %v", err)
	}
}

// TestLDAPSlapdConfLogin: an OpenLDAP configured from slapd.conf (not
// cn=config), with the gatehouse schema as an include file and the
// recommended index on gatehouseState: check passes, a SAML login
// provisions through the store, the login's search on gatehouseState is
// indexed, and a repeat login writes nothing.
func TestLDAPSlapdConfLogin(t *testing.T) {
	srv := slapd.Start(t, slapd.SlapdConf(), slapd.WithSchemaInclude(ldapdir.SchemaInclude, "gatehouseState"), slapd.WithDebug("trace"))
	tn := srv.NewTenant(t)
	st := newLDAPStore(t, srv, tn)
	if err := st.Check(context.Background()); err != nil {
		t.Fatalf("check against slapd.conf OpenLDAP: %v", err)
	}
	h := newHarness(t, options{store: st})

	readResp(t, h.login(h.browser(), "/reports", alice))
	if up := h.upstream.last(t); up.Header.Get("X-Forwarded-User") != "alice" || up.Header.Get("X-Forwarded-Groups") != "admins,staff" {
		t.Errorf("upstream headers = %v", up.Header)
	}
	res, err := srv.Admin(t).Search(ldap.NewSearchRequest("uid=alice,"+tn.People, ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"objectClass", "gatehouseState", "memberOf"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("alice's entry: %v", err)
	}
	if e := res.Entries[0]; !hasFold(e.GetAttributeValues("objectClass"), "gatehouseAccount") || len(e.GetAttributeValues("gatehouseState")) == 0 ||
		len(e.GetAttributeValues("memberOf")) != 2 {
		t.Errorf("entry = %v", e.Attributes)
	}
	mark := srv.Mark()
	readResp(t, h.login(h.browser(), "/", alice))
	if ops := srv.Ops(mark); ops["ADD"]+ops["MOD"]+ops["DEL"]+ops["MODRDN"] != 0 {
		t.Errorf("repeat login wrote to the directory: %v", ops)
	}
	if n, unindexed := stateSearches(srv.Log()); n == 0 || unindexed > 0 {
		t.Errorf("slapd searched gatehouseState %d times, %d of them without an index", n, unindexed)
	}
}

// stateSearches reads slapd's trace log: back-mdb logs "=>
// mdb_equality_candidates (attr)" when it evaluates an equality filter,
// followed in the same thread by "=> key_read" when it reads an index for
// it, and by the candidates without a key read when there is none.
func stateSearches(log string) (n, unindexed int) {
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if !strings.HasSuffix(l, "=> mdb_equality_candidates (gatehouseState)") {
			continue
		}
		n++
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		indexed := false
		for _, next := range lines[i+1:] {
			if g := strings.Fields(next); len(g) > 2 && g[1] == f[1] {
				indexed = strings.HasSuffix(next, "=> key_read")
				break
			}
		}
		if !indexed {
			unindexed++
		}
	}
	return n, unindexed
}

func hasFold(vals []string, v string) bool {
	for _, x := range vals {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// TestLDAP389DS runs gatehouse against 389 Directory Server with the
// shipped 389 schema and index LDIFs and the 389ds profile, out of the
// box: check passes; a login creates the user with nsMemberOf among its
// classes and the memberOf plugin fills memberOf; every search a login
// sends is indexed (389's access log marks none notes=U or notes=A); a
// deactivation (nsAccountLock) refuses the next login; the last member
// leaves a group (389's groupOfNames may be empty) with one modify.
func TestLDAP389DS(t *testing.T) {
	ds := slapd.Start389(t)
	ds.ApplyLDIF(t, ldapdir.Schema389DS)
	ds.ApplyLDIF(t, ldapdir.Index389DS)
	ds.WaitTask(t, "cn=gatehouse-reindex,cn=index,cn=tasks,cn=config")
	tn := ds.NewTenant(t)
	st, err := ldapdir.New(ldapdir.Config{
		Profile: ldapdir.Profile389DS, URL: ds.URL, InsecurePlaintext: true,
		BindDN: slapd.BindDN, BindPassword: slapd.BindPassword, UserBase: tn.People, GroupBase: tn.Groups,
		Attributes: map[string]string{
			provision.FieldUserName: "uid", provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName",
			provision.FieldGivenName: "givenName", provision.FieldFamilyName: "sn", "employee_id": "employeeNumber",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("check against 389 DS: %v", err)
	}
	h := newHarness(t, options{store: st})
	readResp(t, h.login(h.browser(), "/", alice))
	if up := h.upstream.last(t); up.Header.Get("X-Forwarded-User") != "alice" || up.Header.Get("X-Forwarded-Groups") != "admins,staff" {
		t.Errorf("upstream headers = %v", up.Header)
	}
	admin := ds.Admin(t)
	res, err := admin.Search(ldap.NewSearchRequest("uid=alice,"+tn.People, ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"objectClass", "memberOf", "employeeNumber"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("alice's entry: %v", err)
	}
	e := res.Entries[0]
	if !hasFold(e.GetAttributeValues("objectClass"), "nsMemberOf") || len(e.GetAttributeValues("memberOf")) != 2 || e.GetAttributeValue("employeeNumber") != "E1001" {
		t.Errorf("entry = %v", e.Attributes)
	}
	res, err = admin.Search(ldap.NewSearchRequest("cn=gatehouseState,cn=index,cn=userRoot,cn=ldbm database,cn=plugins,cn=config",
		ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=nsIndex)", []string{"nsIndexType"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("nsIndexType") != "eq" {
		t.Errorf("the gatehouseState index: %v", err)
	}

	// The last member leaves: one modify, no placeholder.
	only := person{nameID: "c0c-0003", uid: "carol", mail: "carol@example.com", display: "Carol", family: "Clark", groups: []string{"auditors"}}
	readResp(t, h.login(h.browser(), "/", only))
	before := st.Stats()
	only.groups = []string{"staff"}
	readResp(t, h.login(h.browser(), "/", only))
	res, err = admin.Search(ldap.NewSearchRequest("cn=auditors,"+tn.Groups, ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"member"}, nil))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("member")) != 0 {
		t.Errorf("the emptied group: %v %v", err, res)
	}
	// Leaving auditors, joining staff, and the entry's record: three.
	if d := st.Stats().Modifies - before.Modifies; d != 3 {
		t.Errorf("modifies for leaving the last group and joining another = %d, want 3", d)
	}

	var id string
	for _, ev := range h.auditEvents() {
		if ev["name_id"] == alice.nameID {
			id, _ = ev["user_id"].(string)
		}
	}
	if err := st.SetActive(ctx, id, false); err != nil {
		t.Fatalf("deactivate on 389 DS: %v", err)
	}
	res, err = admin.Search(ldap.NewSearchRequest("uid=alice,"+tn.People, ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"nsAccountLock"}, nil))
	if err != nil || len(res.Entries) != 1 || !strings.EqualFold(res.Entries[0].GetAttributeValue("nsAccountLock"), "true") {
		t.Errorf("nsAccountLock after deactivation: %v", err)
	}
	resp := h.login(h.browser(), "/", alice)
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login of a deactivated user on 389 DS: %d %s", resp.StatusCode, body)
	}

	// 389 marks an unindexed search notes=U (partly) or notes=A (wholly)
	// in its access log, which it writes out by the time it stops.
	ds.Stop()
	access := ds.AccessLog()
	if n := strings.Count(access, "filter=\"(gatehouseState="); n == 0 {
		t.Error("no gatehouseState search in 389's access log")
	}
	for _, l := range strings.Split(access, "\n") {
		if strings.Contains(l, "notes=U") || strings.Contains(l, "notes=A") {
			op := regexp.MustCompile(`conn=\d+ op=\d+ `).FindString(l)
			t.Errorf("389 DS searched without an index: %s", regexp.MustCompile(`(?m)^.*`+op+`SRCH.*$`).FindString(access))
		}
	}
}
