package scim_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"gatehouse/provision"
	"gatehouse/scim"
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// jitUser provisions a user by a login, as the ACS does: SCIM has written
// none of its fields.
func (e *env) jitUser(t *testing.T, subject string, fields map[string]string) provision.User {
	t.Helper()
	res, err := e.store.Provision(context.Background(), e.login(subject, fields))
	if err != nil || res.Outcome != provision.Created {
		t.Fatalf("provision %s: %v %v", subject, res.Outcome, err)
	}
	return res.User
}

// login is a login of subject at the IdP "corp" asserting fields (core
// fields and extra attributes), with the fields SCIM owns reserved as
// serve reserves them.
func (e *env) login(subject string, fields map[string]string) provision.Login {
	c := provision.Claims{Fields: map[string]string{}, Extra: map[string]string{}}
	for k, v := range fields {
		switch k {
		case provision.FieldUserName, provision.FieldExternalID, provision.FieldEmail, provision.FieldDisplayName,
			provision.FieldGivenName, provision.FieldFamilyName:
			c.Fields[k] = v
		default:
			c.Extra[k] = v
		}
	}
	return provision.Login{Key: provision.Key{IdP: "corp", Kind: "nameid", Subject: subject}, Claims: c, Reserved: e.srv.OwnedFields()}
}

// scimFields reads the stored User.SCIMFields of a user.
func (e *env) scimFields(t *testing.T, id string) []string {
	t.Helper()
	u, err := e.store.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.SCIMFields
}

func (e *env) patch(t *testing.T, id, ops string) {
	t.Helper()
	status, _, body := e.do(t, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+ops+`}`)
	if status != http.StatusOK {
		t.Fatalf("PATCH %s: %d %s", ops, status, body)
	}
}

var emptyIsNil = cmpopts.EquateEmpty()

// TestPatchNamesFields pins the fields each kind of PATCH operation names
// and adds to SCIMFields, on a user a login created: active names none,
// the rest the store fields their path or value keys map to, whether the
// value changes or not. A path or key that is a whole schema URN names
// the attributes under it, and a remove of an extension URN every field of
// that extension: the URN rows write the values the login stored, so only
// the naming can record them (red team 2, F4).
func TestPatchNamesFields(t *testing.T) {
	const acme = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
	e := newEnv(t, scim.Config{Extension: scim.Extension{URN: acme, Attributes: map[string]string{"badge": "badge_no", "floor": "floor_no"}}})
	// The values the login stored, as a core URN object.
	const stored = `{"displayName":"Old Name","name":{"givenName":"Alice"},"emails":[{"type":"work","value":"old@corp.test"}]}`
	storedFields := []string{"display_name", "email", "given_name"}
	enterpriseFields := []string{"cost_center", "department", "division", "employee_number", "manager_id", "organization"}
	for _, tc := range []struct {
		name, ops string
		want      []string
	}{
		{"ActiveOnly", `[{"op":"replace","path":"active","value":false}]`, nil},
		{"ActivePathless", `[{"op":"replace","value":{"active":false}}]`, nil},
		{"ActiveStringQuirk", `[{"op":"Replace","path":"active","value":"False"}]`, nil},
		{"ReplaceEmails", `[{"op":"replace","path":"emails","value":[{"type":"work","value":"new@corp.test"}]}]`, []string{"email"}},
		{"AddHomeEmail", `[{"op":"add","path":"emails","value":[{"type":"home","value":"me@home.test"}]}]`, []string{"email_home"}},
		{"ReplaceEmailsUntyped", `[{"op":"replace","path":"emails","value":[{"value":"new@corp.test"}]}]`, []string{"email"}},
		{"FilteredByType", `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@corp.test"}]`, []string{"email"}},
		// A type spelled another way names the slot the filter matches,
		// even when the value does not change.
		{"FilteredByWideType", `[{"op":"replace","path":"emails[type eq \"ｗｏｒｋ\"].value","value":"old@corp.test"}]`, []string{"email"}},
		{"FilteredByAccentedType", `[{"op":"remove","path":"phoneNumbers[type eq \"mobıle\"]"}]`, []string{"phone_mobile"}},
		{"FilteredByValue", `[{"op":"replace","path":"emails[value eq \"OLD@corp.test\"].value","value":"new@corp.test"}]`, []string{"email"}},
		{"FilteredPrimary", `[{"op":"replace","path":"emails[primary eq true].value","value":"new@corp.test"}]`, []string{"email"}},
		{"RemoveEmails", `[{"op":"remove","path":"emails"}]`, []string{"email", "email_home", "email_other"}},
		{"ReplaceEmailsClearsHome", `[{"op":"add","path":"emails","value":[{"type":"home","value":"me@home.test"}]},{"op":"replace","path":"emails","value":[{"type":"other","value":"o@corp.test"}]}]`,
			[]string{"email", "email_home", "email_other"}},
		{"FilteredRemove", `[{"op":"remove","path":"emails[type eq \"work\"]"}]`, []string{"email"}},
		{"SameValue", `[{"op":"replace","path":"displayName","value":"Old Name"}]`, []string{"display_name"}},
		{"GivenName", `[{"op":"replace","path":"name.givenName","value":"Al"}]`, []string{"given_name"}},
		{"NameObject", `[{"op":"replace","path":"name","value":{"familyName":"Smith"}}]`, []string{"family_name"}},
		{"PathlessPaths", `[{"op":"replace","value":{"name.familyName":"Smith","displayName":"A S","active":true}}]`, []string{"display_name", "family_name"}},
		{"RemoveGivenName", `[{"op":"remove","path":"name.givenName"}]`, []string{"given_name"}},
		{"Enterprise", `[{"op":"add","path":"` + enterprise + `:department","value":"Ops"}]`, []string{"department"}},
		{"EnterprisePathless", `[{"op":"replace","value":{"` + enterprise + `":{"costCenter":"42","manager":{"value":"m-1"}}}}]`, []string{"cost_center", "manager_id"}},
		{"ExternalID", `[{"op":"replace","path":"externalId","value":"ext-1"}]`, []string{"external_id"}},
		{"Ignored", `[{"op":"replace","path":"password","value":"secret"},{"op":"add","path":"urn:example:unknown:attr","value":"x"}]`, nil},
		{"Several", `[{"op":"replace","path":"title","value":"Boss"},{"op":"add","path":"phoneNumbers[type eq \"mobile\"].value","value":"555"},{"op":"replace","path":"active","value":true}]`, []string{"phone_mobile", "title"}},
		{"EnterpriseURNPath", `[{"op":"replace","path":"` + enterprise + `","value":{"department":"idpdepartment"}}]`, []string{"department"}},
		{"EnterpriseURNPathAdd", `[{"op":"add","path":"` + enterprise + `","value":{"department":"idpdepartment"}}]`, []string{"department"}},
		{"EnterpriseURNPathLowerCase", `[{"op":"replace","path":"` + strings.ToLower(enterprise) + `","value":{"department":"idpdepartment"}}]`, []string{"department"}},
		{"EnterpriseURNPathUpperCase", `[{"op":"add","path":"` + strings.ToUpper(enterprise) + `","value":{"department":"idpdepartment"}}]`, []string{"department"}},
		{"CoreURNPath", `[{"op":"replace","path":"` + scim.URNUser + `","value":` + stored + `}]`, storedFields},
		{"CoreURNPathAdd", `[{"op":"add","path":"` + scim.URNUser + `","value":` + stored + `}]`, storedFields},
		{"CoreURNPathAnyCase", `[{"op":"replace","path":"` + strings.ToUpper(scim.URNUser) + `","value":` + stored + `}]`, storedFields},
		{"CustomURNPath", `[{"op":"replace","path":"` + acme + `","value":{"badge":"B-1"}}]`, []string{"badge_no"}},
		{"CustomURNPathAnyCase", `[{"op":"add","path":"` + strings.ToUpper(acme) + `","value":{"badge":"B-1"}}]`, []string{"badge_no"}},
		{"PathlessCoreURN", `[{"op":"replace","value":{"` + scim.URNUser + `":` + stored + `}}]`, storedFields},
		{"PathlessCoreURNAdd", `[{"op":"add","value":{"` + scim.URNUser + `":` + stored + `}}]`, storedFields},
		{"PathlessCoreURNAnyCase", `[{"op":"replace","value":{"` + strings.ToLower(scim.URNUser) + `":{"displayName":"Old Name"}}}]`, []string{"display_name"}},
		{"PathlessCoreAndCustomURNs", `[{"op":"replace","value":{"` + scim.URNUser + `":{"displayName":"Old Name"},"` + acme + `":{"badge":"B-1"}}}]`, []string{"badge_no", "display_name"}},
		// A remove of an extension URN clears every field of it, those
		// that were empty too.
		{"RemoveEnterpriseURN", `[{"op":"remove","path":"` + enterprise + `"}]`, enterpriseFields},
		{"RemoveCustomURN", `[{"op":"remove","path":"` + strings.ToLower(acme) + `"}]`, []string{"badge_no", "floor_no"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := e.jitUser(t, "patch-"+tc.name, map[string]string{
				provision.FieldUserName: "patch-" + strings.ToLower(tc.name), provision.FieldEmail: "old@corp.test",
				provision.FieldDisplayName: "Old Name", provision.FieldGivenName: "Alice",
				"department": "idpdepartment", "badge_no": "B-1",
			})
			e.patch(t, u.ID, tc.ops)
			if diff := cmp.Diff(tc.want, e.scimFields(t, u.ID), emptyIsNil); diff != "" {
				t.Errorf("SCIMFields (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeactivationTakesNoFields is the case: deactivating and
// reactivating a user a login created leaves every field to logins.
func TestDeactivationTakesNoFields(t *testing.T) {
	e := newEnv(t, scim.Config{})
	u := e.jitUser(t, "lifecycle", map[string]string{provision.FieldUserName: "lifecycle", provision.FieldEmail: "l@corp.test"})
	e.patch(t, u.ID, `[{"op":"replace","path":"active","value":false}]`)
	e.patch(t, u.ID, `[{"op":"replace","value":{"active":true}}]`)
	got, err := e.store.User(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Active || len(got.SCIMFields) != 0 {
		t.Errorf("after deactivate and reactivate: active %v, SCIMFields %q; want active, none", got.Active, got.SCIMFields)
	}
}

// TestCreateNamesFieldsSet: a POST names the fields its body sets, and no
// empty one.
func TestCreateNamesFieldsSet(t *testing.T) {
	e := newEnv(t, scim.Config{})
	id := e.createUser(t, user("posted", `"externalId":"x-1"`, `"name":{"givenName":"Po","familyName":""}`,
		`"emails":[{"type":"work","value":"p@corp.test"}]`, `"active":true`))
	want := []string{"email", "external_id", "given_name", "user_name"}
	if diff := cmp.Diff(want, e.scimFields(t, id)); diff != "" {
		t.Errorf("SCIMFields (-want +got):\n%s", diff)
	}
}

// TestReplaceNamesFields: a PUT names the fields its body carries and the
// stored fields it clears by leaving them out, not the empty fields it
// leaves empty.
func TestReplaceNamesFields(t *testing.T) {
	e := newEnv(t, scim.Config{})
	for _, tc := range []struct {
		name   string
		stored map[string]string
		want   []string
	}{
		{"NameAndEmail", map[string]string{provision.FieldUserName: "put1"}, []string{"email", "given_name", "user_name"}},
		{"ClearsByOmission", map[string]string{provision.FieldUserName: "put2", provision.FieldDisplayName: "Old", "title": "Dev"},
			[]string{"display_name", "email", "given_name", "title", "user_name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := e.jitUser(t, "put-"+tc.name, tc.stored)
			status, _, body := e.do(t, "PUT", "/Users/"+u.ID, user(u.UserName, `"name":{"givenName":"Pat"}`,
				`"emails":[{"type":"work","value":"pat@corp.test"}]`))
			if status != http.StatusOK {
				t.Fatalf("PUT: %d %s", status, body)
			}
			if diff := cmp.Diff(tc.want, e.scimFields(t, u.ID)); diff != "" {
				t.Errorf("SCIMFields (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSCIMFieldsAccumulate: each write adds the fields it named to those
// SCIM wrote before; a write naming none removes none.
func TestSCIMFieldsAccumulate(t *testing.T) {
	e := newEnv(t, scim.Config{})
	u := e.jitUser(t, "union", map[string]string{provision.FieldUserName: "union"})
	e.patch(t, u.ID, `[{"op":"add","path":"emails[type eq \"work\"].value","value":"u@corp.test"}]`)
	e.patch(t, u.ID, `[{"op":"replace","path":"name.givenName","value":"Uma"}]`)
	e.patch(t, u.ID, `[{"op":"replace","path":"active","value":false}]`)
	if diff := cmp.Diff([]string{"email", "given_name"}, e.scimFields(t, u.ID)); diff != "" {
		t.Errorf("SCIMFields (-want +got):\n%s", diff)
	}
}

// TestAllFieldsSticky: a user SCIM wrote before gatehouse recorded the
// fields ("*") keeps owning every field after new writes.
func TestAllFieldsSticky(t *testing.T) {
	e := newEnv(t, scim.Config{})
	dir := any(e.store).(provision.Directory)
	u, err := dir.CreateUser(context.Background(), provision.User{UserName: "legacy", Email: "l@corp.test", Active: true,
		SCIMFields: []string{provision.AllFields}})
	if err != nil {
		t.Fatal(err)
	}
	e.patch(t, u.ID, `[{"op":"replace","path":"name.givenName","value":"Leo"}]`)
	status, _, body := e.do(t, "PUT", "/Users/"+u.ID, user("legacy", `"title":"Dev"`))
	if status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, body)
	}
	if diff := cmp.Diff([]string{provision.AllFields}, e.scimFields(t, u.ID)); diff != "" {
		t.Errorf("SCIMFields (-want +got):\n%s", diff)
	}
}

// TestExternalIDNamedOnlyWhenOwned: externalId is a field SCIM writes only
// when owned_fields names external_id.
func TestExternalIDNamedOnlyWhenOwned(t *testing.T) {
	e := newEnv(t, scim.Config{OwnedFields: []string{provision.FieldEmail}})
	u := e.jitUser(t, "ext", map[string]string{provision.FieldUserName: "ext"})
	e.patch(t, u.ID, `[{"op":"replace","path":"externalId","value":"ext-9"}]`)
	if got := e.scimFields(t, u.ID); slices.Contains(got, provision.FieldExternalID) {
		t.Errorf("SCIMFields %q name external_id, which owned_fields leaves out", got)
	}
}

// TestLoginFollowsIdPAfterDeactivation is the README's story at the store
// level: a user a login created, deactivated and reactivated over SCIM,
// signs in with a changed e-mail and the record follows.
func TestLoginFollowsIdPAfterDeactivation(t *testing.T) {
	e := newEnv(t, scim.Config{})
	u := e.jitUser(t, "story", map[string]string{provision.FieldUserName: "story", provision.FieldEmail: "old@corp.test"})
	e.patch(t, u.ID, `[{"op":"replace","path":"active","value":false}]`)
	e.patch(t, u.ID, `[{"op":"replace","path":"active","value":true}]`)
	res, err := e.store.Provision(context.Background(), e.login("story",
		map[string]string{provision.FieldUserName: "story", provision.FieldEmail: "new@corp.test"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != provision.Updated || !slices.Contains(res.Changed, provision.FieldEmail) || res.User.Email != "new@corp.test" || len(res.Kept) != 0 {
		t.Errorf("login: %s changed %q kept %q email %q; want updated, email written", res.Outcome, res.Changed, res.KeptNames(), res.User.Email)
	}
}

// TestLoginKeepsFieldSCIMWrote: once SCIM wrote the e-mail, a login with
// another one keeps SCIM's and says so, and still writes a field SCIM did
// not write.
func TestLoginKeepsFieldSCIMWrote(t *testing.T) {
	e := newEnv(t, scim.Config{})
	u := e.jitUser(t, "kept", map[string]string{provision.FieldUserName: "kept", provision.FieldEmail: "old@corp.test"})
	e.patch(t, u.ID, `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"scim@corp.test"}]`)
	res, err := e.store.Provision(context.Background(), e.login("kept", map[string]string{provision.FieldUserName: "kept",
		provision.FieldEmail: "idp@corp.test", provision.FieldDisplayName: "Kept"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.User.Email != "scim@corp.test" || res.User.DisplayName != "Kept" ||
		strings.Join(res.KeptNames(), ",") != "email (owned by SCIM)" {
		t.Errorf("login: email %q display %q kept %q; want SCIM's e-mail kept and the display name written",
			res.User.Email, res.User.DisplayName, res.KeptNames())
	}
}
