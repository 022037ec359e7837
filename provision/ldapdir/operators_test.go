package ldapdir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/test/slapd"
)

// schemaDef is one attribute type or object class definition (RFC 4512),
// reduced to what the three schema files must agree on.
type schemaDef struct {
	kind   string // attributetype or objectclass
	fields map[string]string
}

var defToken = regexp.MustCompile(`'[^']*'|\(|\)|\$|[^\s()$']+`)

// parseDef reads "( oid NAME 'x' ... )": every keyword with its value (a
// quoted string, a word, or a parenthesised list joined by spaces); flags
// like SINGLE-VALUE and AUXILIARY get "true".
func parseDef(t *testing.T, kind, text string) schemaDef {
	t.Helper()
	toks := defToken.FindAllString(text, -1)
	if len(toks) < 3 || toks[0] != "(" || toks[len(toks)-1] != ")" {
		t.Fatalf("not a schema definition: %q", text)
	}
	d := schemaDef{kind: kind, fields: map[string]string{"OID": toks[1]}}
	toks = toks[2 : len(toks)-1]
	for i := 0; i < len(toks); i++ {
		key := strings.ToUpper(toks[i])
		switch {
		case key == "X-ORIGIN":
			i++ // where it came from differs by design
			if toks[i] == "(" {
				for toks[i] != ")" {
					i++
				}
			}
		case i+1 < len(toks) && toks[i+1] == "(":
			var vals []string
			for i += 2; toks[i] != ")"; i++ {
				if toks[i] != "$" {
					vals = append(vals, strings.ToLower(strings.Trim(toks[i], "'")))
				}
			}
			slices.Sort(vals)
			d.fields[key] = strings.Join(vals, " ")
		case i+1 < len(toks) && !isKeyword(toks[i+1]):
			d.fields[key] = strings.Trim(toks[i+1], "'")
			i++
		default:
			d.fields[key] = "true"
		}
	}
	return d
}

var keyword = regexp.MustCompile(`^[A-Z][A-Z-]+$`)

func isKeyword(s string) bool { return keyword.MatchString(s) }

// defs extracts the definitions that follow each of the given prefixes
// (case-insensitive), joining continuation lines.
func defs(t *testing.T, text string, prefixes map[string]string) []schemaDef {
	t.Helper()
	var out []schemaDef
	var cur strings.Builder
	kind := ""
	flush := func() {
		if kind != "" {
			out = append(out, parseDef(t, kind, cur.String()))
		}
		kind = ""
		cur.Reset()
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line != "" && (line[0] == ' ' || line[0] == '\t') && kind != "" {
			cur.WriteString(" " + strings.TrimSpace(line))
			continue
		}
		flush()
		for p, k := range prefixes {
			if len(line) > len(p) && strings.EqualFold(line[:len(p)], p) {
				kind = k
				cur.WriteString(strings.TrimSpace(line[len(p):]))
			}
		}
	}
	flush()
	return out
}

// TestSchemaFilesAgree: the cn=config LDIF, the slapd.conf include file
// and the 389 DS LDIF define the same attribute and object class: OIDs,
// names, syntax, SINGLE-VALUE, matching rules, superclass, kind, MUST and
// MAY. The 389 file marks its definitions X-ORIGIN 'gatehouse'.
func TestSchemaFilesAgree(t *testing.T) {
	cnConfig := defs(t, ldapdir.SchemaLDIF, map[string]string{"olcAttributeTypes:": "attributetype", "olcObjectClasses:": "objectclass"})
	include := defs(t, ldapdir.SchemaInclude, map[string]string{"attributetype ": "attributetype", "objectclass ": "objectclass"})
	ds389 := defs(t, ldapdir.Schema389DS, map[string]string{"attributeTypes:": "attributetype", "objectClasses:": "objectclass"})
	if len(cnConfig) != 2 {
		t.Fatalf("cn=config schema: %d definitions, want 2: %+v", len(cnConfig), cnConfig)
	}
	for _, d := range cnConfig {
		for _, need := range map[string][]string{
			"attributetype": {"OID", "NAME", "EQUALITY", "SUBSTR", "SYNTAX"},
			"objectclass":   {"OID", "NAME", "SUP", "AUXILIARY", "MAY"},
		}[d.kind] {
			if d.fields[need] == "" {
				t.Errorf("the parser missed %s in %s %v", need, d.kind, d.fields)
			}
		}
	}
	for name, got := range map[string][]schemaDef{"gatehouse.schema": include, "gatehouse-schema-389ds.ldif": ds389} {
		if len(got) != len(cnConfig) {
			t.Errorf("%s: %d definitions, want %d", name, len(got), len(cnConfig))
			continue
		}
		for i := range got {
			if got[i].kind != cnConfig[i].kind || !mapsEqual(got[i].fields, cnConfig[i].fields) {
				t.Errorf("%s differs from gatehouse-schema.ldif:\n got  %s %v\n want %s %v", name, got[i].kind, got[i].fields, cnConfig[i].kind, cnConfig[i].fields)
			}
		}
	}
	if n := strings.Count(ldapdir.Schema389DS, "X-ORIGIN 'gatehouse'"); n != 2 {
		t.Errorf("389 DS schema: %d definitions with X-ORIGIN 'gatehouse', want 2", n)
	}
	if !strings.Contains(ldapdir.Schema389DS, "dn: cn=schema\nchangetype: modify\n") {
		t.Error("389 DS schema: not a modify of cn=schema")
	}
	for _, want := range []string{"objectClass: nsIndex", "cn: gatehouseState", "nsIndexType: eq", "cn=index,cn=userRoot,cn=ldbm database,cn=plugins,cn=config",
		"cn=index,cn=tasks,cn=config", "nsIndexAttribute: gatehouseState:eq"} {
		if !strings.Contains(ldapdir.Index389DS, want) {
			t.Errorf("389 DS index LDIF lacks %q", want)
		}
	}
	if !strings.Contains(ldapdir.SchemaInclude, "index gatehouseState eq") || !strings.Contains(ldapdir.SchemaLDIF, "olcDbIndex: gatehouseState eq") {
		t.Error("the OpenLDAP schema files do not recommend the gatehouseState index")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestProfile389DS: the 389ds profile puts nsMemberOf among the user
// classes (389's memberOf plugin writes memberOf only where a class allows
// it) and marks disabled accounts with nsAccountLock.
func TestProfile389DS(t *testing.T) {
	c := ldapdir.Config{Profile: ldapdir.Profile389DS, URL: "ldap://ds.example.test", BindDN: "cn=x", BindPassword: "p",
		UserBase: "ou=people,dc=example,dc=test", GroupBase: "ou=groups,dc=example,dc=test"}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !slices.Contains(c.UserObjectClasses, "nsMemberOf") || !slices.Contains(c.UserObjectClasses, "inetOrgPerson") {
		t.Errorf("user_object_classes = %v", c.UserObjectClasses)
	}
	if c.DisabledAttribute != "nsAccountLock" || c.DisabledValue != "true" || c.StateAttribute != "gatehouseState" ||
		c.GroupObjectClass != "groupOfNames" || c.RDN != "uid={user_name}" {
		t.Errorf("defaults = %+v", c)
	}
	open := ldapdir.Config{Profile: ldapdir.ProfileOpenLDAP}.WithDefaults()
	if slices.Contains(open.UserObjectClasses, "nsMemberOf") || open.DisabledAttribute != "pwdAccountLockedTime" {
		t.Errorf("openldap defaults changed: %v %s", open.UserObjectClasses, open.DisabledAttribute)
	}
	bad := c
	bad.DisabledAttribute, bad.DisabledValue = "gatehouseState", "key x"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "disabled_value") {
		t.Errorf("a disabled mark in the state attribute with a space: %v", err)
	}
}

// leaveAll is alice's login asserting no groups: she leaves those her
// logins made.
func leaveAll() provision.Login {
	l := aliceLogin()
	l.Claims.Groups = nil
	return l
}

// TestLastMemberLeavesWithOneModify: OpenLDAP's groupOfNames may not be
// empty, so the last member's removal asks for the placeholder in the
// same modify; slapd's log shows exactly one modify of the group, where
// there used to be a refused one and a retry. A member who is not the last
// leaves without the placeholder, also in one modify.
func TestLastMemberLeavesWithOneModify(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	ctx := context.Background()
	group := "cn=staff," + tn.Groups

	bob := aliceLogin()
	bob.Key.Subject, bob.Claims.Fields = "bob-id", map[string]string{provision.FieldUserName: "bob"}
	for _, l := range []provision.Login{aliceLogin(), bob} {
		if _, err := s.Provision(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	mark := srv.Mark()
	if _, err := s.Provision(ctx, leaveAll()); err != nil {
		t.Fatalf("alice leaves: %v", err)
	}
	if ops := srv.OpsOn(mark, group); ops["MOD"] != 1 {
		t.Errorf("alice (not the last member) leaving: %d modifies of the group, want 1: %v", ops["MOD"], ops)
	}
	if got := readEntry(t, srv, group, "member").GetAttributeValues("member"); len(got) != 1 || !dnEqual(got[0], "uid=bob,"+tn.People) {
		t.Errorf("members after alice left = %q, want bob only", got)
	}

	bobLeaves := bob
	bobLeaves.Claims.Groups = nil
	mark = srv.Mark()
	if _, err := s.Provision(ctx, bobLeaves); err != nil {
		t.Fatalf("bob, the last member, leaves: %v", err)
	}
	if ops := srv.OpsOn(mark, group); ops["MOD"] != 1 {
		t.Errorf("the last member leaving: %d modifies of the group, want 1: %v", ops["MOD"], ops)
	}
	if strings.Contains(srv.Log()[mark:], "err=65") {
		t.Error("slapd refused a modify (objectClassViolation) for the last member's removal")
	}
	if got := readEntry(t, srv, group, "member").GetAttributeValues("member"); !slices.Equal(got, []string{""}) {
		t.Errorf("members after the last left = %q, want the placeholder (the empty DN)", got)
	}

	// The next member takes the placeholder's place.
	if _, err := s.Provision(ctx, aliceLogin()); err != nil {
		t.Fatal(err)
	}
	if got := readEntry(t, srv, group, "member").GetAttributeValues("member"); len(got) != 1 || !dnEqual(got[0], "uid=alice,"+tn.People) {
		t.Errorf("members after alice came back = %q", got)
	}
}

// TestEmptyGroupRefusalIsLearnt: with a profile that does not expect
// groups to need a member (389ds), the first last-member removal on a
// directory that refuses empty groups costs one refused modify; the store
// remembers, and the next one is a single modify.
func TestEmptyGroupRefusalIsLearnt(t *testing.T) {
	srv := startServer(t)
	tn := srv.NewTenant(t)
	cfg := baseConfig(srv, tn)
	cfg.Profile = ldapdir.Profile389DS
	cfg.UserObjectClasses = []string{"top", "person", "organizationalPerson", "inetOrgPerson"} // no nsMemberOf in OpenLDAP
	s := open(t, cfg)
	ctx := context.Background()
	for i, l := range []provision.Login{aliceLogin(), leaveAll(), aliceLogin(), leaveAll()} {
		mark := srv.Mark()
		if _, err := s.Provision(ctx, l); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if i%2 == 0 {
			continue
		}
		want := map[int]int{1: 2, 3: 1}[i]
		if ops := srv.OpsOn(mark, "cn=staff,"+tn.Groups); ops["MOD"] != want {
			t.Errorf("last member leaving, time %d: %d modifies of the group, want %d", i/2+1, ops["MOD"], want)
		}
	}
}

// TestWithoutPPolicy runs against a slapd without the ppolicy module,
// whose schema has no pwdAccountLockedTime (the default disabled mark):
// logins still work; check names the module and the alternative; a
// deactivation says the same instead of a bare "undefined attribute type";
// with the alternative (the mark kept in gatehouseState) check passes and
// disabled users are refused.
func TestWithoutPPolicy(t *testing.T) {
	srv := slapd.Start(t, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"), slapd.WithoutPPolicy())
	ctx := context.Background()

	tn := srv.NewTenant(t)
	s := open(t, baseConfig(srv, tn))
	err := s.Check(ctx)
	for _, want := range []string{"no attribute pwdAccountLockedTime", "ppolicy", "disabled_attribute: gatehouseState and disabled_value: disabled"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check with the default disabled mark = %v, want mention of %q", err, want)
		}
	}
	first, err := s.Provision(ctx, aliceLogin())
	if err != nil {
		t.Fatalf("login without ppolicy: %v", err)
	}
	if res, err := s.Provision(ctx, aliceLogin()); err != nil || res.Outcome != provision.Unchanged {
		t.Fatalf("repeat login without ppolicy: %v %v", res.Outcome, err)
	}
	if err := s.SetActive(ctx, first.User.ID, false); err == nil || !strings.Contains(err.Error(), "ppolicy") {
		t.Errorf("deactivation with the default mark = %v, want the ppolicy explanation", err)
	}

	tn = srv.NewTenant(t)
	cfg := baseConfig(srv, tn)
	cfg.DisabledAttribute, cfg.DisabledValue = "gatehouseState", "disabled"
	s = open(t, cfg)
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check with the mark in gatehouseState = %v", err)
	}
	first, err = s.Provision(ctx, aliceLogin())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(ctx, first.User.ID, false); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if _, err := s.Provision(ctx, aliceLogin()); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("login of a deactivated user = %v, want ErrDisabled", err)
	}
	inactive, err := s.FindUsers(ctx, provision.Query{Filter: provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: "false"}, Limit: 10})
	if err != nil || inactive.Total != 1 {
		t.Errorf("active eq false: %d users, %v", inactive.Total, err)
	}
	created, err := s.CreateUser(ctx, provision.User{UserName: "carol", Active: false})
	if err != nil || created.Active {
		t.Fatalf("create an inactive user: %+v %v", created, err)
	}
	active, err := s.FindUsers(ctx, provision.Query{Filter: provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: "true"}, Limit: 10})
	if err != nil || active.Total != 0 {
		t.Errorf("active eq true: %d users, %v", active.Total, err)
	}
	if err := s.SetActive(ctx, first.User.ID, true); err != nil {
		t.Fatalf("reactivate: %v", err)
	}
	if res, err := s.Provision(ctx, aliceLogin()); err != nil || !res.User.Active {
		t.Errorf("login after reactivation: %+v %v", res.User, err)
	}
	e := readEntry(t, srv, "uid=alice,"+tn.People, "gatehouseState")
	if slices.Contains(e.GetAttributeValues("gatehouseState"), "disabled") {
		t.Error("the disabled mark stayed after reactivation")
	}
}

// TestDeployExamples: the OpenLDAP and 389 DS store examples in deploy/
// decode into a valid configuration, and the 389 one gets the 389ds
// profile's classes.
func TestDeployExamples(t *testing.T) {
	for _, name := range []string{"store-openldap.example.yaml", "store-389ds.example.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Store struct {
				LDAP ldapdir.Config `yaml:"ldap"`
			} `yaml:"store"`
		}
		dec := yaml.NewDecoder(strings.NewReader(strings.ReplaceAll(string(b), "${GATEHOUSE_LDAP_PASSWORD}", "x")))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := f.Store.LDAP.WithDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if name == "store-389ds.example.yaml" && (c.Profile != ldapdir.Profile389DS || !slices.Contains(c.UserObjectClasses, "nsMemberOf")) {
			t.Errorf("%s: profile %q, classes %v", name, c.Profile, c.UserObjectClasses)
		}
	}
}
