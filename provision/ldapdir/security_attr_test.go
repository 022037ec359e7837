package ldapdir

import (
	"strings"
	"testing"
)

// TestConfigRefusesSecurityAttributes: a mapped field is written from IdP
// or SCIM data, so it may not be an attribute that grants or controls
// access: a bind password (userPassword in any case), an SSH
// key, a lock or account-control flag, or a POSIX identity (uidNumber 0
// is root). Before, {dept: userPassword} passed validation and the
// schema check, and an IdP attribute set the entry's bind password.
func TestConfigRefusesSecurityAttributes(t *testing.T) {
	for _, attr := range []string{"userPassword", "USERPASSWORD", "authPassword", "sshPublicKey",
		"nsAccountLock", "uidNumber", "gidNumber", "loginShell", "homeDirectory", "shadowExpire",
		"sambaNTPassword", "userCertificate"} {
		c := Config{URL: "ldaps://ldap.example.test", BindDN: "cn=admin,dc=example,dc=test", BindPassword: "x",
			UserBase: "ou=people,dc=example,dc=test", GroupBase: "ou=groups,dc=example,dc=test",
			Attributes: map[string]string{"user_name": "uid", "secret": attr}}.WithDefaults()
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "attributes.secret: "+attr+" holds credentials") {
			t.Errorf("%s: Validate() = %v", attr, err)
		}
	}
	ok := Config{URL: "ldaps://ldap.example.test", BindDN: "cn=admin,dc=example,dc=test", BindPassword: "x",
		UserBase: "ou=people,dc=example,dc=test", GroupBase: "ou=groups,dc=example,dc=test",
		Attributes: map[string]string{"user_name": "uid", "title": "title", "phone": "telephoneNumber"}}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("ordinary attributes refused: %v", err)
	}
}
