package scim

import (
	"encoding/json"
	"strings"
	"testing"

	"gatehouse/provision"
)

func fuzzServer(t testing.TB) *Server {
	supports := func(string) bool { return true }
	users := &resourceType{name: "User", endpoint: "/Users", core: userSchema(supports), hasExternalID: true,
		ext: []*schema{enterpriseSchema(supports)}}
	return &Server{users: users, groups: &resourceType{name: "Group", core: groupSchema(), hasExternalID: true}}
}

func TestRewriteEntra(t *testing.T) {
	for in, want := range map[string]string{
		`emails[type eq "work"].value eq "a@b"`:                      `emails[type eq "work" and value eq "a@b"]`,
		`emails[type eq "work"].value pr`:                            `emails[type eq "work" and value pr]`,
		`userName eq "x" and emails[type eq "wo]rk"].value co "\"q"`: `userName eq "x" and emails[type eq "wo]rk" and value co "\"q"]`,
		`emails[type eq "work" and value co "@x"]`:                   `emails[type eq "work" and value co "@x"]`,
		`userName eq "emails[type eq \"work\"].value eq \"x\""`:      `userName eq "emails[type eq \"work\"].value eq \"x\""`,
	} {
		if got := rewriteEntra(in); got != want {
			t.Errorf("rewriteEntra(%s)\n got %s\nwant %s", in, got, want)
		}
	}
}

// FuzzFilter: any filter text yields a store filter or a SCIM 400, never
// a panic, and every field it names is one the schema maps.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`, `name.familyName co "O'Malley"`, `emails[type eq "work" and value co "@example.com"]`,
		`emails[type eq "work"].value eq "x"`, `not (active eq true) or meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"`, `title pr`, `userName eq "a\"b\\"`,
		`((userName sw "a") and (title ew "b")) or displayName ne ""`, `members[value eq "x"]`,
	} {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, rt := range []*resourceType{s.users, s.groups} {
			flt, err := s.parseFilter(rt, raw)
			if err != nil {
				if e, ok := err.(*Error); !ok || e.Status != 400 || e.Type != "invalidFilter" {
					t.Fatalf("parseFilter(%q) error %v is not a 400 invalidFilter", raw, err)
				}
				continue
			}
			walk(t, flt)
		}
	})
}

func walk(t *testing.T, f provision.Filter) {
	switch f := f.(type) {
	case provision.And:
		for _, c := range f {
			walk(t, c)
		}
	case provision.Or:
		for _, c := range f {
			walk(t, c)
		}
	case provision.Not:
		walk(t, f.Filter)
	case provision.Compare:
		if f.Field == "" || strings.ContainsAny(f.Field, " ()'\"") {
			t.Fatalf("filter names field %q", f.Field)
		}
	default:
		t.Fatalf("unexpected node %T", f)
	}
}

// FuzzPatch: any PATCH path and value leave the resource a valid user or
// fail with a SCIM 400, never a panic.
func FuzzPatch(f *testing.F) {
	for _, s := range []struct{ op, path, value string }{
		{"replace", `emails[type eq "work"].value`, `"a@b"`}, {"add", "name.givenName", `"x"`},
		{"remove", `members[value eq "1"]`, `null`}, {"Replace", "", `{"active":false,"name.familyName":"y"}`},
		{"add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", `"m"`},
		{"remove", "emails", `[{"value":"a@b"}]`}, {"replace", `emails[not (type eq "home")]`, `{"value":"z"}`},
	} {
		f.Add(s.op, s.path, s.value)
	}
	s := fuzzServer(f)
	s.cfg.Quirks = nil
	f.Fuzz(func(t *testing.T, op, path, value string) {
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			return
		}
		u := provision.User{ID: "u1", UserName: "pat", Email: "p@x", Active: true, Extra: map[string]string{"title": "T"}}
		doc := s.userDoc(u)
		p := &patcher{rt: s.users, id: "u1", quirks: true}
		body := map[string]any{"Operations": []any{map[string]any{"op": op, "path": path, "value": v}}}
		ops, err := p.parseOps(body)
		if err == nil {
			err = p.applyAll(doc, ops)
		}
		if err == nil {
			_, err = decoder{quirks: true}.user(s.users, doc, u)
		}
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Status != 400 {
				t.Fatalf("op %q path %q value %s: error %v is not a SCIM 400", op, path, value, err)
			}
		}
	})
}
