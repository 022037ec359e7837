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
