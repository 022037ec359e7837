package provision

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var testMapping = Mapping{UserName: "uid", Email: "mail", DisplayName: "cn", Groups: "groups",
	Extra: map[string]string{"department": "dept"}, ClearAbsent: []string{FieldEmail}}

func TestMapBuildsLogin(t *testing.T) {
	l, err := testMapping.Map(Assertion{IdP: "https://idp", NameID: "N1", NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		Attributes: map[string][]string{"uid": {"alice"}, "cn": {"Alice"}, "groups": {"b", "a", "a", ""}, "dept": {"R&D"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := Login{Key: Key{IdP: "https://idp", Kind: "nameid", Subject: "N1"}, Claims: Claims{
		Fields: map[string]string{FieldUserName: "alice", FieldDisplayName: "Alice", FieldEmail: ""},
		Extra:  map[string]string{"department": "R&D"}, Groups: []string{"a", "b"}, HasGroups: true},
		LinkBy: LinkByUserName}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("login (-want +got):\n%s", diff)
	}
}

func TestMapRefusesUnusableAssertions(t *testing.T) {
	keyed := testMapping
	keyed.KeyAttribute = "employeeNumber"
	for _, tc := range []struct {
		name string
		m    Mapping
		a    Assertion
		want error
	}{
		{"transient NameID", testMapping, Assertion{NameID: "_x", NameIDFormat: TransientNameID}, ErrNoKey},
		{"empty NameID", testMapping, Assertion{}, ErrNoKey},
		{"key attribute missing", keyed, Assertion{NameID: "n"}, ErrNoKey},
		{"key attribute multi-valued", keyed, Assertion{NameID: "n", Attributes: map[string][]string{"employeeNumber": {"1", "2"}}}, ErrNoKey},
		{"control character", testMapping, Assertion{NameID: "n", Attributes: map[string][]string{"uid": {"al\nice"}}}, ErrInvalid},
		{"invalid UTF-8", testMapping, Assertion{NameID: "n", Attributes: map[string][]string{"cn": {"\xff"}}}, ErrInvalid},
		{"oversized value", testMapping, Assertion{NameID: "n", Attributes: map[string][]string{"cn": {strings.Repeat("x", MaxValueLen+1)}}}, ErrInvalid},
		{"NUL in key", testMapping, Assertion{NameID: "a\x00b"}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.Map(tc.a); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMappingValidate(t *testing.T) {
	bad := Mapping{Extra: map[string]string{"Bad-Name": "x", "email": "y", "ok": ""}, ClearAbsent: []string{"user_name", "nope"}}
	err := bad.Validate()
	for _, want := range []string{"extra.Bad-Name", "extra.email", "extra.ok", "clear_absent[0]", "clear_absent[1]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem at %s", err, want)
		}
	}
	if err := testMapping.Validate(); err != nil {
		t.Errorf("valid mapping: %v", err)
	}
}

// FuzzMapping: whatever an IdP asserts, Map either refuses it with one of
// its sentinels or yields bounded, valid UTF-8 values without control
// characters, and never panics.
func FuzzMapping(f *testing.F) {
	f.Add("alice", "alice@example.com", "Alice", "g1,g2", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
	f.Add("", "", "", "", TransientNameID)
	f.Add("a\u0301", "x@y", "Ａｌｉｃｅ", ",,", "")
	f.Fuzz(func(t *testing.T, nameID, mail, cn, groups, format string) {
		a := Assertion{IdP: "idp", NameID: nameID, NameIDFormat: format, Attributes: map[string][]string{
			"uid": {nameID}, "mail": {mail}, "cn": {cn}, "groups": strings.Split(groups, ","), "dept": {cn, mail}}}
		l, err := testMapping.Map(a)
		if err != nil {
			if !errors.Is(err, ErrNoKey) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		check := func(v string) {
			if !utf8.ValidString(v) || len(v) > MaxValueLen || strings.ContainsAny(v, "\x00\r\n") {
				t.Fatalf("unsafe value %q", v)
			}
		}
		check(l.Key.Subject)
		// What a login maps to is what every store accepts.
		if err := l.Claims.Check(); err != nil {
			t.Fatalf("Map accepted claims the stores refuse: %v", err)
		}
		for _, v := range l.Claims.Fields {
			check(v)
		}
		for _, g := range l.Claims.Groups {
			check(g)
			if g == "" {
				t.Fatal("empty group")
			}
		}
		if l.Claims.Fields[FieldUserName] == "" {
			t.Fatal("no user name")
		}
	})
}
