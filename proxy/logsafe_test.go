package proxy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestLogSafe (security): control, format and separator runes are
// written as \uXXXX text, bytes that are not UTF-8 as U+FFFD, and the
// result is bounded, cut on a rune boundary and marked; printable text
// is returned as it is.
func TestLogSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"},
		{"héllo wörld", "héllo wörld"},
		{"a\r\nb\tc\x00\x7f", `a\u000d\u000ab\u0009c\u0000\u007f`},
		{"ok\u0085NEL\u2028LS\u2029PS", `ok\u0085NEL\u2028LS\u2029PS`},
		{"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", `\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069`},
		{"zero\u200bwidth\ufeff\u00ad", `zero\u200bwidth\ufeff\u00ad`},
		{"tag\U000e0041", `tag\U000e0041`},
		{"bad\xff\xc3", "bad\ufffd\ufffd"},
	} {
		if got := logSafe(tc.in, 2048); got != tc.want {
			t.Errorf("logSafe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{strings.Repeat("a", 60_000), strings.Repeat("é", 30_000), strings.Repeat("\u2028", 20_000), strings.Repeat("\xff", 60_000)} {
		got := logSafe(in, 2048)
		if len(got) > 2048+len(truncMarker) || !strings.HasSuffix(got, truncMarker) || !utf8.ValidString(got) {
			t.Errorf("logSafe(%.10q...) = %d bytes %.40q...", in, len(got), got)
		}
	}
	if got := logSafe(strings.Repeat("a", 2048), 2048); got != strings.Repeat("a", 2048) {
		t.Error("a value at the bound is cut")
	}
}

// BenchmarkLogSafe is the cost of the fast path on a typical user agent.
func BenchmarkLogSafe(b *testing.B) {
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	for b.Loop() {
		logSafe(ua, maxLoggedAgent)
	}
}
