package provision

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Accent-insensitive folding. Accent-insensitive collations (MySQL's
// default utf8mb4_0900_ai_ci, SQL Server's *_CI_AI, the Unicode Collation
// Algorithm at primary strength) compare "àlice" equal to "alice"; an
// application that looks its users up through one would take two
// gatehouse users for one. So the fold drops accents: the combining marks
// of the general-purpose diacritic blocks, which Latin, Greek and
// Cyrillic letters decompose into, and the strokes and bars of letters
// that have no decomposition (ø, ł, đ, ħ, ...). The marks of scripts that
// write vowels or consonants with them (Devanagari, Arabic, Hebrew, Thai,
// ...) are letters of their own there and are kept.

// diacritics are the combining mark blocks whose marks are accents on a
// base letter.
var diacritics = &unicode.RangeTable{R16: []unicode.Range16{
	{Lo: 0x0300, Hi: 0x036f, Stride: 1}, // Combining Diacritical Marks
	{Lo: 0x1ab0, Hi: 0x1aff, Stride: 1}, // Combining Diacritical Marks Extended
	{Lo: 0x1dc0, Hi: 0x1dff, Stride: 1}, // Combining Diacritical Marks Supplement
	{Lo: 0x20d0, Hi: 0x20ff, Stride: 1}, // Combining Diacritical Marks for Symbols
	{Lo: 0xfe20, Hi: 0xfe2f, Stride: 1}, // Combining Half Marks
}}

// baseLetter maps the lower-case letters that accent-insensitive
// comparison takes for a basic letter, or two, but that no decomposition
// reaches: the dotless i (Turkish upper-cases it to I), letters with a
// stroke or bar (ø, ł, đ, ħ, ...), the ligatures æ and œ, eth, and the
// medieval letters and ligatures that the root collation of Unicode CLDR
// sorts as basic letters. Upper-case forms reach them through case
// folding first.
var baseLetter = map[rune]string{
	'ı': "i", 'ȷ': "j", // dotless
	'ø': "o", 'ł': "l", 'đ': "d", 'ħ': "h", 'ŧ': "t", 'ƀ': "b", 'ɨ': "i", 'ƶ': "z", 'ǥ': "g",
	'ȼ': "c", 'ɇ': "e", 'ɉ': "j", 'ɍ': "r", 'ɏ': "y", 'ⱥ': "a", 'ⱦ': "t", // stroke or bar
	'æ': "ae", 'œ': "oe", 'ð': "d",
	'ꝺ': "d", 'ꝼ': "f", 'ᵹ': "g", 'ꞃ': "r", 'ꞅ': "s", 'ꞇ': "t", 'ꞡ': "g", 'ꞣ': "k", 'ꞥ': "n",
	'ꞧ': "r", 'ꞩ': "s", // insular and oblique-stroke letters
	'ꜳ': "aa", 'ꜵ': "ao", 'ꜷ': "au", 'ꜹ': "av", 'ꜻ': "av", 'ꜽ': "ay", 'ꝏ': "oo", 'ꝡ': "vy",
	'ꜩ': "tz", 'ỻ': "ll", 'ʣ': "dz", 'ʦ': "ts", 'ʪ': "ls", 'ʫ': "lz", 'ƾ': "ts", 'ȸ': "db",
	'ȹ': "qp", 'ᵺ': "th", 'ƍ': "zw", 'ꟹ': "oe", // ligatures and digraphs
}

// stripAccents removes the accents of s (see above).
func stripAccents(s string) string {
	d := norm.NFD.String(s)
	if !strings.ContainsFunc(d, isAccent) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(d))
	for _, r := range d {
		switch b, ok := baseLetter[r]; {
		case ok:
			sb.WriteString(b)
		case unicode.Is(diacritics, r) && unicode.Is(unicode.Mn, r):
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

func isAccent(r rune) bool {
	_, ok := baseLetter[r]
	return ok || unicode.Is(diacritics, r) && unicode.Is(unicode.Mn, r)
}
