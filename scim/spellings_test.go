package scim_test

import (
	"fmt"
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestNoSpellingDropped (N6): every spelling of an attribute in a create
// or replace body is read as that attribute or refused with 400 naming
// it, never dropped: the keys of an object keyed by the core URN, a key
// inside the enterprise object that repeats its URN, and (quirks) the
// flattened URN-qualified form. Beside another spelling of the same
// attribute it is the "given twice" 400. An externalId qualified by the
// core URN (a common attribute, in no schema: RFC 7643 §3.1) is refused
// in a body and as a PATCH path, where it answered 200 and wrote nothing.
func TestNoSpellingDropped(t *testing.T) {
	const core, ent = "urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	modes(t, func(t *testing.T, quirks bool) {
		e := newEnv(t, scim.Config{Quirks: &quirks})
		n := 0
		body := func(attrs string) string {
			n++
			return fmt.Sprintf(`{"schemas":["%s","%s"],"userName":"sp-%d",%s}`, core, ent, n, attrs)
		}
		type check struct{ path, value string }
		stored := func(t *testing.T, status int, got string, checks ...check) {
			t.Helper()
			if status != 200 && status != 201 {
				t.Fatalf("status %d: %s", status, got)
			}
			d := decode(t, got)
			for _, c := range checks {
				want(t, d, c.path, c.value)
			}
		}
		refused := func(t *testing.T, status int, got, scimT, names string) {
			t.Helper()
			if status != 400 || scimType(t, got) != scimT || !strings.Contains(got, names) {
				t.Fatalf("status %d, want 400 %s naming %q: %s", status, scimT, names, got)
			}
		}
		t.Run("CoreObject", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"`+core+`":{"displayName":"A","name":{"givenName":"G"}}`))
			stored(t, status, got, check{"displayName", "A"}, check{"name.givenName", "G"})
			id := decode(t, got)["id"].(string)
			status, _, got = e.do(t, "PUT", "/Users/"+id, body(`"`+core+`":{"displayName":"B"}`))
			stored(t, status, got, check{"displayName", "B"})
		})
		t.Run("CoreObjectBesidePlain", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"`+core+`":{"displayName":"A"},"displayName":"B"`))
			refused(t, status, got, "invalidValue", "displayName is given twice")
		})
		t.Run("QualifiedKeyInEnterprise", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"`+ent+`":{"`+ent+`:department":"B","costCenter":"C"}`))
			stored(t, status, got, check{ent + ".department", "B"}, check{ent + ".costCenter", "C"})
		})
		t.Run("QualifiedKeyInEnterpriseBesidePlain", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"`+ent+`":{"department":"A","`+ent+`:department":"B"}`))
			refused(t, status, got, "invalidValue", "department is given twice")
		})
		t.Run("OtherSchemaKeyInEnterprise", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"`+ent+`":{"`+core+`:displayName":"B"}`))
			refused(t, status, got, "invalidValue", "an attribute of another schema")
		})
		t.Run("ExternalIDQualified", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"externalId":"A","`+core+`:externalId":"B"`))
			refused(t, status, got, "invalidValue", core+":externalId")
		})
		t.Run("Flattened", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"`+ent+`:department":"B","`+core+`:name.givenName":"G"`))
			if !quirks {
				refused(t, status, got, "invalidValue", "give an extension attribute inside the object keyed by its schema URN")
				return
			}
			stored(t, status, got, check{ent + ".department", "B"}, check{"name.givenName", "G"})
		})
		if quirks {
			t.Run("QualifiedObjectBesideSubKey", func(t *testing.T) {
				status, _, got := e.do(t, "POST", "/Users", body(`"`+core+`:name":{"givenName":"A"},"name.givenName":"B"`))
				refused(t, status, got, "invalidValue", "name is given twice")
			})
		}
		t.Run("PatchQualifiedExternalID", func(t *testing.T) {
			status, _, got := e.do(t, "POST", "/Users", body(`"externalId":"X"`))
			stored(t, status, got, check{"externalId", "X"})
			id := decode(t, got)["id"].(string)
			for _, ops := range []string{
				`[{"op":"replace","path":"` + core + `:externalId","value":"C"}]`,
				`[{"op":"replace","value":{"` + core + `:externalId":"C"}}]`,
				`[{"op":"replace","value":{"externalId":"A","` + core + `:externalId":"C"}}]`,
			} {
				status, _, got := e.do(t, "PATCH", "/Users/"+id, patchBody(ops))
				refused(t, status, got, "invalidPath", "externalId is a common attribute")
			}
			_, _, got = e.do(t, "GET", "/Users/"+id, "")
			want(t, decode(t, got), "externalId", "X")
		})
	})
}
