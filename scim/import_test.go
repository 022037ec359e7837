package scim_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gatehouse/provision"
	"gatehouse/scim"
)

// TestImportSchemasLikePOST (issue 18, F1): a resource of gatehouse import
// passes the schemas check of a SCIM POST and PUT, in the same mode: each
// body an import reads is refused (or taken) as the request would be, with
// the same words. Before, the import skipped the check, so bodies with
// empty, malformed or foreign schemas were created in either mode.
func TestImportSchemasLikePOST(t *testing.T) {
	const ent = `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
	bodies := []string{
		`{"userName":"{{n}}","schemas":[]}`,
		`{"userName":"{{n}}","schemas":"urn:ietf:params:scim:schemas:core:2.0:User"}`,
		`{"userName":"{{n}}","schemas":["urn:foo"]}`,
		`{"userName":"{{n}}","schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}`,
		`{"userName":"{{n}}","schemas":[1]}`,
		`{"userName":"{{n}}"}`,
		`{"userName":"{{n}}",` + ent + `:{"department":"X"}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:bogus"],"userName":"{{n}}"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"{{n}}",` + ent + `:{"department":"Y"}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User",` + ent + `],"userName":"{{n}}",` + ent + `:{"department":"Y"}}`,
	}
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		refused := 0
		for i, b := range bodies {
			name := "u" + string(rune('a'+i))
			body := strings.ReplaceAll(b, "{{n}}", name)
			_, importErr := e.srv.DecodeUser([]byte(body))
			status, _, answer := e.do(t, "POST", "/Users", body)
			postErr, _ := decode(t, answer)["detail"].(string)
			switch {
			case status == 201 && importErr != nil:
				t.Errorf("%s: POST took it, the import refused it: %v", body, importErr)
			case status != 201 && importErr == nil:
				t.Errorf("%s: POST answered %d %s, the import took it", body, status, postErr)
			case status != 201:
				refused++
				var se *scim.Error
				if !errors.As(importErr, &se) || se.Detail != postErr {
					t.Errorf("%s: import says %v, POST says %q", body, importErr, postErr)
				}
			}
			if status != 201 {
				continue
			}
			// A replacement is checked as a PUT is.
			id := decode(t, answer)["id"].(string)
			page, err := e.store.(provision.Directory).FindUsers(context.Background(), provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: name, Fold: true}, Limit: 1})
			if err != nil || len(page.Items) != 1 {
				t.Fatalf("find %s: %v %v", name, page, err)
			}
			for _, nb := range bodies {
				nb = strings.ReplaceAll(nb, "{{n}}", name)
				_, importErr := e.srv.DecodeReplacement([]byte(nb), page.Items[0])
				status, _, answer := e.do(t, "PUT", "/Users/"+id, nb)
				if (status == 200) != (importErr == nil) {
					t.Errorf("replace with %s: PUT answered %d %s, the import: %v", nb, status, answer, importErr)
				}
				if status == 200 {
					page, _ = e.store.(provision.Directory).FindUsers(context.Background(), provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: name, Fold: true}, Limit: 1})
				}
			}
		}
		if want := map[bool]int{true: 5, false: 9}[quirks]; refused != want {
			t.Errorf("%d bodies refused, want %d", refused, want)
		}
	})
}

// TestImportUserColumn (issue 18, F4d): a CSV header column resolves
// against the server's schemas to where its cells go, and one that would
// be dropped or refused in every row is an error.
func TestImportUserColumn(t *testing.T) {
	e := newEnv(t, scim.Config{})
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	for _, tc := range []struct {
		urn, name, typ string
		typed          bool
		sub            string
		want           scim.Column
		err            string
	}{
		{name: "USERNAME", want: scim.Column{Attr: "userName"}},
		{urn: scim.URNUser, name: "name", sub: "GIVENNAME", want: scim.Column{Attr: "name", Sub: "givenName"}},
		{name: "department", want: scim.Column{URN: ent, Attr: "department"}},
		{urn: strings.ToUpper(ent), name: "manager", sub: "value", want: scim.Column{URN: ent, Attr: "manager", Sub: "value"}},
		{name: "emails", typ: "Work", typed: true, sub: "value", want: scim.Column{Attr: "emails", Sub: "value", Type: "work", Typed: true, Multi: true}},
		{name: "emails", sub: "value", want: scim.Column{Attr: "emails", Sub: "value", Multi: true}},
		{name: "nmae", sub: "givenName", err: `this server declares no user attribute "nmae"`},
		{name: "schemas", err: "schemas is not a column"},
		{name: "id", err: "id is read-only"},
		{name: "groups", typ: "direct", typed: true, sub: "value", err: `"groups" is read-only`},
		{name: "password", err: `"password" is not kept by this server's store`},
		{urn: "urn:foo", name: "x", err: `this server declares no schema "urn:foo"`},
		{name: "name", err: "name is complex: name a sub-attribute"},
		{name: "emails", err: "emails is multi-valued: name a sub-attribute"},
		{name: "emails", typ: "pager", typed: true, sub: "value", err: `emails of type "pager" cannot be stored`},
		{name: "emails", typ: "work", typed: true, sub: "primary", err: `emails of type "work" keeps no primary`},
		{name: "userName", sub: "x", err: "userName has no sub-attributes"},
		{name: "name", sub: "nope", err: `name has no sub-attribute "nope"`},
		{name: "userName", typ: "work", typed: true, sub: "value", err: "userName has no sub-attributes"},
		{name: "manager", urn: ent, sub: "displayName", err: "manager.displayName is read-only"},
	} {
		got, err := e.srv.UserColumn(tc.urn, tc.name, tc.typ, tc.typed, tc.sub)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%+v: error %v, want %q", tc, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%+v: %+v, %v; want %+v", tc, got, err, tc.want)
		}
	}
}
