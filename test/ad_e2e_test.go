package test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/test/samba"
)

// TestADLoginEndToEnd drives signed SAML logins through gatehouse into a
// real Active Directory domain controller (Samba's), as a delegated
// service account over LDAPS: the entry and memberships exist before the
// application sees the request, with identity headers read from the
// entry; concurrent first logins of several browsers all get in; logins
// whose values AD cannot take are refused with a reason (403), never
// answered as an outage (503).
func TestADLoginEndToEnd(t *testing.T) {
	srv := samba.Start(t)
	if err := srv.Apply(ldapdir.SchemaAD); err != nil {
		t.Fatal(err)
	}
	tn := srv.NewTenant(t)
	st, err := ldapdir.New(ldapdir.Config{
		Profile: ldapdir.ProfileActiveDirectory, URL: srv.TLSURL, CAFile: srv.CAFile,
		BindDN: samba.BindDN, BindPassword: samba.BindPassword, UserBase: tn.UserBase, GroupBase: tn.GroupBase,
		StateAttribute: "gatehouseState", UPNSuffix: "gatehouse.test", SetRandomPassword: true,
		Attributes: map[string]string{
			provision.FieldEmail: "mail", provision.FieldDisplayName: "displayName", provision.FieldGivenName: "givenName",
			provision.FieldFamilyName: "sn", "employee_id": "employeeID",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarness(t, options{store: st})

	// Several browsers of one user, and of others, at once, all asserting
	// the same new groups: every one gets in.
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		p := alice
		if i%2 == 1 {
			p = person{nameID: "ad-user-" + string(rune('a'+i)), uid: "user" + string(rune('a'+i)), mail: "u@example.com", groups: []string{"staff", "admins"}}
		}
		wg.Go(func() {
			resp := h.login(h.browser(), "/reports", p)
			codes[i] = resp.StatusCode
			resp.Body.Close()
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("concurrent login %d: %d", i, c)
		}
	}
	readResp(t, h.login(h.browser(), "/reports", alice))
	up := h.upstream.last(t)
	if up.Header.Get("X-Forwarded-User") != "alice" || up.Header.Get("X-Forwarded-Groups") != "admins,staff" ||
		up.Header.Get("X-Forwarded-Email") != "alice@example.com" {
		t.Errorf("upstream headers = %v", up.Header)
	}
	res, err := srv.Admin(t).Search(ldap.NewSearchRequest("CN=alice,"+tn.UserBase, ldap.ScopeBaseObject, 0, 0, 0, false,
		"(objectClass=*)", []string{"employeeID", "memberOf", "userAccountControl", "sAMAccountName"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("alice's entry: %v", err)
	}
	e := res.Entries[0]
	if e.GetAttributeValue("employeeID") != "E1001" || len(e.GetAttributeValues("memberOf")) != 2 || e.GetAttributeValue("userAccountControl") != "512" {
		t.Errorf("entry: %v", e.Attributes)
	}

	// Refused with a reason: a group name over AD's 64 characters, and a
	// user whose logon name the built-in Administrator holds.
	for name, p := range map[string]person{
		"long group":      {nameID: "ad-long", uid: "longgroup", mail: "l@example.com", groups: []string{strings.Repeat("g", 65)}},
		"logon name held": {nameID: "ad-admin", uid: "Administrator", mail: "a@example.com"},
	} {
		resp := h.login(h.browser(), "/", p)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body := string(b); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403: %.300s", name, resp.StatusCode, body)
		}
	}
}
