package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"gatehouse/scim"
)

// The tests in this file pin the correctness rules of issue 18: each one
// answered 200 (or stored something at random) before.

const patchURN = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`

// patchBody wraps operations in a PatchOp body.
func patchBody(ops string) string { return `{` + patchURN + `,"Operations":` + ops + `}` }

// scimType returns the scimType of an error body.
func scimType(t *testing.T, body string) string {
	t.Helper()
	s, _ := decode(t, body)["scimType"].(string)
	return s
}

// modes runs fn once with quirks on and once in strict mode.
func modes(t *testing.T, fn func(t *testing.T, quirks bool)) {
	for _, q := range []bool{true, false} {
		name := "Strict"
		if q {
			name = "Quirks"
		}
		t.Run(name, func(t *testing.T) { fn(t, q) })
	}
}

// patchCase is one PATCH and its expected answer; a failing one must
// leave the user as it was.
type patchCase struct {
	name     string
	ops      string
	status   int
	scimType string
	check    func(t *testing.T, d map[string]any)
}

func runPatchCases(t *testing.T, quirks bool, base string, cases []patchCase) {
	t.Helper()
	e := newEnv(t, scim.Config{Quirks: &quirks})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := e.createUser(t, strings.Replace(base, "{{n}}", strings.ToLower(tc.name), 1))
			_, _, before := e.do(t, "GET", "/Users/"+id, "")
			status, _, body := e.do(t, "PATCH", "/Users/"+id, patchBody(tc.ops))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.scimType != "" {
				if got := scimType(t, body); got != tc.scimType {
					t.Errorf("scimType %q, want %q: %s", got, tc.scimType, body)
				}
			}
			_, _, after := e.do(t, "GET", "/Users/"+id, "")
			if tc.check == nil {
				if after != before {
					t.Errorf("PATCH changed the user:\nbefore %s\nafter  %s", before, after)
				}
				return
			}
			tc.check(t, decode(t, after))
		})
	}
}

// TestDuplicateKeys: a body whose objects hold two keys that differ only
// in case (or are the same) is ambiguous, since attribute names are
// case-insensitive (RFC 7643 §2.1) and the decoder would keep one of them
// at random. It is refused with 400 invalidSyntax naming the key, at any
// depth, in both modes, before anything is applied.
func TestDuplicateKeys(t *testing.T) {
	core := `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]`
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		id := e.createUser(t, user("dup-target", `"title":"Dev"`))
		_, _, before := e.do(t, "GET", "/Users/"+id, "")
		gid := ""
		if status, _, b := e.do(t, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"DupStaff"}`); status == 201 {
			gid = decode(t, b)["id"].(string)
		} else {
			t.Fatalf("create group: %d %s", status, b)
		}
		for _, tc := range []struct {
			name, method, path, body, key string
		}{
			{"TopLevelCase", "POST", "/Users", `{` + core + `,"userName":"dup-a","USERNAME":"dup-b"}`, "USERNAME"},
			{"TopLevelExact", "POST", "/Users", `{` + core + `,"userName":"dup-a","userName":"dup-b"}`, "userName"},
			{"InName", "POST", "/Users", `{` + core + `,"userName":"dup-c","name":{"givenName":"A","GivenName":"B"}}`, "GivenName"},
			{"InEmailElement", "POST", "/Users", `{` + core + `,"userName":"dup-d","emails":[{"type":"work","value":"a@x.test","Value":"b@x.test"}]}`, "Value"},
			{"InExtension", "POST", "/Users", `{` + core + `,"userName":"dup-e","` + scim.URNEnterprise + `":{"department":"A","DEPARTMENT":"B"}}`, "DEPARTMENT"},
			{"ExtensionKeyCase", "POST", "/Users", `{` + core + `,"userName":"dup-f","` + scim.URNEnterprise + `":{"department":"A"},"` + strings.ToUpper(scim.URNEnterprise) + `":{"department":"B"}}`, "URN:"},
			{"KelvinSign", "POST", "/Users", `{` + core + `,"userName":"dup-g","nickName":"A","nic\u212aName":"B"}`, "nic"},
			{"SchemasKey", "POST", "/Users", `{` + core + `,"Schemas":[],"userName":"dup-h"}`, "Schemas"},
			{"ReplaceBody", "PUT", "/Users/" + id, `{` + core + `,"userName":"dup-target","title":"A","Title":"B"}`, "Title"},
			{"PatchOperation", "PATCH", "/Users/" + id, `{` + patchURN + `,"Operations":[{"op":"replace","OP":"remove","path":"title","value":"X"}]}`, "OP"},
			{"PatchPath", "PATCH", "/Users/" + id, `{` + patchURN + `,"Operations":[{"op":"replace","path":"title","Path":"nickName","value":"X"}]}`, "Path"},
			{"PatchValue", "PATCH", "/Users/" + id, `{` + patchURN + `,"Operations":[{"op":"replace","value":{"title":"A","TITLE":"B"}}]}`, "TITLE"},
			{"PatchOperationsKey", "PATCH", "/Users/" + id, `{` + patchURN + `,"Operations":[{"op":"replace","path":"title","value":"A"}],"operations":[{"op":"replace","path":"title","value":"B"}]}`, "operations"},
			{"GroupPatchValue", "PATCH", "/Groups/" + gid, `{` + patchURN + `,"Operations":[{"op":"replace","value":{"displayName":"A","displayname":"B"}}]}`, "displayname"},
			{"Search", "POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"a\"","FILTER":"userName eq \"b\""}`, "FILTER"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, _, b := e.do(t, tc.method, tc.path, tc.body)
				if status != http.StatusBadRequest {
					t.Fatalf("%d, want 400: %s", status, b)
				}
				if st := scimType(t, b); st != "invalidSyntax" {
					t.Errorf("scimType %q, want invalidSyntax: %s", st, b)
				}
				if d, _ := decode(t, b)["detail"].(string); !strings.Contains(d, tc.key) {
					t.Errorf("detail does not name %q: %s", tc.key, b)
				}
			})
		}
		if _, _, after := e.do(t, "GET", "/Users/"+id, ""); after != before {
			t.Errorf("a refused body changed the user:\nbefore %s\nafter  %s", before, after)
		}
		// The same key in sibling objects is no duplicate.
		if status, _, b := e.do(t, "POST", "/Users", `{`+core+`,"userName":"dup-ok","emails":[{"type":"work","value":"a@x.test"},{"type":"home","value":"b@x.test"}],"name":{"givenName":"A"},"`+scim.URNEnterprise+`":{"department":"A"}}`); status != 201 {
			t.Errorf("siblings with the same keys: %d %s", status, b)
		}
	})
}
