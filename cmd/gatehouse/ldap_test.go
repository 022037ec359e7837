package main

import (
	"strings"
	"testing"

	"gatehouse/provision/ldapdir"
	"gatehouse/test/slapd"
)

// ldapConfig is goodConfig with its store replaced by a directory.
func ldapConfig(srv *slapd.Server, tn slapd.Tenant, extra string) string {
	base, _, _ := strings.Cut(goodConfig, "store:\n")
	return base + `store:
  ldap:
    url: ` + srv.URL + `
    ca_file: ` + srv.CAFile + `
    bind_dn: ` + slapd.BindDN + `
    bind_password: ${TEST_LDAP_PASSWORD}
    user_base: ` + tn.People + `
    group_base: ` + tn.Groups + `
` + extra
}

func TestCheckLDAP(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	tn := srv.NewTenant(t)

	t.Setenv("TEST_LDAP_PASSWORD", slapd.BindPassword)
	mark := srv.Mark()
	if code, out, errOut := check(t, writeConfig(t, ldapConfig(srv, tn, ""))); code != 0 {
		t.Fatalf("check(good ldap config) = %d\n%s%s", code, out, errOut)
	}
	if ops := srv.Ops(mark); ops["ADD"]+ops["MOD"]+ops["DEL"] != 0 {
		t.Errorf("check wrote to the directory: %v", ops)
	}

	for name, tc := range map[string]struct {
		password, extra string
		want            []string
	}{
		"wrong bind": {password: "nope", want: []string{"store.ldap: ldapdir: bind as " + slapd.BindDN + ": wrong DN or password"}},
		"missing base": {password: slapd.BindPassword, extra: "    attributes: {user_name: uid, badge: badgeNumber}\n",
			want: []string{"store.ldap: group_base:", "no attribute badgeNumber"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TEST_LDAP_PASSWORD", tc.password)
			text := ldapConfig(srv, tn, tc.extra)
			if name == "missing base" {
				text = strings.Replace(text, "group_base: "+tn.Groups, "group_base: ou=gone,"+tn.Base, 1)
			}
			code, _, errOut := check(t, writeConfig(t, text))
			if code == 0 {
				t.Fatal("check passed")
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("check output lacks %q:\n%s", w, errOut)
				}
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		t.Setenv("TEST_LDAP_PASSWORD", slapd.BindPassword)
		text := strings.Replace(ldapConfig(srv, tn, "    dial_timeout: 1s\n"), srv.URL, "ldap://127.0.0.1:1", 1)
		code, _, errOut := check(t, writeConfig(t, text))
		if code == 0 || !strings.Contains(errOut, "store.ldap: ldapdir: connect to 127.0.0.1:1:") {
			t.Errorf("check(unreachable) = %d\n%s", code, errOut)
		}
	})
}

func TestLDAPConfigValidation(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	base, _, _ := strings.Cut(goodConfig, "store:\n")
	text := strings.Replace(base, "      groups: memberOf\n", "      groups: memberOf\n      extra: {badge: urn:badge}\n", 1) + `store:
  ldap:
    url: ldap://127.0.0.1:389
    bind_dn: cn=gatehouse,dc=example,dc=test
    bind_password: literal-secret
    user_base: ou=people,dc=example,dc=test
    group_base: ou=groups,dc=example,dc=test
`
	code, _, errOut := check(t, writeConfig(t, text))
	if code == 0 {
		t.Fatal("check passed")
	}
	for _, w := range []string{
		"store.ldap.bind_password: must be an environment reference",
		"idps[0].mapping.extra.badge: store.ldap.attributes maps no LDAP attribute for it",
	} {
		if !strings.Contains(errOut, w) {
			t.Errorf("check output lacks %q:\n%s", w, errOut)
		}
	}
	if strings.Contains(errOut, "literal-secret") {
		t.Error("check printed the bind password")
	}
}
