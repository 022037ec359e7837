package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A request body must mean one thing: attribute names are
// case-insensitive (RFC 7643 §2.1) and get reads them so, so an object
// holding two keys that differ only in case, or one key twice, is refused.

// foldKey maps a key to one spelling per class of keys that
// strings.EqualFold (and so get) takes as equal: each rune becomes the
// smallest rune of its simple case-folding orbit (K, k and the Kelvin
// sign all become K).
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s)
	}
	return strings.Map(func(r rune) rune {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		return min
	}, s)
}

// maxKeyInDetail bounds how much of a key an error echoes.
const maxKeyInDetail = 64

// quoteKey quotes client text for an error detail, shortened and with
// control characters escaped.
func quoteKey(k string) string {
	if len(k) > maxKeyInDetail {
		cut := maxKeyInDetail
		for cut > 0 && !utf8.RuneStart(k[cut]) {
			cut--
		}
		k = k[:cut] + "…"
	}
	return strconv.Quote(k)
}

// checkKeys refuses a JSON body in which one object holds two keys that
// get cannot tell apart: the same key twice (encoding/json keeps the last)
// or two that differ only in case (a Go map keeps both, and get returns
// either). It reads the tokens once, keeping the folded keys of the open
// objects only, so it runs in time and memory linear in the body, which
// readBody caps. The body has already decoded, so it is well-formed and
// nested no deeper than encoding/json allows.
func checkKeys(b []byte) error {
	type frame struct {
		object bool
		keys   map[string]string // folded key -> key as sent
		key    string            // the key whose value is being read
		index  int               // the element being read, in an array
	}
	var stack []*frame
	where := func() string {
		var sb strings.Builder
		for _, f := range stack[:len(stack)-1] {
			switch {
			case f.object && sb.Len() > 0:
				sb.WriteString(".")
				sb.WriteString(f.key)
			case f.object:
				sb.WriteString(f.key)
			default:
				fmt.Fprintf(&sb, "[%d]", f.index)
			}
		}
		if sb.Len() == 0 {
			return "the body"
		}
		return quoteKey(sb.String())
	}
	// value notes that a value was read in the innermost container.
	value := func() {
		if n := len(stack); n > 0 && !stack[n-1].object {
			stack[n-1].index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	expectKey := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &Error{Status: 400, Type: "invalidSyntax", Detail: "request body is not a JSON object: " + jsonProblem(err)}
		}
		if expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				value()
				expectKey = len(stack) > 0 && stack[len(stack)-1].object
				continue
			}
			k, _ := tok.(string)
			f := stack[len(stack)-1]
			fk := foldKey(k)
			if prev, dup := f.keys[fk]; dup {
				if prev == k {
					return &Error{Status: 400, Type: "invalidSyntax", Detail: fmt.Sprintf("%s holds the key %s twice", where(), quoteKey(k))}
				}
				return &Error{Status: 400, Type: "invalidSyntax", Detail: fmt.Sprintf("%s holds the keys %s and %s, which differ only in case; attribute names are case-insensitive", where(), quoteKey(prev), quoteKey(k))}
			}
			f.keys[fk] = k
			f.key = k
			expectKey = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, keys: map[string]string{}})
			expectKey = true
			continue
		case '[':
			stack = append(stack, &frame{})
			continue
		case ']':
			stack = stack[:len(stack)-1]
		}
		value()
		expectKey = len(stack) > 0 && stack[len(stack)-1].object
	}
}
