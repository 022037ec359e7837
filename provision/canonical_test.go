package provision

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// TestCanonicalNameRefusesPaddingAndInvisibles: every value that names a
// user or group, or goes into a header, is refused when the header writer
// would change it or a reader could not see all of it.
func TestCanonicalNameRefusesPaddingAndInvisibles(t *testing.T) {
	for _, tc := range []struct{ name, v string }{
		{"leading space", " alice"},
		{"trailing space", "alice "},
		{"leading tab", "\talice"},
		{"leading NBSP", "\u00a0bob"},
		{"trailing ideographic space", "bob\u3000"},
		{"trailing line separator", "bob\u2028"},
		{"leading NEL", "\u0085bob"},
		{"trailing en quad", "bob\u2000"},
		{"only a space", " "},
		{"empty", ""},
		{"zero width space", "alice\u200b"},
		{"blank braille pattern", "bob\u2800"},
		{"blank braille pattern inside", "a\u2800lice"},
		{"musical null notehead", "bob\U0001d159"},
		{"zero width joiner", "al\u200dice"},
		{"zero width non-joiner", "al\u200cice"},
		{"soft hyphen", "al\u00adice"},
		{"word joiner", "ali\u2060ce"},
		{"byte order mark", "\ufeffalice"},
		{"variation selector", "alice\ufe0f"},
		{"variation selector supplement", "alice\U000E0100"},
		{"tag character", "alice\U000E0061"},
		{"left-to-right mark", "alice\u200e"},
		{"right-to-left mark", "\u200falice"},
		{"right-to-left override", "\u202eecila"},
		{"left-to-right isolate", "al\u2066ice\u2069"},
		{"arabic letter mark", "alice\u061c"},
		{"mongolian vowel separator", "ali\u180ece"},
		{"hangul filler", "alice\u3164"},
		{"combining grapheme joiner", "al\u034fice"},
		{"internal line separator", "ali\u2028ce"},
		{"internal paragraph separator", "ali\u2029ce"},
		{"NUL", "al\x00ice"},
		{"CR LF", "alice\r\nX-Admin: 1"},
		{"DEL", "alice\x7f"},
		{"C1 control", "alice\u0085x"},
		{"private use", "alice\ue000"},
		{"unassigned", "alice\U000E0FFF"},
		{"noncharacter", "alice\uffff"},
		{"invalid UTF-8", "ali\xffce"},
		{"leading combining mark", "\u0301alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := CanonicalName("user_name", tc.v); !errors.Is(err, ErrInvalid) {
				t.Errorf("CanonicalName(%q) = %q, %v; want ErrInvalid", tc.v, got, err)
			}
		})
	}
}

// TestCanonicalValueRules: header values get the padding and invisible
// rules, but not the name-only ones.
func TestCanonicalValueRules(t *testing.T) {
	for _, v := range []string{"", "Alice Liddell", "Zoë 😀 名前", "a\u00a0b", "alice\ue000"} {
		if got, err := CanonicalValue("display_name", v); err != nil || got != v {
			t.Errorf("CanonicalValue(%q) = %q, %v; want it unchanged", v, got, err)
		}
	}
	// Joiners and variation selectors where they are visible: a Persian
	// name with ZWNJ, an emoji sequence, an emoji presentation selector.
	for _, v := range []string{"\u0645\u062d\u0645\u062f\u06cc\u200c\u0646\u0698\u0627\u062f", "Team \u2764\ufe0f",
		"\U0001F468\u200d\U0001F469\u200d\U0001F467", "\u0915\u094d\u200d\u0937"} {
		if got, err := CanonicalValue("display_name", v); err != nil || got != v {
			t.Errorf("CanonicalValue(%q) = %q, %v; want it unchanged", v, got, err)
		}
		if _, err := CanonicalName("user_name", v); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalName(%q) err = %v, want ErrInvalid: names hold no joiners", v, err)
		}
	}
	for _, v := range []string{" Alice", "Alice\u00a0", "Al\u200bice", "x\u202e", "Al\u200cice", "Al\u200dice", "Alice\ufe0f",
		"\u200c\u0645", "\u0645\u200c", "\u0645\u200cx", "\u2764\u200dA"} {
		if _, err := CanonicalValue("display_name", v); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalValue(%q) err = %v, want ErrInvalid", v, err)
		}
	}
}

// TestLookAlikeNamesFoldTogether: compatibility, case and spacing variants
// of a name share one fold, so uniqueness makes them collide.
func TestLookAlikeNamesFoldTogether(t *testing.T) {
	for _, tc := range []struct {
		name string
		vs   []string
	}{
		{"case", []string{"alice", "ALICE", "Alice"}},
		{"full-width", []string{"alice", "ａlice", "ＡＬＩＣＥ"}},
		{"sharp s", []string{"straße", "STRASSE", "strasse", "STRAẞE"}},
		{"kelvin sign", []string{"k", "\u212a"}},
		{"ligature", []string{"office", "oﬃce"}},
		{"composed and decomposed", []string{"zoë", "zoe\u0308", "ZOË"}},
		{"superscript digit", []string{"a2", "a²"}},
		{"internal spaces", []string{"john smith", "john\u00a0smith", "john  smith", "john\u3000smith"}},
		{"greek ypogegrammeni", []string{"ᾳ", "ᾼ", "αι"}},
		// Other software's case-insensitive comparisons merge these.
		{"dotless i", []string{"alice", "al\u0131ce", "AL\u0131CE"}},
		{"dotted capital I", []string{"alice", "al\u0130ce", "ALİCE", "ali\u0307ce"}},
		{"turkish istanbul", []string{"istanbul", "İstanbul", "ıstanbul", "ISTANBUL"}},
		{"long s", []string{"sam", "\u017fam", "ſAM"}},
		{"cherokee", []string{"ᏣᎳᎩ", "ꮳꮃꭹ", "Ꮳꮃꭹ", "ꮳᎳᎩ"}},
		{"cherokee small letters", []string{"\u13f0", "\u13f8"}},
		{"ff ligature", []string{"staff", "sta\ufb00", "STAﬀ"}},
		{"angstrom sign", []string{"ångström", "\u212bngström", "angstrom"}},
		{"greek final sigma and tonos", []string{"οδυσσευς", "ΟΔΥΣΣΕΥΣ", "Οδυσσεύς", "οδυσσευς"}},
		// Accent-insensitive collations (utf8mb4_0900_ai_ci) merge these.
		{"grave", []string{"alice", "àlice", "ÀLICE", "a\u0300lice"}},
		{"acute", []string{"alice", "alicé", "ALICÉ"}},
		{"several accents", []string{"nguyen", "Nguyễn", "NGUYÊN"}},
		{"stroke", []string{"bjorn", "bjørn", "BJØRN", "BJÖRN"}},
		{"polish l", []string{"lodz", "łódź", "ŁÓDŹ"}},
		{"ae ligature", []string{"aesir", "æsir", "ÆSIR", "ǣsir"}},
		{"eth", []string{"sigurdur", "sigurður", "SIGURÐUR"}},
		{"cyrillic breve", []string{"андреи", "андрей", "АНДРЕЙ"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := NormalizeName(tc.vs[0])
			for _, v := range tc.vs[1:] {
				if got := NormalizeName(v); got != want {
					t.Errorf("NormalizeName(%q) = %q, NormalizeName(%q) = %q; want equal", v, got, tc.vs[0], want)
				}
			}
		})
	}
	// Different letters stay apart, and so do the marks of scripts that
	// write vowels with them.
	for _, p := range [][2]string{{"alice", "alicia"}, {"bob", "bab"}, {"ali", "all"}, {"कुमार", "कमार"}, {"ə", "e"}, {"ŋ", "n"}, {"þora", "thora"}} {
		if NormalizeName(p[0]) == NormalizeName(p[1]) {
			t.Errorf("distinct names %q and %q fold together", p[0], p[1])
		}
	}
}

// TestMapRefusesPaddedNames: a login asserting a padded or invisible user
// or group name is refused with its reason, unless the IdP's mapping opts
// in to trimming; a group prefix is applied to every group.
func TestMapRefusesPaddedNames(t *testing.T) {
	m := Mapping{UserName: "uid", Groups: "groups", DisplayName: "cn", Email: "mail"}
	assert := func(attrs map[string][]string) Assertion {
		return Assertion{IdP: "https://idp", NameID: "n1", Attributes: attrs}
	}
	for _, tc := range []struct {
		name  string
		attrs map[string][]string
	}{
		{"user name with leading space", map[string][]string{"uid": {" alice"}}},
		{"user name with trailing space", map[string][]string{"uid": {"alice "}}},
		{"user name with NBSP", map[string][]string{"uid": {"\u00a0alice"}}},
		{"user name with zero width space", map[string][]string{"uid": {"alice\u200b"}}},
		{"group with leading space", map[string][]string{"uid": {"alice"}, "groups": {" admins"}}},
		{"group with bidi override", map[string][]string{"uid": {"alice"}, "groups": {"\u202esnimda"}}},
		{"display name with trailing space", map[string][]string{"uid": {"alice"}, "cn": {"Alice "}}},
		{"email with zero width joiner", map[string][]string{"uid": {"alice"}, "mail": {"alice@exa\u200dmple.test"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if l, err := m.Map(assert(tc.attrs)); !errors.Is(err, ErrInvalid) {
				t.Errorf("Map() = %+v, %v; want ErrInvalid", l.Claims, err)
			}
		})
	}
	t.Run("NameID with leading space as user name", func(t *testing.T) {
		if _, err := (Mapping{}).Map(Assertion{IdP: "https://idp", NameID: " alice"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})

	trim := m
	trim.TrimWhitespace, trim.GroupPrefix = true, "corp:"
	l, err := trim.Map(assert(map[string][]string{"uid": {"\u00a0alice "}, "groups": {" admins", "staff\u3000"}, "cn": {" Alice "}}))
	if err != nil {
		t.Fatalf("Map(trim_whitespace) err = %v", err)
	}
	if l.Claims.Fields[FieldUserName] != "alice" || l.Claims.Fields[FieldDisplayName] != "Alice" ||
		strings.Join(l.Claims.Groups, ",") != "corp:admins,corp:staff" {
		t.Errorf("trimmed claims = %+v", l.Claims)
	}
	if _, err := trim.Map(assert(map[string][]string{"uid": {"alice\u200b "}})); !errors.Is(err, ErrInvalid) {
		t.Errorf("trimming still refuses invisible characters: err = %v", err)
	}
	if _, err := trim.Map(assert(map[string][]string{"uid": {"\u00a0"}})); !errors.Is(err, ErrInvalid) {
		t.Errorf("a user name of only white space: err = %v, want ErrInvalid", err)
	}
}

// TestGroupPrefixValidated: a prefix that could not start a canonical
// group name is refused by check.
func TestGroupPrefixValidated(t *testing.T) {
	for _, p := range []string{" corp:", "corp\u200b:", "co\nrp", strings.Repeat("x", MaxGroupPrefixLen+1)} {
		if err := (Mapping{GroupPrefix: p}).Validate(); err == nil || !strings.Contains(err.Error(), "group_prefix") {
			t.Errorf("Validate(group_prefix %q) = %v, want a group_prefix error", p, err)
		}
	}
	for _, p := range []string{"corp:", "отдел:", "東京/", "partner "} {
		if err := (Mapping{GroupPrefix: p}).Validate(); err != nil {
			t.Errorf("Validate(group_prefix %q) = %v", p, err)
		}
	}
}

// TestManyGroupsAccepted: a user of a large forest asserts thousands of
// groups.
func TestManyGroupsAccepted(t *testing.T) {
	vals := make([]string, 5000)
	for i := range vals {
		vals[i] = "group-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + strconv.Itoa(i)
	}
	l, err := (Mapping{Groups: "g"}).Map(Assertion{NameID: "n", Attributes: map[string][]string{"g": vals}})
	if err != nil || len(l.Claims.Groups) != 5000 {
		t.Fatalf("Map(5000 groups) = %d groups, %v", len(l.Claims.Groups), err)
	}
	if _, err := (Mapping{Groups: "g"}).Map(Assertion{NameID: "n", Attributes: map[string][]string{"g": make([]string, MaxGroups+1)}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Map(%d groups) err = %v, want ErrInvalid", MaxGroups+1, err)
	}
}

// FuzzCanonicalName: the canonical checks never panic, accept only what
// they return unchanged, and the fold is stable: folding twice changes
// nothing, and the fold of an accepted name is itself accepted.
func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{"alice", " alice", "ａlice", "straße", "ᾳ", "\u0345", "ǅ", "ﷺ", "a\u200bb", "İstanbul", "ΐ", "\u1e9e", "a  b", "\u00a0",
		"alıce", "àlice", "ÆØÅ", "a\u0338", "Ꜳ", "ǀ", "ɑlice", "Ɑ", "ŀ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := CanonicalName("user_name", s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CanonicalName(%q) err = %v, not ErrInvalid", s, err)
			}
			return
		}
		if got != s {
			t.Fatalf("CanonicalName(%q) = %q, changed an accepted name", s, got)
		}
		if Trim(s) != s {
			t.Fatalf("CanonicalName accepted padded %q", s)
		}
		fold := NormalizeName(s)
		if prev := NormalizeName(previousFold(s)); prev != fold {
			// sqldir refolds bookkeeping that kept only the previous fold.
			t.Fatalf("NormalizeName(previous fold of %q) = %q, NormalizeName = %q", s, prev, fold)
		}
		if again := NormalizeName(fold); again != fold {
			t.Fatalf("NormalizeName not idempotent: %q -> %q -> %q", s, fold, again)
		}
		if !utf8.ValidString(fold) {
			t.Fatalf("NormalizeName(%q) = invalid UTF-8", s)
		}
		if len(fold) <= MaxValueLen {
			if _, err := CanonicalName("user_name", fold); err != nil {
				t.Fatalf("fold %q of accepted %q is refused: %v", fold, s, err)
			}
		}
	})
}

// TestFoldASCIIFastPath: the ASCII shortcut folds exactly as the full
// path does.
func TestFoldASCIIFastPath(t *testing.T) {
	c := cases.Fold()
	for r := rune(0); r < utf8.RuneSelf; r++ {
		for _, s := range []string{string(r), "a" + string(r) + "b", "A  " + string(r) + "\tZ"} {
			full := collapseSpace(norm.NFKC.String(c.String(norm.NFKC.String(s))))
			if got := NormalizeName(s); got != full {
				t.Errorf("NormalizeName(%q) = %q, the full fold gives %q", s, got, full)
			}
		}
	}
}

func BenchmarkNormalizeName(b *testing.B) {
	for _, s := range []string{"Domain Admins", "straße-Ｇruppe"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NormalizeName(s)
			}
		})
	}
}

func BenchmarkMapManyGroups(b *testing.B) {
	vals := make([]string, 5000)
	for i := range vals {
		vals[i] = "CN=Group " + strconv.Itoa(i) + ",OU=Groups,DC=corp,DC=example"
	}
	m := Mapping{Groups: "g", UserName: "uid"}
	a := Assertion{NameID: "n", Attributes: map[string][]string{"g": vals, "uid": {"alice"}}}
	b.ReportAllocs()
	for b.Loop() {
		l, err := m.Map(a)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Claims.Check(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMixedScriptLookAlikesRefused: a word mixing Latin with Cyrillic or
// Greek look-alikes is refused as a name; real names in one script, and
// the mixes one writing system uses, pass.
func TestMixedScriptLookAlikesRefused(t *testing.T) {
	for _, v := range []string{"аlice", "pаypal", "\u0430dmins", "admin\u0455", "αdmins", "corp:аdmins", "jоhn.smith", "Ａlicе"} {
		if _, err := CanonicalName("user_name", v); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "mixes scripts") {
			t.Errorf("CanonicalName(%q) err = %v, want a mixed-script refusal", v, err)
		}
	}
	for _, v := range []string{"алиса", "Отдел IT", "Müller", "Ærøskøbing", "東京タワー", "Tシャツ", "김철수", "Ελένη", "ｂob", "zoë-2", "O'Brien"} {
		if _, err := CanonicalName("user_name", v); err != nil {
			t.Errorf("CanonicalName(%q) err = %v, want accepted", v, err)
		}
	}
	if _, err := CanonicalValue("display_name", "Алексей (Аlex)"); err != nil {
		t.Errorf("a display name is not a name: %v", err)
	}
}

func BenchmarkCanonicalGroupNonASCII(b *testing.B) {
	for b.Loop() {
		if _, err := CanonicalGroup("Отдел информационных технологий Москва"); err != nil {
			b.Fatal(err)
		}
	}
}
