package scim_test

import (
	"testing"

	"gatehouse/scim"
)

// TestRemoveWithValueArray: a remove of a multi-valued attribute with a
// value array (Entra ID's member removal) removes exactly those elements,
// in strict mode as in quirks mode, as the README says; it was 400 in
// strict mode.
func TestRemoveWithValueArray(t *testing.T) {
	modes(t, func(t *testing.T, quirks bool) {
		runPatchCases(t, quirks, user("rv-{{n}}", `"emails":[{"type":"work","value":"w@corp.test"},{"type":"home","value":"h@home.test"}]`), []patchCase{
			{"RemovesOnlyThose", `[{"op":"remove","path":"emails","value":[{"value":"h@home.test"}]}]`, 200, "", func(t *testing.T, d map[string]any) {
				want(t, d, "emails.len", 1)
				want(t, d, "emails.0.value", "w@corp.test")
			}},
			{"NotAnArray", `[{"op":"remove","path":"emails","value":{"value":"h@home.test"}}]`, 400, "invalidValue", nil},
			{"SingularAttribute", `[{"op":"remove","path":"title","value":["x"]}]`, 400, "invalidValue", nil},
		})
		e := newEnv(t, scim.Config{Quirks: &quirks})
		alice := e.createUser(t, user("rv-alice"))
		bob := e.createUser(t, user("rv-bob"))
		status, _, body := e.do(t, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"RV","members":[{"value":"`+alice+`"},{"value":"`+bob+`"}]}`)
		if status != 201 {
			t.Fatalf("create group: %d %s", status, body)
		}
		gid := decode(t, body)["id"].(string)
		status, _, body = e.do(t, "PATCH", "/Groups/"+gid, patchBody(`[{"op":"Remove","path":"members","value":[{"value":"`+alice+`"}]}]`))
		if status != 200 && status != 204 {
			t.Fatalf("remove member with a value array: %d %s", status, body)
		}
		_, _, body = e.do(t, "GET", "/Groups/"+gid, "")
		members, _ := decode(t, body)["members"].([]any)
		if len(members) != 1 || members[0].(map[string]any)["value"] != bob {
			t.Errorf("members %v, want only bob", members)
		}
	})
}
