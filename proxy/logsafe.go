package proxy

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Every string a client controls (method, host, path, user agent, the
// text of an error that quotes them) goes through logSafe before a log
// line carries it, so that no client can forge or hide log lines:
//
//   - it is bounded: longer text is cut at max bytes (on a rune boundary)
//     and marked with truncMarker;
//   - control, format and line/paragraph-separator runes (Unicode Cc, Cf,
//     Zl, Zp: CR, LF, NEL U+0085, U+2028, U+2029, the bidi overrides
//     U+202A-202E and isolates U+2066-2069...) are written as the text
//     \uXXXX, so that tools that split lines on them, or terminals that
//     reorder text by them, show what was sent;
//   - bytes that are not UTF-8 become U+FFFD.
//
// A backslash is kept as it is: "\u2028" in a logged value may also have
// been sent as those six characters; it never is the separator itself.

// maxLoggedField bounds any other client-controlled string in a log line
// (host, method, error text): with the path and the user agent, a line
// stays under about 8 KiB whatever the request.
const maxLoggedField = 2048

// truncMarker ends a value that was cut.
const truncMarker = "...[truncated]"

// logSafe returns s as a log line may carry it (see above), at most max
// bytes long before the marker.
func logSafe(s string, max int) string {
	// Fast path: printable ASCII within the bound, the common case.
	if len(s) <= max {
		i := 0
		for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
			i++
		}
		if i == len(s) {
			return s
		}
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + len(truncMarker))
	for i := 0; i < len(s); {
		c := s[i]
		var (
			size = 1
			out  string
		)
		switch {
		case c >= 0x20 && c < 0x7f:
		case c < utf8.RuneSelf: // C0 controls and DEL
			out = escapeRune(rune(c))
		default:
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				out = string(utf8.RuneError)
			case unloggable(r):
				out = escapeRune(r)
			}
		}
		n := size
		if out != "" {
			n = len(out)
		}
		if b.Len()+n > max {
			b.WriteString(truncMarker)
			return b.String()
		}
		if out != "" {
			b.WriteString(out)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unloggable reports whether r may not appear raw in a log line.
func unloggable(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// escapeRune writes r as Go and JSON would: \u00XX or \U00XXXXXX.
func escapeRune(r rune) string {
	if r > 0xffff {
		h := strconv.FormatInt(int64(r), 16)
		return `\U` + strings.Repeat("0", 8-len(h)) + h
	}
	h := strconv.FormatInt(int64(r), 16)
	return `\u` + strings.Repeat("0", 4-len(h)) + h
}

// logString is a zap field holding a client-controlled string, made safe
// and bounded at maxLoggedField.
func logString(key, s string) zap.Field {
	return zap.String(key, logSafe(s, maxLoggedField))
}

// logErr is zap.Error for an error whose text may quote what a client
// sent (a method, an IdP name from a query, a path): made safe and
// bounded at maxLoggedField.
func logErr(err error) zap.Field {
	if err == nil {
		return zap.Skip()
	}
	return zap.String("error", logSafe(err.Error(), maxLoggedField))
}

// LogSafe is logSafe for the process's logger: cmd runs every string
// field of every line through it, whichever package wrote the line (a SCIM
// resource ID, a NameID in a logout event), as a second line of defence
// behind the bounds above.
func LogSafe(s string, max int) string { return logSafe(s, max) }
