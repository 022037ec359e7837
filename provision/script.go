package provision

import (
	"maps"
	"slices"
	"strings"
	"unicode"
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
