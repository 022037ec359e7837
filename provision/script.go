package provision

import (
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mixed-script look-alikes. NFKC and case folding cannot make "аlice"
// (Cyrillic а) collide with "alice": the letters are different characters
// that look the same. Names are refused instead when one word mixes
// scripts beyond what a single writing system uses: the "Highly
// Restrictive" level of Unicode TS #39, applied word by word, so that
// "Отдел IT" (two words, one script each) and "Tシャツ" (Latin with
// Japanese) pass while "аlice" and "pаypal" do not. Whole-script
// look-alikes (a name written entirely in Cyrillic letters that look
// Latin) are not detected: that needs the confusables data of TS #39.

// scriptTable is one Unicode script other than Common and Inherited.
type scriptTable struct {
	name  string
	table *unicode.RangeTable
}

// scripts lists the scripts, the most common first, so that a lookup
// usually ends early.
var scripts = func() []scriptTable {
	first := []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Armenian", "Georgian"}
	out := make([]scriptTable, 0, len(unicode.Scripts))
	for _, n := range first {
		out = append(out, scriptTable{n, unicode.Scripts[n]})
	}
	for _, n := range slices.Sorted(maps.Keys(unicode.Scripts)) {
		if n != "Common" && n != "Inherited" && !slices.Contains(first, n) {
			out = append(out, scriptTable{n, unicode.Scripts[n]})
		}
	}
	return out
}()

// scriptOf returns the script of r, "" for Common and Inherited
// characters (digits, punctuation, combining marks) and unassigned ones.
// hint, the script of the previous letter, is tried first.
func scriptOf(r rune, hint *scriptTable) *scriptTable {
	if r < 0x80 {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return &scripts[0]
		}
		return nil
	}
	if hint != nil && unicode.Is(hint.table, r) {
		return hint
	}
	for i := range scripts {
		if unicode.Is(scripts[i].table, r) {
			return &scripts[i]
		}
	}
	return nil
}

// allowedMixes are the script sets one writing system uses together
// (TS #39 Highly Restrictive): Japanese, Chinese with Bopomofo, Korean,
// each with Latin.
var allowedMixes = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// mixedScripts returns the first word of s whose letters mix scripts no
// single writing system uses, with those scripts.
func mixedScripts(s string) (word string, names []string, ok bool) {
	words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.In(r, unicode.L, unicode.M, unicode.N) })
	for _, w := range words {
		var seen []string
		var hint *scriptTable
		for _, r := range w {
			sc := scriptOf(r, hint)
			if sc == nil {
				continue
			}
			hint = sc
			if !slices.Contains(seen, sc.name) {
				seen = append(seen, sc.name)
			}
		}
		if len(seen) > 1 && !slices.ContainsFunc(allowedMixes, func(mix []string) bool {
			return !slices.ContainsFunc(seen, func(n string) bool { return !slices.Contains(mix, n) })
		}) {
			return w, seen, true
		}
	}
	return "", nil, false
}

// joiningScripts are the scripts in which a zero-width (non-)joiner
// between two letters changes how they are drawn: Persian names, for
// one, are spelt with U+200C.
var joiningScripts = []*unicode.RangeTable{
	unicode.Arabic, unicode.Syriac, unicode.Nko, unicode.Mongolian, unicode.Devanagari, unicode.Bengali,
	unicode.Gurmukhi, unicode.Gujarati, unicode.Oriya, unicode.Tamil, unicode.Telugu, unicode.Kannada,
	unicode.Malayalam, unicode.Sinhala,
}

// visibleJoiner reports whether the format character r at byte i of s
// has a visible effect there, so that a value other than a name may hold
// it: ZWNJ or ZWJ between two letters or marks of one joining script, ZWJ
// inside an emoji sequence, and an emoji variation selector after a
// symbol. Names never hold them; anywhere else they are invisible and
// refused.
func visibleJoiner(s string, i int, r rune) bool {
	if r != '\u200c' && r != '\u200d' && r != '\ufe0e' && r != '\ufe0f' {
		return false
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	next, _ := utf8.DecodeRuneInString(s[i+utf8.RuneLen(r):])
	symbol := func(x rune) bool { return unicode.In(x, unicode.So, unicode.Sk) }
	switch r {
	case '\ufe0e', '\ufe0f':
		return symbol(prev)
	case '\u200d':
		if (symbol(prev) || prev == '\ufe0f') && symbol(next) {
			return true
		}
	}
	for _, sc := range joiningScripts {
		if unicode.Is(sc, prev) && unicode.Is(sc, next) && unicode.In(next, unicode.L, unicode.M) {
			return true
		}
	}
	return false
}

// Same-script look-alikes. Telling "ǀ" (U+01C0, a click letter) from "l",
// or "ɑ" from "a", takes the confusables data of Unicode TS #39, which
// gatehouse does not carry. Instead a name may not hold the Latin letters
// below, which exist for phonetic transcription and a few orthographies
// but mainly turn up in names as look-alikes: the click letters ǀ ǁ ǂ ǃ
// (which look like l, ll, ‡ and !), the Latin alpha ɑ and script g ɡ, kra
// ĸ, and the small capitals (ᴀ, ɪ, ʟ, ...), which read as capital
// letters. Their upper-case forms (Ɑ, Ɡ, Ɪ) fold to them and are refused
// with them. Other same-script look-alikes are not detected.
var lookalikeLetters = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x0138, Hi: 0x0138, Stride: 1}, // ĸ
		{Lo: 0x01c0, Hi: 0x01c3, Stride: 1}, // ǀ ǁ ǂ ǃ
		{Lo: 0x0251, Hi: 0x0251, Stride: 1}, // ɑ
		{Lo: 0x0261, Hi: 0x0262, Stride: 1}, // ɡ ɢ
		{Lo: 0x026a, Hi: 0x026a, Stride: 1}, // ɪ
		{Lo: 0x0274, Hi: 0x0274, Stride: 1}, // ɴ
		{Lo: 0x0276, Hi: 0x0276, Stride: 1}, // ɶ
		{Lo: 0x0280, Hi: 0x0281, Stride: 1}, // ʀ ʁ
		{Lo: 0x028f, Hi: 0x028f, Stride: 1}, // ʏ
		{Lo: 0x0299, Hi: 0x0299, Stride: 1}, // ʙ
		{Lo: 0x029b, Hi: 0x029c, Stride: 1}, // ʛ ʜ
		{Lo: 0x029f, Hi: 0x029f, Stride: 1}, // ʟ
		{Lo: 0x1d00, Hi: 0x1d2b, Stride: 1}, // small capitals (ᴀ ... ᴫ)
		{Lo: 0xa730, Hi: 0xa731, Stride: 1}, // ꜰ ꜱ
		{Lo: 0xa7ae, Hi: 0xa7ae, Stride: 1}, // Ɪ
	},
}
