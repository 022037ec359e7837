package scim_test

import (
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestOneAttributeTwoSpellings (F6): one PATCH operation, or one create
// or replace body, that gives one attribute (or one sub-attribute) twice
// through different spellings is refused with 400 invalidValue naming it,
// in both modes; before, the value read last was kept and the other
// dropped.
func TestOneAttributeTwoSpellings(t *testing.T) {
	const core, ent = "urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	modes(t, func(t *testing.T, quirks bool) {
		base := `{"schemas":["` + core + `","` + ent + `"],"userName":"twice-{{n}}","displayName":"Old","name":{"givenName":"Old"},"` + ent + `":{"department":"Old"}}`
		runPatchCases(t, quirks, base, []patchCase{
			{"PlainAndQualified", `[{"op":"replace","value":{"displayName":"A","` + core + `:displayName":"B"}}]`, 400, "invalidValue", nil},
			{"PlainAndCoreObject", `[{"op":"replace","value":{"displayName":"A","` + core + `":{"displayName":"B"}}}]`, 400, "invalidValue", nil},
			{"SubKeyAndObject", `[{"op":"replace","value":{"name":{"givenName":"A"},"name.givenName":"B"}}]`, 400, "invalidValue", nil},
			{"SubKeyAndObjectOtherSub", `[{"op":"replace","value":{"name":{"familyName":"A"},"name.givenName":"B"}}]`, 400, "invalidValue", nil},
			{"SubKeyTwice", `[{"op":"replace","value":{"name.givenName":"A","` + core + `:name.givenName":"B"}}]`, 400, "invalidValue", nil},
			{"ExtensionKeyAndObject", `[{"op":"replace","value":{"` + ent + `":{"department":"A"},"` + ent + `:department":"B"}}]`, 400, "invalidValue", nil},
			{"ExtensionPlainAndObject", `[{"op":"replace","value":{"department":"A","` + ent + `":{"department":"B"}}}]`, 400, "invalidValue", nil},
			{"AddPlainAndQualified", `[{"op":"add","value":{"displayName":"A","` + core + `:displayName":"B"}}]`, 400, "invalidValue", nil},
			{"SchemaPathObject", `[{"op":"replace","path":"` + core + `","value":{"displayName":"A","` + core + `:displayName":"B"}}]`, 400, "invalidValue", nil},
			// Different attributes, or one in separate operations, are fine.
			{"TwoSubAttributes", `[{"op":"replace","value":{"name.givenName":"A","name.familyName":"B","displayName":"C"}}]`, 200, "", func(t *testing.T, d map[string]any) {
				want(t, d, "name.givenName", "A")
				want(t, d, "name.familyName", "B")
			}},
			{"SeparateOperations", `[{"op":"replace","value":{"displayName":"A"}},{"op":"replace","value":{"` + core + `:displayName":"B"}}]`, 200, "", func(t *testing.T, d map[string]any) {
				want(t, d, "displayName", "B")
			}},
		})
		e := newEnv(t, scim.Config{Quirks: &quirks})
		id := e.createUser(t, user("twice-put"))
		for _, tc := range []struct{ name, method, path, body string }{
			{"PostExtensionKeyAndObject", "POST", "/Users", `{"schemas":["` + core + `","` + ent + `"],"userName":"twice-post","` + ent + `:department":"a","` + ent + `":{"department":"b"}}`},
			{"PostCoreKeyAndPlain", "POST", "/Users", `{"schemas":["` + core + `"],"userName":"twice-post2","displayName":"a","` + core + `:displayName":"b"}`},
			{"PostSubKeyAndObject", "POST", "/Users", `{"schemas":["` + core + `"],"userName":"twice-post3","name":{"givenName":"a"},"` + core + `:name.givenName":"b"}`},
			{"PutExtensionKeyAndObject", "PUT", "/Users/" + id, `{"schemas":["` + core + `","` + ent + `"],"userName":"twice-put","` + ent + `:department":"a","` + ent + `":{"department":"b"}}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, _, body := e.do(t, tc.method, tc.path, tc.body)
				if status != 400 || scimType(t, body) != "invalidValue" {
					t.Fatalf("status %d, want 400 invalidValue: %s", status, body)
				}
				// Strict mode refuses a key schemas does not list first.
				if quirks && !strings.Contains(body, "twice") {
					t.Errorf("the error does not say the attribute is given twice: %s", body)
				}
			})
		}
	})
}
