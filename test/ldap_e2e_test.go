package test

import (
	"context"
	"fmt"
	"net/http"
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
