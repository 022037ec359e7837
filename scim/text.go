package scim

import "unicode/utf8"

// encoding/json turns bytes that are not UTF-8, and \u escapes of lone
// UTF-16 surrogates, into U+FFFD without a word. Stored so, two different
// bad inputs become one value (a 409 on the second), and the client never
// learns its data was changed. checkText refuses such a body instead.

// checkText reports whether b is UTF-8 text none of whose escapes names a
// lone surrogate: a \uD800-\uDBFF escape must be followed at once by a
// \uDC00-\uDFFF escape, and a \uDC00-\uDFFF escape must follow one. A
// backslash occurs only inside a JSON string, so reading b byte by byte,
// skipping each escaped character, finds every escape; the body has
// already decoded, so each is well-formed.
func checkText(b []byte) error {
	if !utf8.Valid(b) {
		return &Error{Status: 400, Type: "invalidSyntax", Detail: "request body is not valid UTF-8"}
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b, i+1)
		if !ok {
			continue
		}
		i += 4
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex4(b, i+3)
			if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' || !ok || lo < 0xDC00 || lo > 0xDFFF {
				return loneSurrogate()
			}
			i += 6
		case r >= 0xDC00 && r <= 0xDFFF:
			return loneSurrogate()
		}
	}
	return nil
}

func loneSurrogate() error {
	return &Error{Status: 400, Type: "invalidSyntax", Detail: "request body holds a \\u escape of a lone UTF-16 surrogate, which is no character"}
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
