package scim_test

import (
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestSchemasChecked: the schemas attribute of a request body is checked
// (RFC 7643 §3, RFC 7644 §3.3, §3.4.3, §3.5.2). Strict mode refuses a
// resource body without schemas, with a schemas that is not an array of
// URNs, without the resource's core URN, naming a URN the server does not
// declare, or carrying an extension object its schemas does not list; and
// a PatchOp or SearchRequest without its message URN. Quirks mode takes a
// body without schemas, but one that is given must be an array holding
// the core (or message) URN, as Okta and Entra ID always send.
func TestSchemasChecked(t *testing.T) {
	const (
		core    = `"urn:ietf:params:scim:schemas:core:2.0:User"`
		ent     = `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
		contoso = `"urn:ietf:params:scim:schemas:extension:contoso:2.0:User"`
		group   = `"urn:ietf:params:scim:schemas:core:2.0:Group"`
		search  = `"urn:ietf:params:scim:api:messages:2.0:SearchRequest"`
	)
	n := 0
	userBody := func(schemas string, extra ...string) string {
		n++
		fields := []string{`"userName":"schemas-user-` + strings.Repeat("x", n) + `"`}
		if schemas != "" {
			fields = append([]string{`"schemas":` + schemas}, fields...)
		}
		return "{" + strings.Join(append(fields, extra...), ",") + "}"
	}
	type req struct {
		name, method, path string
		body               func() string
		strict, quirks     int
	}
	dept := `"` + scim.URNEnterprise + `":{"department":"Ops"}`
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		id := e.createUser(t, user("schemas-put"))
		gid := ""
		if status, _, b := e.do(t, "POST", "/Groups", `{"schemas":[`+group+`],"displayName":"SchemaStaff"}`); status == 201 {
			gid = decode(t, b)["id"].(string)
		} else {
			t.Fatalf("create group: %d %s", status, b)
		}
		for _, tc := range []req{
			{"CreateNoSchemas", "POST", "/Users", func() string { return userBody("") }, 400, 201},
			{"CreateSchemasString", "POST", "/Users", func() string { return userBody(core) }, 400, 400},
			{"CreateSchemasNotStrings", "POST", "/Users", func() string { return userBody(`[7]`) }, 400, 400},
			{"CreateNoCoreURN", "POST", "/Users", func() string { return userBody(`[` + ent + `]`) }, 400, 400},
			{"CreateUndeclaredURN", "POST", "/Users", func() string { return userBody(`[` + core + `,` + contoso + `]`) }, 400, 201},
			{"CreateUnlistedExtension", "POST", "/Users", func() string { return userBody(`[`+core+`]`, dept) }, 400, 201},
			{"CreateUnlistedUnknownExtension", "POST", "/Users", func() string { return userBody(`[`+core+`]`, contoso+`:{"badge":"1"}`) }, 400, 201},
			{"CreateGroupURNOnUser", "POST", "/Users", func() string { return userBody(`[` + group + `]`) }, 400, 400},
			{"CreateListed", "POST", "/Users", func() string { return userBody(`[`+core+`,`+ent+`]`, dept) }, 201, 201},
			{"CreateCaseOfURN", "POST", "/Users", func() string { return userBody(`[` + strings.ToLower(core) + `]`) }, 201, 201},
			{"ReplaceNoSchemas", "PUT", "/Users/" + id, func() string { return `{"userName":"schemas-put"}` }, 400, 200},
			{"ReplaceUnlistedExtension", "PUT", "/Users/" + id, func() string { return `{"schemas":[` + core + `],"userName":"schemas-put",` + dept + `}` }, 400, 200},
			{"ReplaceNoCoreURN", "PUT", "/Users/" + id, func() string { return `{"schemas":[` + group + `],"userName":"schemas-put"}` }, 400, 400},
			{"ReplaceListed", "PUT", "/Users/" + id, func() string { return `{"schemas":[` + core + `],"userName":"schemas-put"}` }, 200, 200},
			{"CreateGroupNoSchemas", "POST", "/Groups", func() string { return `{"displayName":"NoSchemas"}` }, 400, 201},
			{"CreateGroupUserURN", "POST", "/Groups", func() string { return `{"schemas":[` + core + `],"displayName":"UserURN"}` }, 400, 400},
			{"ReplaceGroupNoSchemas", "PUT", "/Groups/" + gid, func() string { return `{"displayName":"SchemaStaff"}` }, 400, 200},
			{"PatchNoSchemas", "PATCH", "/Users/" + id, func() string { return `{"Operations":[{"op":"replace","path":"title","value":"T"}]}` }, 400, 200},
			{"PatchWrongURN", "PATCH", "/Users/" + id, func() string {
				return `{"schemas":[` + core + `],"Operations":[{"op":"replace","path":"title","value":"T"}]}`
			}, 400, 400},
			{"PatchGroupNoSchemas", "PATCH", "/Groups/" + gid, func() string {
				return `{"Operations":[{"op":"replace","path":"displayName","value":"SchemaStaff2"}]}`
			}, 400, 204},
			{"PatchListed", "PATCH", "/Users/" + id, func() string { return patchBody(`[{"op":"replace","path":"title","value":"T2"}]`) }, 200, 200},
			{"SearchNoSchemas", "POST", "/Users/.search", func() string { return `{"filter":"userName eq \"x\""}` }, 400, 200},
			{"SearchWrongURN", "POST", "/Users/.search", func() string { return `{"schemas":[` + core + `],"filter":"userName eq \"x\""}` }, 400, 400},
			{"SearchListed", "POST", "/Users/.search", func() string { return `{"schemas":[` + search + `],"filter":"userName eq \"x\""}` }, 200, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want := tc.strict
				if quirks {
					want = tc.quirks
				}
				status, _, b := e.do(t, tc.method, tc.path, tc.body())
				if status != want {
					t.Fatalf("%s %s: %d, want %d: %s", tc.method, tc.path, status, want, b)
				}
				if status == 400 {
					if st := scimType(t, b); st != "invalidValue" {
						t.Errorf("scimType %q, want invalidValue: %s", st, b)
					}
					if !strings.Contains(decode(t, b)["detail"].(string), "schemas") {
						t.Errorf("detail does not name schemas: %s", b)
					}
				}
			})
		}
	})
}
