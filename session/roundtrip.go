package session

import (
	"encoding/xml"
	"unicode"
	"unicode/utf8"
)

// The round-trip rule: XML that encoding/xml does not read back the way
// it wrote it (the namespace and name confusions behind several SAML
// signature bypasses) is refused, with xml-roundtrip-validator's token
// check as the judge. That check builds an encoder and a decoder for
// every token, about ten microseconds each, which made a document of
// many small elements cost far more than its size. So a token made only
// of plain names (letters, digits, '.', '-', '_', at most one colon
// between prefix and local part) and valid XML characters, which is
// every token of a real SAML message and always survives the trip
// (TestPlainTokensRoundTrip holds this against the validator), is let
// through on sight; every other token goes to the validator, and a
// document may hold at most a budget of those. buildTree applies the
// rule as it reads.

// plainToken reports whether a raw token is an element tag or text made
// only of plain names and valid characters.
func plainToken(tok xml.Token) bool {
	switch t := tok.(type) {
	case xml.StartElement:
		if !plainName(t.Name) {
			return false
		}
		if reservedPrefix(t.Name.Space) || reservedPrefix(t.Name.Local) && t.Name.Space == "" {
			return false
		}
		for _, a := range t.Attr {
			if !plainName(a.Name) || !validText(a.Value) || !plainAttrName(a.Name) || a.Name.Space == "xmlns" && a.Value == "" {
				return false
			}
		}
		return true
	case xml.EndElement:
		return plainName(t.Name)
	case xml.CharData:
		return validText(string(t))
	}
	return false
}

// reservedPrefix: the names XML keeps for itself, whose declarations
// and uses encoding/xml rewrites on the way out.
func reservedPrefix(s string) bool { return s == "xml" || s == "xmlns" }

// plainAttrName: an attribute that does not declare a reserved prefix
// ("xmlns:xml", "xmlns:xmlns"); "xml:lang", a plain default or prefix
// declaration ("xmlns", "xmlns:p") is fine, unless it
// undeclares a prefix (xmlns:p="", which XML 1.0 does not allow).
func plainAttrName(n xml.Name) bool {
	switch n.Space {
	case "":
		return true
	case "xmlns":
		return !reservedPrefix(n.Local)
	case "xml":
		return true // xml:lang, xml:space: metadata is full of them
	}
	return true
}

// plainName: a local part, and an optional prefix, each a name of
// letters, digits, '.', '-' and '_' that starts with a letter or '_'.
func plainName(n xml.Name) bool {
	return plainNCName(n.Local) && (n.Space == "" || plainNCName(n.Space))
}

func plainNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'):
		case i > 0 && (r == '.' || r == '-' || '0' <= r && r <= '9'):
		case r >= utf8.RuneSelf && unicode.IsLetter(r):
		case i > 0 && r >= utf8.RuneSelf && unicode.IsDigit(r):
		default:
			return false
		}
	}
	return true
}

// validText: valid UTF-8 made of characters XML allows.
func validText(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !(r <= 0xD7FF || 0xE000 <= r && r <= 0xFFFD || r >= 0x10000) {
			return false
		}
		i += size
	}
	return true
}
