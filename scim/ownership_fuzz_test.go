package scim

import (
	"encoding/json"
	"slices"
	"testing"

	"gatehouse/provision"
)

// FuzzPatchNamed: for any PATCH operation, naming its fields never panics,
// and a PATCH that succeeds changes no field it did not name, so that
// SCIMFields covers every field SCIM wrote.
func FuzzPatchNamed(f *testing.F) {
	for _, s := range []struct{ op, path, value string }{
		{"replace", `emails[type eq "work"].value`, `"a@b"`}, {"add", "name.givenName", `"x"`},
		{"replace", "", `{"active":false,"name.familyName":"y"}`}, {"replace", "active", `false`},
		{"add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", `"m"`},
		{"replace", "", `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"d"}}`},
		{"remove", "emails", `[{"value":"p@x"}]`}, {"replace", `emails[not (type eq "home")]`, `{"value":"z","type":"other"}`},
		{"replace", "emails", `[{"value":"a@b"},{"value":"c@d","type":"work"}]`}, {"add", "emails", `{"value":"h@x"}`},
		{"remove", "name", `null`}, {"replace", "name", `{"givenName":"g"}`}, {"replace", "externalId", `"e"`},
		{"add", `phoneNumbers[type eq "mobile"].value`, `"555"`}, {"replace", `emails[value co "p"].type`, `"home"`},
	} {
		f.Add(s.op, s.path, s.value)
	}
	s := fuzzServer(f)
	var fields []string
	for _, sc := range s.users.schemas() {
		fields = append(fields, sc.fields()...)
	}
	fields = append(fields, provision.FieldExternalID)
	f.Fuzz(func(t *testing.T, op, path, value string) {
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			return
		}
		u := provision.User{ID: "u1", UserName: "pat", Email: "p@x", GivenName: "Pat", Active: true,
			Extra: map[string]string{"title": "T", "phone_work": "1", "department": "D"}}
		doc := s.userDoc(u)
		p := &patcher{rt: s.users, id: "u1", quirks: true}
		body := map[string]any{"Operations": []any{map[string]any{"op": op, "path": path, "value": v}}}
		ops, err := p.parseOps(body)
		if err != nil {
			return
		}
		named, err := p.applyNamed(doc, ops, true)
		if err != nil {
			return
		}
		next, err := decoder{quirks: true}.user(s.users, doc, u)
		if err != nil {
			return
		}
		for _, f := range fields {
			if u.Field(f) != next.Field(f) && !slices.Contains(named, f) {
				t.Fatalf("op %q path %q value %s changed %s (%q -> %q) but named only %q", op, path, value, f, u.Field(f), next.Field(f), named)
			}
		}
	})
}
