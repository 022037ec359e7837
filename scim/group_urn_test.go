package scim_test

import (
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestGroupAttributesUnderURNRefused: a Group body that puts its
// attributes under the core Group URN (an object, or a URN-qualified
// key) is refused in both modes; a PUT of it used to answer 200 and leave
// the group without members.
func TestGroupAttributesUnderURNRefused(t *testing.T) {
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		status, _, body := e.do(t, "POST", "/Users", user("urn-member"))
		if status != 201 {
			t.Fatalf("create user: %d %s", status, body)
		}
		uid := decode(t, body)["id"].(string)
		const urn = "urn:ietf:params:scim:schemas:core:2.0:Group"
		status, _, body = e.do(t, "POST", "/Groups", `{"schemas":["`+urn+`"],"displayName":"URNs","members":[{"value":"`+uid+`"}]}`)
		if status != 201 {
			t.Fatalf("create group: %d %s", status, body)
		}
		gid := decode(t, body)["id"].(string)
		for _, tc := range []struct{ name, body string }{
			{"Object", `{"schemas":["` + urn + `"],"displayName":"URNs","` + urn + `":{"members":[{"value":"` + uid + `"}]}}`},
			{"QualifiedKey", `{"schemas":["` + urn + `"],"displayName":"URNs","` + strings.ToUpper(urn) + `:members":[{"value":"` + uid + `"}]}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, _, body := e.do(t, "PUT", "/Groups/"+gid, tc.body); status != 400 || !strings.Contains(body, "top level") {
					t.Errorf("PUT: %d %s, want 400", status, body)
				}
				if status, _, body := e.do(t, "POST", "/Groups", strings.Replace(tc.body, "URNs", "Other", 1)); status != 400 {
					t.Errorf("POST: %d %s, want 400", status, body)
				}
				if _, _, body := e.do(t, "GET", "/Groups/"+gid, ""); !strings.Contains(body, uid) {
					t.Errorf("after the refused PUT the group lost its member: %s", body)
				}
			})
		}
	})
}

// TestPatchSubAttributeOfCoercedComplex: in quirks mode a plain string
// for manager (Entra ID's shape) becomes {"value": ...}; a PATCH that
// names manager.value itself keeps its string, in both modes.
func TestPatchSubAttributeOfCoercedComplex(t *testing.T) {
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		status, _, body := e.do(t, "POST", "/Users", user("managed"))
		if status != 201 {
			t.Fatalf("create: %d %s", status, body)
		}
		id := decode(t, body)["id"].(string)
		status, _, body = e.do(t, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+
			`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"boss-1"}]}`)
		if status != 200 || !strings.Contains(body, `"boss-1"`) {
			t.Errorf("PATCH manager.value: %d %s, want 200 with the manager", status, body)
		}
	})
}
