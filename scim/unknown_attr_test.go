package scim_test

import (
	"testing"

	"gatehouse/scim"
)

// TestPatchUnknownAttribute: a path (or a key of a path-less value, or a
// key inside a value) that names no attribute of any schema the server
// declares is a typo: 400 invalidPath in both modes, where it answered 200
// and changed nothing. Attributes RFC 7643 defines that the store does not
// keep (password, roles, ims...) are still ignored. A path under a schema
// URN the server does not declare is refused in strict mode and ignored
// in quirks mode (Entra ID sends the custom extensions an admin mapped).
func TestPatchUnknownAttribute(t *testing.T) {
	base := user("ua-{{n}}", `"name":{"givenName":"Una","familyName":"Ames"}`, `"emails":[{"type":"work","value":"u@corp.test"}]`)
	const contoso = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User"
	modes(t, func(t *testing.T, quirks bool) {
		unknownURN := patchCase{"UnknownSchemaURN", `[{"op":"replace","path":"` + contoso + `:badge","value":"B-1"}]`, 400, "invalidPath", nil}
		unknownURNKey := patchCase{"UnknownSchemaURNKey", `[{"op":"replace","value":{"` + contoso + `":{"badge":"B-1"}}}]`, 400, "invalidPath", nil}
		if quirks {
			unknownURN.status, unknownURN.scimType = 200, ""
			unknownURNKey.status, unknownURNKey.scimType = 200, ""
		}
		runPatchCases(t, quirks, base, []patchCase{
			{"TypoInAttribute", `[{"op":"replace","path":"nmae.givenName","value":"X"}]`, 400, "invalidPath", nil},
			{"TypoInTopLevel", `[{"op":"replace","path":"userNme","value":"x"}]`, 400, "invalidPath", nil},
			{"TypoInSubAttribute", `[{"op":"replace","path":"name.givenNmae","value":"X"}]`, 400, "invalidPath", nil},
			{"TypoRemove", `[{"op":"remove","path":"titel"}]`, 400, "invalidPath", nil},
			{"TypoInEnterprise", `[{"op":"replace","path":"` + scim.URNEnterprise + `:departmnet","value":"Ops"}]`, 400, "invalidPath", nil},
			{"TypoInEnterpriseObject", `[{"op":"replace","path":"` + scim.URNEnterprise + `","value":{"departmnet":"Ops"}}]`, 400, "invalidPath", nil},
			{"PathlessTypo", `[{"op":"replace","value":{"displayName":"U","userNme":"x"}}]`, 400, "invalidPath", nil},
			{"PathlessDottedTypo", `[{"op":"replace","value":{"name.givenNmae":"X"}}]`, 400, "invalidPath", nil},
			{"PathlessSubKeyTypo", `[{"op":"replace","value":{"name":{"givenNmae":"X"}}}]`, 400, "invalidPath", nil},
			{"ComplexValueSubKeyTypo", `[{"op":"add","path":"name","value":{"givenName":"X","familyNmae":"Y"}}]`, 400, "invalidPath", nil},
			{"ElementSubKeyTypo", `[{"op":"add","path":"emails","value":[{"value":"h@x.test","tpye":"home"}]}]`, 400, "invalidPath", nil},
			{"FilteredObjectSubKeyTypo", `[{"op":"replace","path":"emails[type eq \"work\"]","value":{"vaule":"x@x.test"}}]`, 400, "invalidPath", nil},
			unknownURN,
			unknownURNKey,
			{"PasswordIgnored", `[{"op":"replace","path":"password","value":"hunter2-hunter2"}]`, 200, "", func(t *testing.T, d map[string]any) { want(t, d, "password", nil) }},
			{"RolesIgnored", `[{"op":"add","path":"roles","value":[{"value":"admin","primary":true}]}]`, 200, "", func(t *testing.T, d map[string]any) { want(t, d, "roles", nil) }},
			{"ImsFilterIgnored", `[{"op":"replace","path":"ims[type eq \"aim\"].value","value":"x"}]`, 200, "", func(t *testing.T, d map[string]any) { want(t, d, "ims", nil) }},
			{"PathlessRFCKeysIgnored", `[{"op":"replace","value":{"password":"hunter2-hunter2","x509Certificates":[],"displayName":"Una A."}}]`, 200, "", func(t *testing.T, d map[string]any) { want(t, d, "displayName", "Una A.") }},
			{"KnownStillWorks", `[{"op":"replace","path":"name.givenName","value":"Ursula"}]`, 200, "", func(t *testing.T, d map[string]any) { want(t, d, "name.givenName", "Ursula") }},
		})
	})
}
