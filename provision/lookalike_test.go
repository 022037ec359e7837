package provision

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

// previousFold is NormalizeName as it was before accents and the dotless
// i were folded: NFKC and full case folding until stable. sqldir's refold
// computes the new fold of bookkeeping rows that kept only this one.
func previousFold(s string) string {
	c := cases.Fold()
	out := norm.NFKC.String(s)
	for range 4 {
		next := norm.NFKC.String(c.String(out))
		if next == out {
			break
		}
		out = next
	}
	return collapseSpace(out)
}

// caseMappings are the ways software changes the case of a name before
// comparing it: simple per-character mappings (Java's equalsIgnoreCase,
// .NET's OrdinalIgnoreCase, SQL's UPPER), Turkish casing, and the full
// mappings of several locales (Python's str.upper, ICU).
func caseMappings() map[string]func(string) string {
	ms := map[string]func(string) string{
		"simple upper":  func(s string) string { return strings.Map(unicode.ToUpper, s) },
		"simple lower":  func(s string) string { return strings.Map(unicode.ToLower, s) },
		"simple title":  func(s string) string { return strings.Map(unicode.ToTitle, s) },
		"turkish upper": func(s string) string { return strings.ToUpperSpecial(unicode.TurkishCase, s) },
		"turkish lower": func(s string) string { return strings.ToLowerSpecial(unicode.TurkishCase, s) },
	}
	for _, tag := range []string{"und", "tr", "az", "lt", "el", "nl"} {
		l := language.MustParse(tag)
		for name, c := range map[string]cases.Caser{"upper": cases.Upper(l), "lower": cases.Lower(l), "title": cases.Title(l)} {
			ms[tag+" "+name] = c.String
		}
	}
	return ms
}

// TestCaseMappingsOfEveryLocaleFoldTogether: a name and any case mapping
// of it, in any locale or library, share one fold, so that no two
// gatehouse users are one user to an application comparing names case-
// insensitively ("alıce".upper() == "ALICE" in Python, Java's
// "alİce".equalsIgnoreCase("alice")). Every cased code point is tried
// between two letters.
func TestCaseMappingsOfEveryLocaleFoldTogether(t *testing.T) {
	ms := caseMappings()
	fails := 0
	for r := rune(0x80); r <= unicode.MaxRune && fails < 20; r++ {
		if !unicode.In(r, unicode.L, unicode.M) || unicode.ToUpper(r) == r && unicode.ToLower(r) == r && !unicode.In(r, unicode.Ll, unicode.Lu, unicode.Lt, unicode.Other_Lowercase) {
			continue
		}
		s := "x" + string(r) + "y"
		if _, err := CanonicalName("user_name", s); err != nil {
			continue
		}
		want := NormalizeName(s)
		for name, m := range ms {
			v := m(s)
			if _, err := CanonicalName("user_name", v); err != nil || v == s {
				continue
			}
			if got := NormalizeName(v); got != want {
				t.Errorf("%U: %s(%q) = %q folds to %q, %q to %q", r, name, s, v, got, s, want)
				fails++
			}
		}
	}
}

// TestAccentInsensitiveCollationFolds: every Latin letter that an
// accent- and case-insensitive collation (the Unicode root collation at
// primary strength, as MySQL's utf8mb4_0900_ai_ci compares) takes for
// basic Latin letters folds to those letters.
func TestAccentInsensitiveCollationFolds(t *testing.T) {
	col := collate.New(language.Und, collate.IgnoreCase, collate.IgnoreDiacritics, collate.IgnoreWidth)
	var buf collate.Buffer
	basic := map[string]string{}
	for a := 'a'; a <= 'z'; a++ {
		basic[string(col.KeyFromString(&buf, string(a)))] = string(a)
		for b := 'a'; b <= 'z'; b++ {
			basic[string(col.KeyFromString(&buf, string(a)+string(b)))] = string(a) + string(b)
		}
	}
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if !unicode.IsLetter(r) || !unicode.In(r, unicode.Latin, unicode.Common) || r == 'ŀ' || r == 'Ŀ' {
			// ŀ is "l·" under NFKC, the Catalan spelling of the same letter.
			continue
		}
		if _, err := CanonicalName("user_name", string(r)); err != nil {
			continue
		}
		if want, ok := basic[string(col.KeyFromString(&buf, string(r)))]; ok {
			if got := NormalizeName(string(r)); got != want {
				t.Errorf("%U %q: the collation compares it equal to %q, it folds to %q", r, string(r), want, got)
			}
		}
	}
}

// TestLookAlikeLettersRefused: the Latin letters that exist mainly as
// look-alikes (click letters, Latin alpha, script g, small capitals) are
// refused in user and group names, upper-case forms included; letters of
// real orthographies are not.
func TestLookAlikeLettersRefused(t *testing.T) {
	for _, v := range []string{"a\u01c0ice", "\u0251lice", "ALⱭ", "al\u01c3", "adm\u026ans", "\u1d00dmins", "ᴀᴅᴍɪɴs", "bo\u0261", "Ɡod", "Ɪvan", "\u0138im", "ꜱam"} {
		if _, err := CanonicalName("user_name", v); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalName(%q) err = %v, want ErrInvalid", v, err)
		}
		if _, err := CanonicalGroup(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalGroup(%q) err = %v, want ErrInvalid", v, err)
		}
		if _, err := CanonicalValue("display_name", v); err != nil {
			t.Errorf("CanonicalValue(%q) err = %v: only names refuse look-alike letters", v, err)
		}
	}
	for _, v := range []string{"Əli", "Ɛsi", "Kɔfi", "Ŋgugi", "Þóra", "Ɖevi", "Ʋɔ", "İlker", "Işık", "Bjørn", "Łukasz"} {
		if _, err := CanonicalName("user_name", v); err != nil {
			t.Errorf("CanonicalName(%q) err = %v, want accepted", v, err)
		}
	}
}
