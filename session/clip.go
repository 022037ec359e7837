package session

import (
	"strconv"
	"unicode/utf8"
)

// maxQuoted is how many bytes of a value from a request (a query
// parameter, a header, a field of an unverified SAML message) an error
// text quotes: error texts are logged, and a client must not choose the
// size of a log line.
const maxQuoted = 64

// quoted quotes s for an error text, as %q does, but at most maxQuoted
// bytes of it (cut at a rune boundary), followed by its full length when
// it was cut.
func quoted(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}
