package scim_test

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	"gatehouse/provision/storetest/realstore"
	"gatehouse/scim"
)

// TestExtensionFieldsValidate: an extension attribute stored in a field
// that a standard attribute holds (user_name, email, department,
// external_id, groups) or in a part of the record that is no attribute
// (id, active, created, updated, a group's name or members) is refused by
// Validate at its key, with the message NewServer gives, so that
// `gatehouse check` and serve agree. So are two attributes sharing a
// field and two names that differ only in case. (Before, Validate
// accepted {dept: user_name} and {oid: id} and only NewServer refused
// them; {flag: active} was accepted by both and read the user's status.)
func TestExtensionFieldsValidate(t *testing.T) {
	const urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		want  string
	}{
		{"UserName", map[string]string{"dept": "user_name"}, `extension.attributes.dept: field "user_name" already holds a standard attribute`},
		{"Email", map[string]string{"mail": "email"}, `extension.attributes.mail: field "email" already holds a standard attribute`},
		{"PhoneSlot", map[string]string{"tel": "phone_work"}, `extension.attributes.tel: field "phone_work" already holds a standard attribute`},
		{"Enterprise", map[string]string{"dept": "department"}, `extension.attributes.dept: field "department" already holds a standard attribute`},
		{"Manager", map[string]string{"boss": "manager_id"}, `extension.attributes.boss: field "manager_id" already holds a standard attribute`},
		{"ExternalID", map[string]string{"ext": "external_id"}, `extension.attributes.ext: field "external_id" already holds a standard attribute`},
		{"Groups", map[string]string{"g": "groups"}, `extension.attributes.g: field "groups" already holds a standard attribute`},
		{"ID", map[string]string{"oid": "id"}, `extension.attributes.oid: the store has no place for field "id"`},
		{"Active", map[string]string{"flag": "active"}, `extension.attributes.flag: the store has no place for field "active"`},
		{"Created", map[string]string{"since": "created"}, `extension.attributes.since: the store has no place for field "created"`},
		{"Updated", map[string]string{"touched": "updated"}, `extension.attributes.touched: the store has no place for field "updated"`},
		{"GroupName", map[string]string{"n": "name"}, `extension.attributes.n: the store has no place for field "name"`},
		{"Member", map[string]string{"m": "member"}, `extension.attributes.m: the store has no place for field "member"`},
		{"SharedField", map[string]string{"badge": "badge_no", "badgeNumber": "badge_no"}, `extension.attributes.badgeNumber: field "badge_no" also holds extension.attributes.badge`},
		{"NamesDifferInCase", map[string]string{"Badge": "badge_a", "badge": "badge_b"}, `extension.attributes.badge: is also extension.attributes.Badge`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := scim.Config{Tokens: []string{token}, Extension: scim.Extension{URN: urn, Attributes: tc.attrs}}.WithDefaults()
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			// serve refuses it too, for the same reason.
			_, err = scim.NewServer(cfg, realstore.SQLite(t), scim.Options{Logger: zap.NewNop()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewServer() = %v, want %q", err, tc.want)
			}
		})
	}
	ok := scim.Config{Tokens: []string{token}, Extension: scim.Extension{URN: urn,
		Attributes: map[string]string{"badge": "badge_no", "costCentre": "cost_centre", "region": "home_region"}}}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(own fields) = %v", err)
	}
	if _, err := scim.NewServer(ok, realstore.SQLite(t), scim.Options{Logger: zap.NewNop()}); err != nil {
		t.Errorf("NewServer(own fields) = %v", err)
	}
}

// TestOwnedFieldsValidate: owned_fields names fields SCIM writes; a
// misspelt one ("emial") would silently leave the field it meant to the
// IdP, so it is refused at its key. Core, enterprise, external_id and the
// extension's fields are accepted; groups (memberships carry their own
// source) is not a field.
func TestOwnedFieldsValidate(t *testing.T) {
	const urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
	ext := scim.Extension{URN: urn, Attributes: map[string]string{"badge": "badge_no"}}
	ok := scim.Config{Tokens: []string{token}, Extension: ext,
		OwnedFields: []string{"email", "display_name", "department", "external_id", "badge_no"}}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("valid owned_fields refused: %v", err)
	}
	for _, f := range []string{"emial", "groups", "id", "active", "Email"} {
		cfg := scim.Config{Tokens: []string{token}, Extension: ext, OwnedFields: []string{"email", f}}.WithDefaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `owned_fields[1]: "`+f+`" is not a user field`) {
			t.Errorf("owned_fields %q: Validate() = %v", f, err)
		}
	}
}
