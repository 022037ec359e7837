package scim_test

import (
	"net/url"
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestGroupMemberIDsCaseExact: a member is named by its user ID, which is
// case-sensitive. A PATCH value filter and a list filter both compare it
// exactly, and /Schemas says so: `members[value eq "<ID upper-cased>"]`
// removes no member and lists no group. (Before, the PATCH filter folded
// case and removed the member while the list filter did not match.)
func TestGroupMemberIDsCaseExact(t *testing.T) {
	e := newEnv(t, scim.Config{})
	alice := e.createUser(t, user("alice"))
	bob := e.createUser(t, user("bob"))
	other := strings.ToUpper(alice)
	if other == alice {
		t.Fatalf("user ID %q has no letters to change the case of", alice)
	}
	status, _, body := e.do(t, "POST", "/Groups", `{"displayName":"Staff","members":[{"value":"`+alice+`"},{"value":"`+bob+`"}]}`)
	if status != 201 {
		t.Fatalf("create group: %d %s", status, body)
	}
	gid := decode(t, body)["id"].(string)
	members := func() []string {
		t.Helper()
		_, _, body := e.do(t, "GET", "/Groups/"+gid, "")
		var ids []string
		ms, _ := decode(t, body)["members"].([]any)
		for _, m := range ms {
			ids = append(ids, m.(map[string]any)["value"].(string))
		}
		return ids
	}
	listed := func(f string) int {
		t.Helper()
		status, _, body := e.do(t, "GET", "/Groups?filter="+url.QueryEscape(f), "")
		if status != 200 {
			t.Fatalf("list %s: %d %s", f, status, body)
		}
		return int(decode(t, body)["totalResults"].(float64))
	}

	// List filters: the exact ID matches, another case does not.
	if n := listed(`members[value eq "` + alice + `"]`); n != 1 {
		t.Errorf("list by exact member ID: %d groups, want 1", n)
	}
	if n := listed(`members[value eq "` + other + `"]`); n != 0 {
		t.Errorf("list by upper-cased member ID: %d groups, want 0", n)
	}

	// PATCH filters: another case removes nothing, the exact ID removes.
	for _, path := range []string{`members[value eq \"` + other + `\"]`, `members[$ref eq \"` + e.base + `/Users/` + other + `\"]`} {
		status, _, body = e.do(t, "PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"`+path+`"}]}`)
		if status != 200 && status != 204 {
			t.Fatalf("PATCH remove %s: %d %s", path, status, body)
		}
		if got := members(); len(got) != 2 {
			t.Errorf("PATCH remove %s left members %v, want both", path, got)
		}
	}
	status, _, body = e.do(t, "PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"`+alice+`\"]"}]}`)
	if status != 200 && status != 204 {
		t.Fatalf("PATCH remove exact: %d %s", status, body)
	}
	if got := members(); len(got) != 1 || got[0] != bob {
		t.Errorf("members after removing %s: %v, want [%s]", alice, got, bob)
	}

	// Discovery says members.value is case-exact.
	_, _, body = e.do(t, "GET", "/Schemas/"+scim.URNGroup, "")
	for _, a := range decode(t, body)["attributes"].([]any) {
		a := a.(map[string]any)
		if a["name"] != "members" {
			continue
		}
		for _, s := range a["subAttributes"].([]any) {
			s := s.(map[string]any)
			if (s["name"] == "value" || s["name"] == "$ref") && s["caseExact"] != true {
				t.Errorf("/Schemas: members.%s caseExact = %v, want true", s["name"], s["caseExact"])
			}
		}
	}
}
