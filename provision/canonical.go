package provision

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// One canonical form for every identity value (design rule 6). Whatever
// names a user or a group, or travels in an identity header, passes
// CanonicalName or CanonicalValue here, whichever door it came through
// (a login, SCIM, a store write), and names are compared only through
// NormalizeName. What the upstream reads is then exactly what was checked:
// a value is refused, never silently altered, unless the operator opted
// in to trimming (Trim).

// CanonicalName checks a user or group name and returns it unchanged, or
// an error wrapping ErrInvalid that says what is wrong. field names the
// value in that error. On top of CanonicalValue's rules a name must not
// be empty, may hold no private-use or unassigned code point (either could
// look like anything today and fold differently tomorrow), no word of it
// may mix scripts as no writing system does ("аlice" with a Cyrillic а;
// see script.go), it may hold none of the Latin look-alike letters of
// script.go ("aǀice", "ɑlice"), and its fold must itself pass these rules.
func CanonicalName(field, s string) (string, error) {
	return checkText(field, s, MaxValueLen, true)
}

// CanonicalGroup is CanonicalName for a group name, whose limit is
// MaxGroupLen bytes.
func CanonicalGroup(s string) (string, error) {
	return checkText(FieldGroups, s, MaxGroupLen, true)
}

// CanonicalValue checks any other value that may reach an identity header
// (e-mail, display and given names, external ID, extra attributes) and
// returns it unchanged, or an error wrapping ErrInvalid. "" is allowed (it
// clears a field). Refused: invalid UTF-8, more than MaxValueLen bytes,
// leading or trailing white space (any Unicode White_Space), and anywhere
// in the value control characters, line and paragraph separators, format
// characters (Cf, which holds the bidi controls, zero-width characters,
// soft hyphen, word joiner, BOM and tag characters) and every other
// Default_Ignorable_Code_Point (variation selectors, Hangul fillers,
// combining grapheme joiner, ...).
func CanonicalValue(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return checkText(field, s, MaxValueLen, false)
}

// Trim removes leading and trailing Unicode White_Space, for a door whose
// operator opted in to trimming padded values (mapping.trim_whitespace,
// scim.trim_whitespace). The result still has to pass the checks above.
func Trim(s string) string { return strings.TrimFunc(s, isSpace) }

func isSpace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// invisible lists the code points refused anywhere in a value: they do
// not render, or change how neighbours render, so two different values
// would look the same.
var invisible = []*unicode.RangeTable{
	unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp,
	unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Bidi_Control,
	blank,
}

// blank holds the symbols that render as nothing though Unicode does not
// call them ignorable: the blank Braille pattern (U+2800, a favourite of
// invisible user names), the musical null notehead and the object
// replacement character.
var blank = &unicode.RangeTable{
	R16: []unicode.Range16{{Lo: 0x2800, Hi: 0x2800, Stride: 1}, {Lo: 0xfffc, Hi: 0xfffc, Stride: 1}},
	R32: []unicode.Range32{{Lo: 0x1d159, Hi: 0x1d159, Stride: 1}},
}

func checkText(field, s string, max int, name bool) (string, error) {
	if _, err := checkRunes(field, s, max, name); err != nil || !name || isASCII(s) {
		// An ASCII name that passed folds to lower case with single
		// spaces: a name as well.
		return s, err
	}
	// A name's fold must be a canonical name too, or uniqueness would
	// compare forms that could never be names: "¨" folds to a space and a
	// combining mark.
	if f := NormalizeName(s); f != s {
		if _, err := checkRunes(field, f, 4*max, true); err != nil {
			return "", fmt.Errorf("%w: %s folds to a form that is not a canonical name: %s", ErrInvalid, field, reason(err))
		}
	}
	return s, nil
}

func checkRunes(field, s string, max int, name bool) (string, error) {
	bad := func(why string) (string, error) { return "", fmt.Errorf("%w: %s %s", ErrInvalid, field, why) }
	switch {
	case name && s == "":
		return bad("is empty")
	case len(s) > max:
		return "", fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, field, len(s), max)
	case !utf8.ValidString(s):
		return bad("is not valid UTF-8")
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if isSpace(first) || isSpace(last) {
		return bad("has leading or trailing white space")
	}
	if name && unicode.Is(unicode.M, first) {
		// It would combine with whatever is shown before the name (a
		// group prefix, a separator).
		return bad("starts with a combining mark")
	}
	for i, r := range s {
		switch {
		case r < utf8.RuneSelf && r >= 0x20 && r != 0x7f:
			// Printable ASCII: in none of the tables below.
		case name && unicode.Is(lookalikeLetters, r):
			return bad(fmt.Sprintf("contains %q (U+%04X at byte %d), a letter refused in names as a look-alike of another", r, r, i))
		case unicode.IsLetter(r) && !unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
			// A letter (assigned, not private use) that is not one of the
			// Hangul fillers.
		case unicode.IsControl(r):
			return bad("contains control characters")
		case !name && visibleJoiner(s, i, r):
			// A joiner or variation selector that changes what its
			// neighbours look like (see visibleJoiner).
		case unicode.IsOneOf(invisible, r):
			return bad(fmt.Sprintf("contains an invisible or format character (U+%04X at byte %d)", r, i))
		case name && unicode.Is(unicode.Co, r):
			return bad(fmt.Sprintf("contains a private-use character (U+%04X at byte %d)", r, i))
		case name && unicode.Is(unicode.Cn, r): // noncharacters too
			return bad(fmt.Sprintf("contains an unassigned code point (U+%04X at byte %d)", r, i))
		}
	}
	if name && !isASCII(s) {
		if w, scripts, ok := mixedScripts(s); ok {
			return bad(fmt.Sprintf("mixes scripts (%s) in the word %q: a look-alike of another name", strings.Join(scripts, ", "), w))
		}
	}
	return s, nil
}

// folders reuses case folders: a cases.Caser keeps state and must not be
// shared between goroutines.
var folders = sync.Pool{New: func() any { c := cases.Fold(); return &c }}

// NormalizeName is the fold under which user and group names are unique,
// and how every store compares them. Two names share a fold when software
// commonly found behind gatehouse, or in front of its store, would take
// them for one name:
//   - compatibility variants (NFKC: full-width "ａlice", "ﬀ", Kelvin sign),
//   - case variants under any locale's or library's mapping (full case
//     folding: "STRASSE" and "straße"; dotless ı and dotted İ are i, as
//     Turkish casing, Java's equalsIgnoreCase and SQL's UPPER() make them),
//   - accent variants ("àlice", "alicé", "ålice" and "alice"; "bjørn" and
//     "bjorn"), as accent-insensitive collations compare them (MySQL's
//     default utf8mb4_0900_ai_ci, SQL Server's *_CI_AI): see baseLetter,
//   - spacing variants ("a\u00a0b", "a  b"): every run of white space is
//     one space.
//
// The steps (NFKC, full case folding, accent removal) repeat until the
// value no longer changes. Stores keep the fold in their *_norm columns
// (ldapdir in "name <fold>" values); a change here needs a refold step in
// sqldir's migrations and the previous fold in ldapdir's folds.
func NormalizeName(s string) string {
	if isASCII(s) {
		// NFKC leaves ASCII alone, case folding lower-cases it and it has
		// no accents.
		return collapseSpace(strings.ToLower(s))
	}
	c := folders.Get().(*cases.Caser)
	defer folders.Put(c)
	out := norm.NFKC.String(s)
	for range 4 {
		next := norm.NFKC.String(stripAccents(strings.Map(orbitLower, c.String(out))))
		if next == out {
			break
		}
		out = next
	}
	return collapseSpace(out)
}

// orbitLower maps a rune to the lower case of the least rune of its
// simple case-folding orbit, so every case variant Unicode knows ends as
// one rune even where x/text's folding leaves a pair apart (Cherokee,
// whose lower-case letters fold to upper case, comes out as lower case
// from one spelling and upper case from the other).
func orbitLower(r rune) rune {
	if r < utf8.RuneSelf {
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return unicode.ToLower(least)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// collapseSpace makes every run of white space one U+0020.
func collapseSpace(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != ' ' && isSpace(r) }) < 0 && !strings.Contains(s, "  ") {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s))
	space := false
	for _, r := range s {
		if isSpace(r) {
			if !space {
				sb.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		sb.WriteRune(r)
	}
	return sb.String()
}

// CheckUser applies the canonical rules to every field of a user record
// before a store writes it: CanonicalName to the user name, CanonicalValue
// to every other field. Stores call it whatever door the record came
// through.
func CheckUser(u User) error {
	if _, err := CanonicalName(FieldUserName, u.UserName); err != nil {
		return err
	}
	for _, f := range coreFields {
		if f == FieldUserName {
			continue
		}
		if _, err := CanonicalValue(f, u.Field(f)); err != nil {
			return err
		}
	}
	for f, v := range u.Extra {
		if _, err := CanonicalValue(f, v); err != nil {
			return err
		}
	}
	return nil
}

// Check applies the canonical rules to the claims of a login, as stores do
// before they write them: the user name (when asserted) and each group
// must be canonical names, every other value a canonical value.
func (c Claims) Check() error {
	for f, v := range c.Fields {
		var err error
		if f == FieldUserName {
			_, err = CanonicalName(f, v)
		} else {
			_, err = CanonicalValue(f, v)
		}
		if err != nil {
			return err
		}
	}
	for f, v := range c.Extra {
		if _, err := CanonicalValue(f, v); err != nil {
			return err
		}
	}
	for _, g := range c.Groups {
		if _, err := CanonicalGroup(g); err != nil {
			return err
		}
	}
	return nil
}
