package scim_test

import (
	"testing"

	"gatehouse/scim"
)

// TestAddReplaceNeedValue (F9): add and replace without a value are 400
// invalidSyntax (RFC 7644 §3.5.2.1, §3.5.2.3); they cleared the attribute.
// An explicit null still unassigns, except where the attribute is
// required. A user's groups are read-only: a PATCH of them is 400
// mutability, not a silent 200.
func TestAddReplaceNeedValue(t *testing.T) {
	modes(t, func(t *testing.T, quirks bool) {
		runPatchCases(t, quirks, user("nv-{{n}}", `"displayName":"Shown"`), []patchCase{
			{"ReplaceNoValue", `[{"op":"replace","path":"displayName"}]`, 400, "invalidSyntax", nil},
			{"AddNoValue", `[{"op":"add","path":"displayName"}]`, 400, "invalidSyntax", nil},
			{"PathlessNoValue", `[{"op":"replace"}]`, 400, "invalidSyntax", nil},
			{"ReplaceNull", `[{"op":"replace","path":"displayName","value":null}]`, 200, "", func(t *testing.T, d map[string]any) {
				want(t, d, "displayName", nil)
			}},
			{"UserNameNull", `[{"op":"replace","path":"userName","value":null}]`, 400, "invalidValue", nil},
			{"ReplaceGroups", `[{"op":"replace","path":"groups","value":[{"value":"x"}]}]`, 400, "mutability", nil},
			{"AddGroups", `[{"op":"add","path":"groups","value":[{"value":"x"}]}]`, 400, "mutability", nil},
			{"RemoveGroups", `[{"op":"remove","path":"groups"}]`, 400, "mutability", nil},
			{"QualifiedGroups", `[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:groups","value":[]}]`, 400, "mutability", nil},
			{"PathlessGroups", `[{"op":"replace","value":{"groups":[{"value":"x"}]}}]`, 400, "mutability", nil},
		})
		e := newEnv(t, scim.Config{Quirks: &quirks})
		gid := e.createGroup(t, group("NV"))
		for _, tc := range []struct{ ops, scimType string }{
			{`[{"op":"replace","path":"displayName"}]`, "invalidSyntax"},
			{`[{"op":"add","path":"members"}]`, "invalidSyntax"},
			{`[{"op":"replace","path":"displayName","value":null}]`, "invalidValue"},
		} {
			status, _, body := e.do(t, "PATCH", "/Groups/"+gid, patchBody(tc.ops))
			if status != 400 || scimType(t, body) != tc.scimType {
				t.Errorf("group PATCH %s: %d %s, want 400 %s", tc.ops, status, body, tc.scimType)
			}
		}
		_, _, body := e.do(t, "GET", "/Groups/"+gid, "")
		want(t, decode(t, body), "displayName", "NV")
	})
}
