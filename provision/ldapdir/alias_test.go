package ldapdir

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gatehouse/test/slapd"
)

// aliasSchema gives two attributes two names each, as a site's own schema
// may: no table of standard names knows them, only the directory does.
const aliasSchema = `dn: cn=corp,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: corp
olcAttributeTypes: ( 2.25.99120349711742045127416543215063181921.1.1
  NAME ( 'corpBadge' 'corpBadgeNumber' )
  EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 2.25.99120349711742045127416543215063181921.1.2
  NAME ( 'corpState' 'corpAccountState' )
  EQUALITY caseExactMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
olcObjectClasses: ( 2.25.99120349711742045127416543215063181921.2.1
  NAME 'corpAccount'
  SUP top AUXILIARY
  MAY ( corpBadge $ corpState ) )`

func aliasConfig(srv *slapd.Server, tn slapd.Tenant, attrs map[string]string) Config {
	return Config{URL: srv.URL, CAFile: srv.CAFile, BindDN: slapd.BindDN, BindPassword: slapd.BindPassword,
		UserBase: tn.People, GroupBase: tn.Groups, Attributes: attrs}
}

// TestConfigRefusesAttributeAliases: without a server, a mapping to a
// standard alias of an attribute already mapped or managed by gatehouse
// (userid is uid, the RDN attribute; rfc822Mailbox is mail; surname and
// commonName are the sn and cn gatehouse fills for the person class) is
// refused at its key, as is a mapping of the RDN attribute from another
// field. Before, {dept: userid} passed validation and check, and every
// first login failed: slapd refused the add ("attribute 'uid' provided
// more than once").
func TestConfigRefusesAttributeAliases(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"user_name": "uid", "email": "mail", "family_name": "sn"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" is valid; else the one problem
	}{
		{"UseridIsTheRDN", func(c *Config) { c.Attributes = base(map[string]string{"dept": "userid"}) },
			"attributes.dept: userid is another name of uid, the RDN attribute"},
		{"Rfc822MailboxIsMail", func(c *Config) { c.Attributes = base(map[string]string{"work_mail": "rfc822Mailbox"}) },
			"attributes.work_mail: rfc822Mailbox is another name of mail, already mapped from email"},
		{"SurnameIsSn", func(c *Config) { c.Attributes = map[string]string{"user_name": "uid", "family_name": "surname"} },
			"attributes.family_name: surname is another name of sn, filled by gatehouse"},
		{"CommonNameIsCn", func(c *Config) { c.Attributes = base(map[string]string{"display_name": "commonName"}) },
			"attributes.display_name: commonName is another name of cn"},
		{"GnIsGivenName", func(c *Config) { c.Attributes = base(map[string]string{"given_name": "givenName", "nick": "GN"}) },
			"attributes.nick: GN is another name of givenName, already mapped from given_name"},
		{"RDNSpeltOtherwise", func(c *Config) { c.RDN = "userid={user_name}" },
			"attributes.user_name: uid is another name of userid, the RDN attribute"},
		{"RDNFromAnotherField", func(c *Config) { c.Attributes = map[string]string{"email": "mail", "dept": "UID"} },
			"attributes.dept: UID is the RDN attribute (rdn: uid={user_name}), filled from user_name"},
		{"ADRDNFromAnotherField", func(c *Config) {
			c.Profile, c.UPNSuffix, c.StateAttribute = ProfileActiveDirectory, "corp.example", "gatehouseState"
			c.Attributes = map[string]string{"display_name": "cn"}
		}, "attributes.display_name: cn is the RDN attribute (rdn: cn={user_name}), filled from user_name"},
		{"Defaults", func(c *Config) { c.Attributes = nil }, ""},
		{"CnAndSnMapped", func(c *Config) { c.Attributes = base(map[string]string{"display_name": "cn", "family_name": "SN"}) }, ""},
		{"ADDefaults", func(c *Config) {
			c.Profile, c.UPNSuffix, c.StateAttribute, c.Attributes = ProfileActiveDirectory, "corp.example", "gatehouseState", nil
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{URL: "ldap://127.0.0.1:389", BindDN: "cn=a,dc=x", BindPassword: "p", UserBase: "ou=p,dc=x", GroupBase: "ou=g,dc=x"}
			tc.mod(&c)
			c = c.WithDefaults()
			problems := c.Problems()
			if tc.want == "" {
				if len(problems) != 0 {
					t.Errorf("Problems() = %v", problems)
				}
				return
			}
			if len(problems) != 1 || !strings.HasPrefix(problems[0].Error(), tc.want) {
				t.Errorf("Problems() = %v, want one problem, starting %q", problems, tc.want)
			}
		})
	}
}

// TestCheckRefusesSchemaAliases: check reads which names are one attribute
// from the directory's schema (their OID), so it also refuses the aliases
// a site's own schema defines, which configuration alone cannot know: two
// mappings to corpBadge and corpBadgeNumber, a mapping to another name of
// the state attribute. The standard aliases resolve the same way through
// a real slapd's schema, and the table configuration uses without a server
// agrees with it.
func TestCheckRefusesSchemaAliases(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(SchemaLDIF, "gatehouseState"), slapd.WithSchema(aliasSchema))
	ctx := context.Background()
	tn := srv.NewTenant(t)
	std := map[string]string{"user_name": "uid", "email": "mail", "family_name": "sn"}
	check := func(t *testing.T, cfg Config) []error {
		t.Helper()
		s, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer s.Close()
		err = s.Check(ctx)
		if err == nil {
			return nil
		}
		return err.(interface{ Unwrap() []error }).Unwrap()
	}
	want := func(t *testing.T, errs []error, prefix string) {
		t.Helper()
		for _, e := range errs {
			if strings.HasPrefix(e.Error(), prefix) {
				return
			}
		}
		t.Errorf("Check() = %v, want a problem starting %q", errors.Join(errs...), prefix)
	}

	t.Run("Clean", func(t *testing.T) {
		cfg := aliasConfig(srv, tn, map[string]string{"user_name": "uid", "email": "mail", "badge": "corpBadge"})
		cfg.UserObjectClasses = []string{"top", "person", "organizationalPerson", "inetOrgPerson", "corpAccount"}
		if errs := check(t, cfg); errs != nil {
			t.Errorf("Check() = %v", errs)
		}
	})
	t.Run("TwoMappings", func(t *testing.T) {
		attrs := map[string]string{"badge": "corpBadge", "badge_no": "corpBadgeNumber"}
		for k, v := range std {
			attrs[k] = v
		}
		cfg := aliasConfig(srv, tn, attrs)
		cfg.UserObjectClasses = []string{"top", "person", "organizationalPerson", "inetOrgPerson", "corpAccount"}
		want(t, check(t, cfg), "attributes.badge_no: corpBadgeNumber is another name of corpBadge, already mapped from badge")
	})
	t.Run("StateAttribute", func(t *testing.T) {
		attrs := map[string]string{"status": "corpAccountState"}
		for k, v := range std {
			attrs[k] = v
		}
		cfg := aliasConfig(srv, tn, attrs)
		cfg.StateAttribute, cfg.StateObjectClass = "corpState", "corpAccount"
		want(t, check(t, cfg), "attributes.status: corpAccountState is another name of corpState, the state attribute")
	})
	t.Run("StandardAliases", func(t *testing.T) {
		s, err := New(aliasConfig(srv, tn, std))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		attrs, _, err := s.schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for alias, first := range standardAliases {
			a, okA := attrs[alias]
			f, okF := attrs[first]
			if !okA || !okF || a != f {
				t.Errorf("slapd's schema: %s is %q (%v), %s is %q (%v); want one attribute", alias, a, okA, first, f, okF)
			}
		}
		// The brief's cases, resolved by the server alone.
		cfg := s.l.cfg
		cfg.Attributes = map[string]string{"user_name": "uid", "email": "mail", "dept": "userid", "work_mail": "rfc822Mailbox",
			"family_name": "surname", "display_name": "commonName"}
		errs := cfg.aliasProblems(func(n string) string { return attrs[strings.ToLower(n)] })
		for _, p := range []string{
			"attributes.dept: userid is another name of uid", "attributes.work_mail: rfc822Mailbox is another name of mail",
			"attributes.family_name: surname is another name of sn", "attributes.display_name: commonName is another name of cn",
		} {
			want(t, errs, p)
		}
	})
}
