package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckSCIMExtensionFields: an extension attribute that serve would
// refuse (a standard attribute's field, a record field, a field the LDAP
// directory maps no attribute for) is a problem of `gatehouse check` at
// its key and line. (Before, check said ok and serve refused to start.)
func TestCheckSCIMExtensionFields(t *testing.T) {
	env := map[string]string{"TEST_GATEHOUSE_KEY": testEnv["TEST_GATEHOUSE_KEY"], "TEST_SCIM_TOKEN": "scim-token-0123456789abcdefghijklmnopqrstuv"}
	section := func(attrs string) string {
		return "scim:\n  tokens: [\"${TEST_SCIM_TOKEN}\"]\n  extension:\n    urn: urn:ietf:params:scim:schemas:extension:acme:2.0:User\n    attributes: " + attrs + "\n"
	}
	ldap := withStore(ldapFileStore + "    attributes: {user_name: uid, email: mail, badge_no: employeeNumber}\n")
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"StandardField", goodConfig + section("{dept: user_name}"),
			[]string{`gatehouse.yaml:20:18: scim.extension.attributes.dept: field "user_name" already holds a standard attribute`}},
		{"RecordField", goodConfig + section("{oid: id}"),
			[]string{`gatehouse.yaml:20:18: scim.extension.attributes.oid: the store has no place for field "id": it is part of the record, not an attribute`}},
		{"LDAPUnmapped", ldap + section("{badge: badge_no, floor: floor_no}"),
			[]string{`gatehouse.yaml:25:35: scim.extension.attributes.floor: the store has no place for field "floor_no": store.ldap.attributes maps no LDAP attribute for it`}},
		{"LDAPMapped", ldap + section("{badge: badge_no}"), nil},
		{"SQLiteOwnField", goodConfig + section("{badge: badge_no}"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.config)
			mustDo(t, os.WriteFile(filepath.Join(filepath.Dir(path), "ldap-password"), []byte("secret\n"), 0o600))
			data, err := os.ReadFile(path)
			mustDo(t, err)
			_, report := checkConfig("gatehouse.yaml", data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			lines := report.Lines()
			if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
