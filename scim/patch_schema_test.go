package scim_test

import (
	"strings"
	"testing"

	"gatehouse/scim"
)

// TestPatchSchemaURNs: a PATCH path that is a whole schema URN names every
// attribute of that schema (RFC 7644 §3.5.2): add and replace with an
// object set its attributes and leave the others, remove clears an
// extension. A path-less value keyed by the core schema URN applies the
// attributes under it, as one keyed by an extension URN does. Forms that
// cannot mean anything are 400 with their scimType, never a silent 200.
// (Before, every one of these answered 200 and changed nothing.)
func TestPatchSchemaURNs(t *testing.T) {
	const acme = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
	ext := scim.Extension{URN: acme, Attributes: map[string]string{"badge": "badge_no", "floor": "floor_no"}}
	base := user("sam", `"displayName":"Sam","name":{"givenName":"Sam","familyName":"Roe"}`, `"title":"Dev"`,
		`"`+scim.URNEnterprise+`":{"department":"Eng","division":"West","manager":{"value":"m-1"}}`,
		`"`+acme+`":{"badge":"B-1","floor":"3"}`)
	op := func(op, path, value string) string {
		o := `{"op":"` + op + `"`
		if path != "" {
			o += `,"path":"` + path + `"`
		}
		if value != "" {
			o += `,"value":` + value
		}
		return "[" + o + "}]"
	}
	for _, tc := range []struct {
		name     string
		ops      string
		status   int
		scimType string
		check    func(t *testing.T, d map[string]any)
	}{
		{"ReplaceEnterpriseByURN", op("replace", scim.URNEnterprise, `{"department":"Ops","costCenter":"42"}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, scim.URNEnterprise+".department", "Ops")
			want(t, d, scim.URNEnterprise+".costCenter", "42")
			want(t, d, scim.URNEnterprise+".division", "West")
			want(t, d, scim.URNEnterprise+".manager.value", "m-1")
		}},
		{"AddEnterpriseByURN", op("add", scim.URNEnterprise, `{"organization":"Acme"}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, scim.URNEnterprise+".organization", "Acme")
			want(t, d, scim.URNEnterprise+".department", "Eng")
		}},
		{"ReplaceEnterpriseByURNAnyCase", op("replace", strings.ToLower(scim.URNEnterprise), `{"department":"Ops"}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, scim.URNEnterprise+".department", "Ops")
		}},
		{"RemoveEnterpriseByURN", op("remove", scim.URNEnterprise, ""), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, scim.URNEnterprise, nil)
			want(t, d, acme+".badge", "B-1")
			want(t, d, "title", "Dev")
		}},
		{"ReplaceCustomByURN", op("replace", acme, `{"badge":"B-2"}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, acme+".badge", "B-2")
			want(t, d, acme+".floor", "3")
		}},
		{"RemoveCustomByURN", op("remove", acme, ""), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, acme, nil)
			want(t, d, scim.URNEnterprise+".department", "Eng")
		}},
		{"PathlessCoreURN", op("replace", "", `{"`+scim.URNUser+`":{"displayName":"Samantha","name":{"givenName":"Samantha"},"externalId":"ext-9"}}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, "displayName", "Samantha")
			want(t, d, "name.givenName", "Samantha")
			want(t, d, "name.familyName", "Roe")
			want(t, d, "externalId", "ext-9")
			want(t, d, "title", "Dev")
		}},
		{"PathlessCoreURNAdd", op("add", "", `{"`+scim.URNUser+`":{"nickName":"S"}}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, "nickName", "S")
			want(t, d, "displayName", "Sam")
		}},
		{"PathlessCoreAndExtensionURNs", op("replace", "", `{"`+scim.URNUser+`":{"title":"Lead"},"`+acme+`":{"floor":"4"}}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, "title", "Lead")
			want(t, d, acme+".floor", "4")
		}},
		{"ReplaceCoreByURN", op("replace", scim.URNUser, `{"displayName":"S. Roe"}`), 200, "", func(t *testing.T, d map[string]any) {
			want(t, d, "displayName", "S. Roe")
			want(t, d, "userName", "sam")
		}},
		{"RemoveCoreByURN", op("remove", scim.URNUser, ""), 400, "invalidPath", nil},
		{"ReplaceExtensionURNWithString", op("replace", acme, `"B-3"`), 400, "invalidValue", nil},
		{"ReplaceExtensionURNWithNull", op("replace", scim.URNEnterprise, `null`), 400, "invalidValue", nil},
		{"RemoveExtensionURNWithValue", op("remove", acme, `{"badge":"B-1"}`), 400, "invalidValue", nil},
		{"PathlessCoreURNNotObject", op("replace", "", `{"`+scim.URNUser+`":"x"}`), 400, "invalidValue", nil},
		{"CoreObjectHoldingSchema", op("replace", "", `{"`+scim.URNUser+`":{"`+acme+`":{"badge":"B-4"}}}`), 400, "invalidValue", nil},
		{"PathlessCoreURNOtherID", op("replace", "", `{"`+scim.URNUser+`":{"id":"someone-else"}}`), 400, "mutability", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, scim.Config{Extension: ext})
			id := e.createUser(t, base)
			_, _, before := e.do(t, "GET", "/Users/"+id, "")
			status, _, body := e.do(t, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+tc.ops+`}`)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			_, _, after := e.do(t, "GET", "/Users/"+id, "")
			if tc.check == nil {
				if got := decode(t, body)["scimType"]; got != tc.scimType {
					t.Errorf("scimType %v, want %s: %s", got, tc.scimType, body)
				}
				if after != before {
					t.Errorf("failed PATCH changed the user:\nbefore %s\nafter  %s", before, after)
				}
				return
			}
			if after == before {
				t.Errorf("PATCH answered 200 and changed nothing: %s", after)
			}
			tc.check(t, decode(t, after))
		})
	}
}
