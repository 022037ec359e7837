package ldapdir

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"gatehouse/provision"
)

// Active Directory cannot run on these machines; its profile is covered by
// the entries and modifications it builds.

func adConfig() Config {
	return Config{
		URL: "ldaps://dc1.corp.example", Profile: ProfileActiveDirectory,
		BindDN: "CN=gatehouse,OU=Service Accounts,DC=corp,DC=example", BindPasswordFile: "/dev/null",
		UserBase: "OU=People,DC=corp,DC=example", GroupBase: "OU=Groups,DC=corp,DC=example",
		StateAttribute: "gatehouseState", UPNSuffix: "corp.example",
	}.WithDefaults()
}

func adLayout(t *testing.T, mod func(*Config)) *layout {
	t.Helper()
	c := adConfig()
	if mod != nil {
		mod(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	l, err := newLayout(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func attrs(req *ldap.AddRequest) map[string][]string {
	out := map[string][]string{}
	for _, a := range req.Attributes {
		out[a.Type] = a.Vals
	}
	return out
}

var adKey = provision.Key{IdP: "https://sts.windows.net/tenant/", Kind: "nameid", Subject: "AbC-123"}

func TestADAddCreatesEnabledUser(t *testing.T) {
	l := adLayout(t, nil)
	u := provision.User{UserName: "alice", Email: "alice@corp.example", DisplayName: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell"}
	req, err := l.addRequest(&u, adKey, []string{"Staff"}, "jit:x")
	if err != nil {
		t.Fatal(err)
	}
	if req.DN != "cn=alice,OU=People,DC=corp,DC=example" {
		t.Errorf("DN = %q", req.DN)
	}
	want := map[string][]string{
		"objectClass":        {"top", "person", "organizationalPerson", "user"},
		"cn":                 {"alice"},
		"mail":               {"alice@corp.example"},
		"displayName":        {"Alice Liddell"},
		"givenName":          {"Alice"},
		"sn":                 {"Liddell"},
		"userPrincipalName":  {"alice@corp.example"},
		"sAMAccountName":     {"alice"},
		"userAccountControl": {"512"}, // enabled, not AD's default 546
		"gatehouseState":     {"key https://sts.windows.net/tenant/ nameid AbC-123", "version 1", "name alice", "group jit:x staff"},
	}
	if d := cmp.Diff(want, attrs(req)); d != "" {
		t.Errorf("add attributes (-want +got):\n%s", d)
	}
	if _, ok := attrs(req)["unicodePwd"]; ok {
		t.Error("a password was written though set_random_password is off")
	}
}

func TestADRandomPasswordTwoSteps(t *testing.T) {
	l := adLayout(t, func(c *Config) { c.SetRandomPassword = true })
	u := provision.User{UserName: "bob"}
	req, err := l.addRequest(&u, adKey, nil, "jit:x")
	if err != nil {
		t.Fatal(err)
	}
	a := attrs(req)
	if got := a["userAccountControl"]; len(got) != 1 || got[0] != "514" {
		t.Errorf("created UAC = %v, want 514 (disabled until the password is set)", got)
	}
	if got := a["gatehouseState"]; !strings.Contains(strings.Join(got, "|"), statePending) {
		t.Errorf("state %v lacks the pending marker that lets the next login finish", got)
	}
	if _, ok := a["unicodePwd"]; ok {
		t.Error("AD takes unicodePwd only on modify, not on add")
	}
	m := l.enableRequest(req.DN, 514, "Pw", true)
	want := []ldap.Change{
		{Operation: ldap.ReplaceAttribute, Modification: ldap.PartialAttribute{Type: "unicodePwd", Vals: []string{"\"\x00P\x00w\x00\"\x00"}}},
		{Operation: ldap.DeleteAttribute, Modification: ldap.PartialAttribute{Type: "userAccountControl", Vals: []string{"514"}}},
		{Operation: ldap.AddAttribute, Modification: ldap.PartialAttribute{Type: "userAccountControl", Vals: []string{"512"}}},
		{Operation: ldap.DeleteAttribute, Modification: ldap.PartialAttribute{Type: "gatehouseState", Vals: []string{statePending}}},
	}
	if d := cmp.Diff(want, m.Changes); d != "" {
		t.Errorf("enable modify (-want +got):\n%s", d)
	}
	// Other UAC bits survive enabling (66050 = disabled + never expires).
	if got := l.enableRequest("cn=x", 66050, "p", true).Changes[2].Modification.Vals[0]; got != "66048" {
		t.Errorf("enable of 66050 = %s, want 66048", got)
	}
	// A user created inactive (SCIM) gets its password and stays disabled.
	for _, c := range l.enableRequest("cn=x", 514, "p", false).Changes {
		if strings.EqualFold(c.Modification.Type, "userAccountControl") {
			t.Errorf("enable of an inactive user changes %v", c)
		}
	}
}

func TestADPasswordNeedsEncryption(t *testing.T) {
	c := adConfig()
	c.URL, c.InsecurePlaintext, c.SetRandomPassword = "ldap://dc1.corp.example", true, true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "set_random_password") {
		t.Errorf("Validate(password over plaintext) = %v", err)
	}
}

func TestADDisabledBit(t *testing.T) {
	l := adLayout(t, nil)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	recent, old := "20261207115500.0Z", "20261207110000.0Z" // 5 and 60 minutes before now
	for _, tc := range []struct {
		uac     string
		pending bool
		created string
		want    bool
	}{
		{"512", false, recent, false}, {"514", false, recent, true}, {"66050", false, recent, true}, {"66048", false, recent, false},
		{"514", true, recent, false}, // created by gatehouse, enable not finished: the login completes it
		// TestADPendingAccountLeftToTheAdministrator: past the window, or
		// with flags someone else set, a pending account is what its
		// flags say, and no login enables it.
		{"514", true, old, true},
		{"66050", true, recent, true},
		{"514", true, "", true},
		{"512", true, old, false},
	} {
		e := ldap.NewEntry("cn=x", map[string][]string{"userAccountControl": {tc.uac}, "whenCreated": {tc.created}})
		var st state
		st.pending = tc.pending
		if got := l.disabled(e, st); got != tc.want {
			t.Errorf("UAC %s pending %v created %q: disabled = %v, want %v", tc.uac, tc.pending, tc.created, got, tc.want)
		}
	}
}

func TestSAMAccountName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                "alice",
		"twenty.chars.exactly": "twenty.chars.exactly",
	} {
		if got := samAccountName(in); got != want {
			t.Errorf("samAccountName(%q) = %q, want %q", in, got, want)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{
		"a.very.long.user.name.one", "a.very.long.user.name.two", "alice@corp.example", "alice@other.example",
		`we"ird/na\me[x]:y;z|a=b,c+d*e?f<g>h`, "name with spaces", "trailing.dot.", "Zoë-名前-😀",
	} {
		got := samAccountName(in)
		if n := utf8.RuneCountInString(got); n > 20 || n == 0 {
			t.Errorf("samAccountName(%q) = %q: %d characters", in, got, n)
		}
		if strings.ContainsAny(got, "\"/\\[]:;|=,+*?<> @") || strings.HasSuffix(got, ".") {
			t.Errorf("samAccountName(%q) = %q holds a forbidden character", in, got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("samAccountName(%q) = samAccountName(%q) = %q", in, prev, got)
		}
		seen[got] = in
	}
}

func TestADLimits(t *testing.T) {
	l := adLayout(t, nil)
	u := provision.User{UserName: strings.Repeat("x", 65)}
	if _, err := l.addRequest(&u, adKey, nil, "s"); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("65-character cn: err = %v, want ErrInvalid", err)
	}
	u.UserName = strings.Repeat("é", 64)
	if _, err := l.addRequest(&u, adKey, nil, "s"); err != nil {
		t.Errorf("64-character cn: %v", err)
	}
}

func TestObjectGUIDFilter(t *testing.T) {
	l := adLayout(t, nil)
	f, ok := l.anchorFilter("00112233445566778899aabbccddeeff")
	if !ok || f != `(objectGUID=\00\11\22\33\44\55\66\77\88\99\aa\bb\cc\dd\ee\ff)` {
		t.Errorf("anchorFilter = %q, %v", f, ok)
	}
	for _, bad := range []string{"", "*", "0011", "00112233-4455-6677-8899-aabbccddeeff", "zz112233445566778899aabbccddeeff"} {
		if _, ok := l.anchorFilter(bad); ok {
			t.Errorf("anchorFilter(%q) accepted", bad)
		}
	}
	e := ldap.NewEntry("cn=x", nil)
	e.Attributes = []*ldap.EntryAttribute{{Name: "objectGUID", ByteValues: [][]byte{{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}}}}
	if got := l.id(e); got != "00112233445566778899aabbccddeeff" {
		t.Errorf("id = %q", got)
	}
}

func TestEntryUUIDFilter(t *testing.T) {
	c := Config{URL: "ldap://x", BindDN: "cn=a", BindPassword: "p", UserBase: "ou=p", GroupBase: "ou=g"}.WithDefaults()
	l, err := newLayout(c)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := l.anchorFilter("9ffd2f8c-7c6b-1041-891d-ed2b08f7655d"); !ok || f != "(entryUUID=9ffd2f8c-7c6b-1041-891d-ed2b08f7655d)" {
		t.Errorf("anchorFilter = %q %v", f, ok)
	}
	for _, bad := range []string{"*", "9ffd2f8c-7c6b-1041-891d-ed2b08f7655d)(uid=*", "urn:uuid:9ffd2f8c-7c6b-1041-891d-ed2b08f7655d", "{9ffd2f8c-7c6b-1041-891d-ed2b08f7655d}"} {
		if _, ok := l.anchorFilter(bad); ok {
			t.Errorf("anchorFilter(%q) accepted", bad)
		}
	}
}

func TestADDiffSendsOnlyChanges(t *testing.T) {
	l := adLayout(t, nil)
	e := ldap.NewEntry("CN=alice,OU=People,DC=corp,DC=example", map[string][]string{
		"cn": {"alice"}, "mail": {"alice@corp.example"}, "displayName": {"Alice"}, "givenName": {"Alice"},
		"userPrincipalName": {"alice@corp.example"}, "sAMAccountName": {"alice"},
	})
	u := l.user(e, state{})
	all := map[string]bool{provision.FieldUserName: true, provision.FieldEmail: true, provision.FieldDisplayName: true, provision.FieldGivenName: true}
	if ch, _, err := l.diffAttributes(e, &u, all); err != nil || len(ch) != 0 {
		t.Errorf("unchanged user: changes %v, err %v", ch, err)
	}
	u.Email, u.GivenName = "a@corp.example", ""
	ch, fields, err := l.diffAttributes(e, &u, all)
	if err != nil {
		t.Fatal(err)
	}
	want := []ldap.Change{
		{Operation: ldap.ReplaceAttribute, Modification: ldap.PartialAttribute{Type: "mail", Vals: []string{"a@corp.example"}}},
		{Operation: ldap.DeleteAttribute, Modification: ldap.PartialAttribute{Type: "givenName"}},
	}
	if d := cmp.Diff(want, ch); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	if !fields[provision.FieldEmail] || !fields[provision.FieldGivenName] || len(fields) != 2 {
		t.Errorf("fields = %v", fields)
	}
	// A field the login did not assert is never compared: the directory's
	// own value stays even though it differs.
	if ch, _, _ := l.diffAttributes(e, &u, map[string]bool{provision.FieldDisplayName: true}); len(ch) != 0 {
		t.Errorf("unasserted fields were rewritten: %v", ch)
	}
	// A new user name moves neither the UPN nor sAMAccountName: both are
	// written once (an administrator may have changed them since; an
	// adopted account keeps its own).
	u = l.user(e, state{})
	u.UserName = "alice.l"
	if ch, _, _ = l.diffAttributes(e, &u, map[string]bool{provision.FieldUserName: true}); len(ch) != 0 {
		t.Errorf("rename changes %v, want none", ch)
	}
}

func TestADGroupAdd(t *testing.T) {
	l := adLayout(t, nil)
	req := l.groupAddRequest("Finance, EMEA", "CN=alice,OU=People,DC=corp,DC=example", false)
	if req.DN != `cn=Finance\, EMEA,OU=Groups,DC=corp,DC=example` {
		t.Errorf("DN = %q", req.DN)
	}
	a := attrs(req)
	if d := cmp.Diff([]string{"top", "group"}, a["objectClass"]); d != "" {
		t.Errorf("objectClass: %s", d)
	}
	if s := a["sAMAccountName"]; len(s) != 1 || strings.ContainsAny(s[0], ", ") {
		t.Errorf("group sAMAccountName = %v", s)
	}
}

func TestStateValues(t *testing.T) {
	st := parseState([]string{
		"key https://idp nameid a b c", "version 7", "group jit:https://idp Staff Team", "group scim x", statePending, "junk",
	})
	if st.version != 7 || !st.pending || len(st.keys) != 1 {
		t.Errorf("parsed %+v", st)
	}
	// A group recorded under an older fold (here: not folded at all) is
	// read under the current one, and deleted by its stored value.
	if !st.groups["jit:https://idp"]["staff team"] || !st.groups["scim"]["x"] {
		t.Errorf("groups %v", st.groups)
	}
	if v := st.groupValue("jit:https://idp", "staff team"); v != "group jit:https://idp Staff Team" {
		t.Errorf("stored value of the membership = %q", v)
	}
	if keyValue(provision.Key{IdP: "https://idp", Kind: "nameid", Subject: "a b c"}) != st.keys[0] {
		t.Error("a key value does not round-trip")
	}
	if err := checkKey(provision.Key{IdP: "https://idp x", Kind: "nameid", Subject: "s"}); !errors.Is(err, provision.ErrInvalid) {
		t.Errorf("IdP with a space: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"ok":                {func(*Config) {}, ""},
		"no url":            {func(c *Config) { c.URL = "" }, "url: required"},
		"http url":          {func(c *Config) { c.URL = "http://x" }, "scheme must be ldap or ldaps"},
		"url with dn":       {func(c *Config) { c.URL = "ldap://x/dc=x" }, "nothing else"},
		"no bind dn":        {func(c *Config) { c.BindDN = "" }, "bind_dn: required"},
		"two passwords":     {func(c *Config) { c.BindPasswordFile = "/x" }, "bind_password_file"},
		"bad base":          {func(c *Config) { c.UserBase = "not a dn" }, "user_base"},
		"bad rdn":           {func(c *Config) { c.RDN = "uid=alice" }, "rdn: must look like"},
		"rdn unknown field": {func(c *Config) { c.RDN = "uid={nickname}" }, "not user_name or a field"},
		"mapped twice":      {func(c *Config) { c.Attributes["department"] = "MAIL" }, "already mapped"},
		"reserved":          {func(c *Config) { c.Attributes["x"] = "memberOf" }, "managed by gatehouse"},
		"groups attribute":  {func(c *Config) { c.Attributes["groups"] = "ou" }, "attributes.groups"},
		"bad profile":       {func(c *Config) { c.Profile = "novell" }, "profile:"},
		"ad without state": {func(c *Config) {
			c.Profile, c.StateAttribute, c.StateObjectClass, c.UPNSuffix = ProfileActiveDirectory, "", "", "corp.example"
		}, "state_attribute: required"},
	} {
		t.Run(name, func(t *testing.T) {
			c := Config{URL: "ldap://127.0.0.1:389", BindDN: "cn=a,dc=x", BindPassword: "p", UserBase: "ou=p,dc=x", GroupBase: "ou=g,dc=x",
				Attributes: map[string]string{"user_name": "uid", "email": "mail", "department": "departmentNumber"}}
			tc.mod(&c)
			c = c.WithDefaults()
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

// FuzzNames: whatever a user name or group name an IdP asserts, the
// derived AD logon name stays within AD's rules, and state values
// round-trip.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"alice", "a b", "x@y", `)(*\`, strings.Repeat("é", 30), "trail.", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		sam := samAccountName(s)
		if n := utf8.RuneCountInString(sam); n == 0 || n > 20 || strings.ContainsAny(sam, "\"/\\[]:;|=,+*?<>@") || strings.HasSuffix(sam, ".") {
			t.Errorf("samAccountName(%q) = %q", s, sam)
		}
		st := parseState([]string{keyValue(provision.Key{IdP: "https://idp", Kind: "nameid", Subject: s}), groupValue("jit:https://idp", s)})
		if len(st.keys) != 1 || st.keys[0] != "key https://idp nameid "+s || !st.groups["jit:https://idp"][provision.NormalizeName(s)] {
			t.Errorf("state of %q = %+v", s, st)
		}
	})
}
