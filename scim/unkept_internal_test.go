package scim

import (
	"encoding/json"
	"testing"

	"gatehouse/provision"
)

// narrowUsers is the User resource type of a store that keeps no middle
// name, no home e-mail and no enterprise attribute: schema.keep drops
// them, so lookup does not find them.
func narrowUsers() *resourceType {
	supports := func(f string) bool {
		switch f {
		case "middle_name", "email_home", "employee_number", "cost_center", "organization", "division", "department", "manager_id":
			return false
		}
		return true
	}
	rt := &resourceType{name: "User", endpoint: "/Users", core: userSchema(supports), hasExternalID: true}
	if ent := enterpriseSchema(supports); len(ent.attrs) > 0 {
		rt.ext = append(rt.ext, ent)
	}
	return rt
}

// TestPatchUnkeptIsNotTypo: on a store that does not keep an attribute
// RFC 7643 defines (here the middle name, the home e-mail and the whole
// enterprise extension), a PATCH naming it is ignored, in both modes, as
// password is; a misspelt name under the same schemas is still 400
// invalidPath. Dropped attributes look unknown to lookup, so this needs
// RFC 7643's own list.
func TestPatchUnkeptIsNotTypo(t *testing.T) {
	rt := narrowUsers()
	if len(rt.ext) != 0 {
		t.Fatalf("the narrow store still keeps an extension: %v", rt.ext[0].id)
	}
	for _, quirks := range []bool{true, false} {
		for _, tc := range []struct {
			name, op, path, value string
			scimType              string // "" when ignored
		}{
			{"MiddleName", "replace", "name.middleName", `"Q"`, ""},
			{"MiddleNameInObject", "add", "name", `{"givenName":"A","middleName":"Q"}`, ""},
			{"EmailElementDisplay", "add", "emails", `[{"type":"work","value":"w@x.test","display":"W"}]`, ""},
			{"EnterpriseAttribute", "replace", URNEnterprise + ":department", `"Ops"`, ""},
			{"EnterpriseManager", "add", URNEnterprise + ":manager.value", `"m-1"`, ""},
			{"EnterpriseWhole", "replace", URNEnterprise, `{"department":"Ops"}`, ""},
			{"EnterpriseUnqualified", "replace", "costCenter", `"42"`, ""},
			{"MiddleNameTypo", "replace", "name.middleNmae", `"Q"`, "invalidPath"},
			{"EnterpriseTypo", "replace", URNEnterprise + ":departmnet", `"Ops"`, "invalidPath"},
			{"EnterpriseSubTypo", "replace", URNEnterprise + ":manager.vaule", `"m-1"`, "invalidPath"},
			{"ObjectTypo", "add", "name", `{"givenName":"A","midleName":"Q"}`, "invalidPath"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := &patcher{rt: rt, id: "u1", quirks: quirks}
				var v any
				if err := json.Unmarshal([]byte(tc.value), &v); err != nil {
					t.Fatal(err)
				}
				doc := map[string]any{"userName": "alice", "name": map[string]any{"givenName": "A"},
					"emails": []any{map[string]any{"type": "work", "value": "w@x.test"}}}
				err := p.apply(doc, operation{op: tc.op, path: tc.path, value: v, has: true})
				if tc.scimType == "" {
					if err != nil {
						t.Fatalf("quirks=%v: %v, want it ignored", quirks, err)
					}
					u, err := decoder{quirks: quirks}.user(rt, doc, provision.User{})
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if u.Field("middle_name") != "" || u.Field("department") != "" {
						t.Errorf("an unkept attribute reached the record: %+v", u)
					}
					return
				}
				var e *Error
				if err == nil || !asError(err, &e) || e.Type != tc.scimType {
					t.Fatalf("quirks=%v: %v, want %s", quirks, err, tc.scimType)
				}
			})
		}
	}
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}
