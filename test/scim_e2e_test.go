package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/scim/scimtest"
	"gatehouse/test/slapd"
)

// TestSCIMCorpusLDAP replays the recorded client requests against the
// directory store. The mapping gives every attribute the corpus writes an
// inetOrgPerson attribute; groups over SCIM are not offered on LDAP, so
// those cases must answer 501.
func TestSCIMCorpusLDAP(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	cfg := ldapStoreConfig(srv, srv.NewTenant(t))
	cfg.Attributes[provision.FieldExternalID] = "employeeType"
	cfg.Attributes["middle_name"] = "initials"
	cfg.Attributes["nick_name"] = "businessCategory"
	cfg.Attributes["title"] = "title"
	cfg.Attributes["employee_number"] = "employeeNumber"
	cfg.Attributes["manager_id"] = "carLicense"
	delete(cfg.Attributes, "employee_id")
	st, err := ldapdir.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarness(t, options{scim: true, store: st, mapping: &provision.Mapping{UserName: attrUID}})
	scimtest.Replay(t, scimtest.Options{Base: h.base + "/.gatehouse/scim/v2", Token: scimToken, NoGroups: true})
}

// scimDo sends one SCIM request through the proxy with the harness token.
func (h *harness) scimDo(method, path, body string) (int, map[string]any) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, h.base+"/.gatehouse/scim/v2"+path, r)
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			h.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, m
}

const aliceSCIM = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ALICE","externalId":"ext-alice",
	"name":{"givenName":"Alicia","familyName":"Archer"},"displayName":"Alicia A. (HR)",
	"emails":[{"type":"work","value":"alicia@hr.example.com"}],"active":true}`

// TestSCIMLifecycle: a user SCIM created is claimed by its first login
// (no duplicate), keeps the attributes SCIM owns, and once SCIM
// deactivates or deletes it, neither the live session nor a new login gets
// in, and the store still says so afterwards.
func TestSCIMLifecycle(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { scimLifecycle(t, newHarness(t, options{scim: true})) })
	t.Run("ldap", func(t *testing.T) {
		srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
		scimLifecycle(t, newHarness(t, options{scim: true, store: newLDAPStore(t, srv, srv.NewTenant(t))}))
	})
}

// users counts the users in the store.
func (h *harness) users() int {
	h.t.Helper()
	p, err := h.store.(provision.Directory).FindUsers(context.Background(), provision.Query{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p.Total
}

func scimLifecycle(t *testing.T, h *harness) {
	status, doc := h.scimDo("POST", "/Users", aliceSCIM)
	if status != 201 {
		t.Fatalf("create: %d %v", status, doc)
	}
	id := doc["id"].(string)

	c := h.browser()
	resp := h.login(c, "/app", alice) // asserts user name "alice": case differs
	readResp(t, resp)
	ev := h.auditEvents()
	if last := ev[len(ev)-1]; last["outcome"] != string(provision.Linked) || last["user_id"] != id {
		t.Fatalf("first login: %v, want linked to %s", last, id)
	}
	up := h.upstream.last(t)
	if got := up.Header.Get("X-Forwarded-Email"); got != "alicia@hr.example.com" {
		t.Errorf("email header %q: SCIM owns the e-mail, the login must not overwrite it", got)
	}
	if n := h.users(); n != 1 {
		t.Errorf("%d users after SCIM create and login, want 1", n)
	}
	u, _ := h.store.User(context.Background(), id)
	if u.Extra["employee_id"] != "E1001" || len(u.Groups) != 2 {
		t.Errorf("fields SCIM does not own were not written by the login: %+v", u)
	}
	readResp(t, h.login(h.browser(), "/", alice))
	if last := h.auditEvents()[len(h.auditEvents())-1]; last["outcome"] != string(provision.Unchanged) {
		t.Errorf("repeat login: %v, want unchanged", last)
	}

	// Deactivate over SCIM (Entra's string boolean): the live session is
	// refused at once, without waiting for the identity cache.
	status, _ = h.scimDo("PATCH", "/Users/"+id, `{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	if status != 200 {
		t.Fatalf("deactivate: %d", status)
	}
	before := len(h.upstream.all())
	if code, _ := h.get(c, "/app", http.Header{"Accept": {"text/html"}}); code != http.StatusForbidden {
		t.Errorf("live session after SCIM deactivation: %d, want 403", code)
	}
	resp = h.login(h.browser(), "/", alice)
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Access denied") {
		t.Errorf("login after SCIM deactivation: %d", resp.StatusCode)
	}
	if len(h.upstream.all()) != before {
		t.Error("a request of the deactivated user reached upstream")
	}
	if u, err := h.store.User(context.Background(), id); err != nil || u.Active {
		t.Errorf("after refused login: active=%v err=%v, want still inactive", u.Active, err)
	}

	// Delete over SCIM: the login neither re-creates nor revives the user.
	if status, _ = h.scimDo("DELETE", "/Users/"+id, ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	resp = h.login(h.browser(), "/", alice)
	if readAll(t, resp); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login after SCIM delete: %d, want 403", resp.StatusCode)
	}
	if n := h.users(); n != 0 {
		t.Errorf("login after SCIM delete re-created the user (%d users)", n)
	}
	if last := h.auditEvents()[len(h.auditEvents())-1]; last["reason"] != "disabled" {
		t.Errorf("audit %v, want reason disabled", last)
	}

	// SCIM may create the user again; the login then links to it.
	status, doc = h.scimDo("POST", "/Users", aliceSCIM)
	if status != 201 {
		t.Fatalf("re-create: %d %v", status, doc)
	}
	readResp(t, h.login(h.browser(), "/", alice))
	if last := h.auditEvents()[len(h.auditEvents())-1]; last["user_id"] != doc["id"] || last["outcome"] != string(provision.Linked) {
		t.Errorf("login after re-create: %v", last)
	}
}

// TestSCIMJITGroupsKeepTheirSource: memberships the login made and
// memberships SCIM made live side by side; each side removes only its own.
func TestSCIMJITGroupsKeepTheirSource(t *testing.T) {
	h := newHarness(t, options{scim: true})
	readResp(t, h.login(h.browser(), "/", alice)) // JIT: staff, admins
	uid := h.auditEvents()[0]["user_id"].(string)
	status, doc := h.scimDo("GET", `/Groups?filter=displayName%20eq%20%22STAFF%22`, "")
	if status != 200 || doc["totalResults"].(float64) != 1 {
		t.Fatalf("JIT group not visible over SCIM: %d %v", status, doc)
	}
	gid := doc["Resources"].([]any)[0].(map[string]any)["id"].(string)
	// SCIM replaces the members with nobody: the JIT membership stays.
	if status, _ = h.scimDo("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"members","value":[]}]}`); status != 204 {
		t.Fatalf("replace members: %d", status)
	}
	if u, _ := h.store.User(context.Background(), uid); len(u.Groups) != 2 {
		t.Errorf("SCIM removed a JIT membership: %v", u.Groups)
	}
	// SCIM adds alice to a group of its own; the next login (which no
	// longer asserts that group) keeps it.
	status, doc = h.scimDo("POST", "/Groups", `{"displayName":"Payroll","members":[{"value":"`+uid+`"}]}`)
	if status != 201 {
		t.Fatalf("create group: %d %v", status, doc)
	}
	p := alice
	p.groups = []string{"staff"}
	readResp(t, h.login(h.browser(), "/", p))
	u, _ := h.store.User(context.Background(), uid)
	if strings.Join(u.Groups, ",") != "Payroll,staff" {
		t.Errorf("groups after login = %v, want Payroll (SCIM) and staff (JIT)", u.Groups)
	}
}
