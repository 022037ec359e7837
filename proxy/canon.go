package proxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// This file is the one reading of request paths and methods that the
// authorization rules, the public paths and the reserved prefix share.
//
// A path is read once into its canonical form: percent-encoding of
// unreserved characters decoded, every other escape kept (in upper-case
// hex), dot segments and repeated slashes resolved. That form is both
// what the rules judge and what the upstream receives. Spellings that
// servers behind a proxy are known to read differently (double encoding,
// encoded slashes, backslashes, control characters, Windows' trailing
// dots and spaces, look-alike Unicode...) have no canonical form: they
// are refused when the path decides anything.

// canonical is a request path as gatehouse judges and forwards it.
type canonical struct {
	path    string // decoded: what rules see, forwarded as URL.Path
	escaped string // the same path escaped, forwarded as URL.RawPath
}

// errAmbiguous marks a path spelling that servers may read differently.
var errAmbiguous = errors.New("ambiguous path")

func ambiguous(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errAmbiguous}, a...)...)
}

// canonicalPath reads an escaped request path (URL.EscapedPath) into its
// canonical form, or explains why it has none.
func canonicalPath(escaped string) (canonical, error) {
	if escaped == "" {
		escaped = "/"
	}
	if escaped[0] != '/' {
		return canonical{}, ambiguous("not an absolute path")
	}
	var segs []segment
	rest := escaped[1:]
	for {
		raw, after, more := strings.Cut(rest, "/")
		s, err := readSegment(raw)
		if err != nil {
			return canonical{}, err
		}
		switch s.dec {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, s)
		}
		if !more {
			// A path ending in "/", "/." or "/.." names a directory.
			if len(segs) > 0 && (s.dec == "" || s.dec == "." || s.dec == "..") {
				segs = append(segs, segment{})
			}
			break
		}
		rest = after
	}
	var dec, esc strings.Builder
	dec.Grow(len(escaped))
	esc.Grow(len(escaped))
	for _, s := range segs {
		dec.WriteByte('/')
		dec.WriteString(s.dec)
		esc.WriteByte('/')
		esc.WriteString(s.esc)
	}
	if len(segs) == 0 {
		return canonical{path: "/", escaped: "/"}, nil
	}
	return canonical{path: dec.String(), escaped: esc.String()}, nil
}

// segment is one path segment, decoded and canonically escaped.
type segment struct{ dec, esc string }

// readSegment decodes one segment and refuses the spellings that servers
// read differently.
func readSegment(raw string) (segment, error) {
	if fastSegment(raw) {
		return segment{raw, raw}, nil // the common segment
	}
	var dec, esc strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		encoded := false
		if c == '%' {
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return segment{}, ambiguous("malformed percent-encoding")
			}
			c, encoded = unhex(raw[i+1])<<4|unhex(raw[i+2]), true
			i += 2
		}
		switch {
		case c == '/' || c == '\\':
			return segment{}, ambiguous("slash or backslash inside a segment")
		case c < 0x20 || c == 0x7f:
			return segment{}, ambiguous("control character")
		case encoded && (c == '?' || c == '#'):
			// A layer that decodes the path and parses it again (nginx's
			// $uri in proxy_pass, a rewrite back-reference) ends it here.
			return segment{}, ambiguous("encoded query or fragment delimiter")
		case c == '%' && doubleEncoded(raw[i+1:]):
			return segment{}, ambiguous("double percent-encoding")
		}
		dec.WriteByte(c)
		if isUnreserved(c) || !encoded && isPathChar(c) {
			esc.WriteByte(c)
		} else {
			fmt.Fprintf(&esc, "%%%02X", c)
		}
	}
	s := segment{dec.String(), esc.String()}
	if err := checkSegment(s.dec); err != nil {
		return segment{}, err
	}
	return s, nil
}

// fastSegment reports whether a raw segment is plain: printable ASCII
// path characters, no escapes or parameters, no trailing dot.
func fastSegment(raw string) bool {
	if raw == "" || raw == "." || raw == ".." {
		return true
	}
	if raw[len(raw)-1] == '.' || strings.ContainsAny(raw, ";:~") {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if !isPathChar(raw[i]) {
			return false
		}
	}
	return true
}

// doubleEncoded reports whether what follows a decoded "%" (still
// escaped) decodes to two hex digits or a "u" (IIS's %uXXXX): a server
// that decodes twice would read another character.
func doubleEncoded(rest string) bool {
	var next []byte
	for i := 0; i < len(rest) && len(next) < 2; i++ {
		c := rest[i]
		if c == '%' && i+2 < len(rest) && isHex(rest[i+1]) && isHex(rest[i+2]) {
			c = unhex(rest[i+1])<<4 | unhex(rest[i+2])
			i += 2
		}
		next = append(next, c)
	}
	if len(next) > 0 && (next[0] == 'u' || next[0] == 'U') {
		return true
	}
	return len(next) == 2 && isHex(next[0]) && isHex(next[1])
}

// checkSegment refuses a decoded segment that some server reads as
// another one.
func checkSegment(s string) error {
	if s == "" || s == "." || s == ".." {
		return nil
	}
	// Tomcat and Jetty drop ";" parameters ("admin.;x" is "admin."), and
	// NTFS reads "name:stream" as a stream of "name": each of those cores
	// is a segment some server reads, and must pass on its own.
	params, _, _ := strings.Cut(s, ";")
	stream, _, hasStream := strings.Cut(params, ":")
	for _, core := range [...]string{s, params, stream} {
		if core == "." || core == ".." {
			return ambiguous("dot segment with parameters or a stream name")
		}
		if core == "" {
			continue
		}
		if last := core[len(core)-1]; last == '.' || last == ' ' {
			// Windows (IIS) drops trailing dots and spaces: "admin." is "admin".
			return ambiguous("segment ends with a dot or a space (before its parameters or stream name)")
		}
	}
	if hasStream && strings.HasSuffix(params, ":") {
		// NTFS reads an empty stream name as the file: "admin:" is "admin".
		return ambiguous("empty NTFS stream name")
	}
	if i := strings.Index(s, ":$"); i >= 0 {
		// NTFS alternate data streams: "admin::$DATA" is "admin".
		return ambiguous("NTFS stream name")
	}
	if i := strings.IndexByte(s, '~'); i > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
		// 8.3 short names: "ADMINI~1" may be "administration".
		return ambiguous("Windows short name")
	}
	if asciiPrintable(s) {
		return nil
	}
	if !utf8.ValidString(s) {
		return ambiguous("invalid or overlong UTF-8")
	}
	for _, r := range s {
		if r >= utf8.RuneSelf && confusableRune(r) {
			return ambiguous("character %U reads as another", r)
		}
	}
	if !norm.NFC.IsNormalString(s) {
		return ambiguous("Unicode not in NFC")
	}
	// Compatibility normalisation and full case folding only ever turn
	// ASCII into ASCII: more ASCII after either means some other
	// character became ASCII ("ﬁ" is "fi", "ß" folds to "ss"). Counting
	// on the whole segment keeps the cost linear.
	n := countASCII(s)
	if !norm.NFKC.IsNormalString(s) && countASCII(norm.NFKC.String(s)) > n || countASCII(cases.Fold().String(s)) > n {
		return ambiguous("a character reads as ASCII under NFKC or case folding")
	}
	return nil
}

func countASCII(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			n++
		}
	}
	return n
}

// confusable reports whether a non-ASCII rune is invisible or white
// space, or becomes ASCII under compatibility normalisation or case
// mapping (dotless i, long s, Kelvin sign, full-width letters...): a
// server that folds or normalises would read an ASCII path.
func confusable(r rune) bool {
	if confusableRune(r) {
		return true
	}
	s := string(r)
	return hasASCII(norm.NFKC.String(s)) || hasASCII(cases.Fold().String(s))
}

// confusableRune is the part of confusable that needs no allocation:
// invisible characters, white space, and simple case mappings to ASCII.
func confusableRune(r rune) bool {
	if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point,
		unicode.Variation_Selector, unicode.Noncharacter_Code_Point, unicode.Co, unicode.Cs) || r == utf8.RuneError {
		return true
	}
	if unicode.ToLower(r) < utf8.RuneSelf || unicode.ToUpper(r) < utf8.RuneSelf || unicode.ToTitle(r) < utf8.RuneSelf {
		return true
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return true
		}
	}
	return false
}

func hasASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			return true
		}
	}
	return false
}

func asciiPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isUnreserved: RFC 3986 unreserved characters, whose escapes are
// decoded in the canonical form.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar: RFC 3986 pchar without "%": unreserved, sub-delims, ":"
// and "@". Sent as they came; their escapes are kept escaped.
func isPathChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// underPrefix reports whether any reading a server behind gatehouse may
// make of an escaped path falls under prefix (a validated prefix such as
// "/.gatehouse/"). The readings: the path as sent and decoded once, twice
// and so on until nothing changes; NFKC-normalised and case folded, "\"
// as "/"; with or without each of the sloppy steps of readMode; dot and
// empty segments resolved. Under it means the prefix's segments start the
// reading or follow a script segment ("/index.php/.gatehouse/x"), each
// also spelled with a format suffix (".gatehouse.json") or as an 8.3
// short name ("GATEHO~1").
func underPrefix(escaped, prefix string) bool {
	want := strings.Split(strings.Trim(foldPath(prefix), "/"), "/")
	if want[0] == "" {
		return false
	}
	for _, d := range decodings(escaped) {
		if !mayHold(d, want[0]) {
			continue
		}
		modes := relevantModes(d)
		for m := readMode(0); m <= readAll; m++ {
			if m&^modes == 0 && startsUnder(looseSegments(d, m), want) {
				return true
			}
		}
	}
	return false
}

// readMode is a set of the sloppy steps some server takes when it reads
// a path.
type readMode uint8

const (
	// readCutParams drops ";" parameters from each segment (Tomcat, Jetty).
	readCutParams readMode = 1 << iota
	// readCutStream drops an NTFS stream name (":stream", "::$DATA").
	readCutStream
	// readLenient drops control characters (URL parsers drop tabs and
	// newlines) and a segment's trailing dots and white space (Windows).
	readLenient
	// readTruncate ends the path at a NUL (C strings), "?" or "#" (a
	// server that decodes before it splits off the query).
	readTruncate
	readAll = readCutParams | readCutStream | readLenient | readTruncate
)

// decodings lists the distinct decodings of an escaped path: as sent, then
// decoded again and again (at most four times), each folded (foldPath)
// with "\" read as "/".
func decodings(escaped string) []string {
	var out []string
	p := escaped
	for i := 0; i <= 4; i++ {
		if i > 0 {
			d := looseUnescape(p)
			if d == p {
				break
			}
			p = d
		}
		if f := strings.ReplaceAll(foldPath(p), `\`, "/"); !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// mayHold reports whether some reading of a decoded path could hold the
// folded segment name: readings only drop characters, except that a
// short name stands for a longer one.
func mayHold(d, name string) bool {
	return strings.Contains(d, name) || strings.Contains(strings.Map(dropControl, d), name) || strings.Contains(d, "~")
}

// relevantModes are the steps that can change a decoded path.
func relevantModes(d string) readMode {
	m := readLenient
	if strings.Contains(d, ";") {
		m |= readCutParams
	}
	if strings.Contains(d, ":") {
		m |= readCutStream
	}
	if strings.ContainsAny(d, "\x00?#") {
		m |= readTruncate
	}
	return m
}

// looseSegments reads a decoded, folded path under mode into its
// segments, dot and empty segments resolved.
func looseSegments(d string, mode readMode) []string {
	if mode&readTruncate != 0 {
		if i := strings.IndexAny(d, "\x00?#"); i >= 0 {
			d = d[:i]
		}
	}
	if mode&readLenient != 0 {
		d = strings.Map(dropControl, d)
	}
	var out []string
	for _, s := range strings.Split(d, "/") {
		if mode&readCutParams != 0 {
			s, _, _ = strings.Cut(s, ";")
		}
		if mode&readCutStream != 0 {
			s, _, _ = strings.Cut(s, ":")
		}
		if mode&readLenient != 0 {
			s = trimWindows(s)
		}
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	return out
}

// trimWindows drops a segment's trailing dots and white space as Windows
// does; a segment of nothing else is read as ".." when it holds two dots
// or more ("..." or ".. "), else as ".".
func trimWindows(s string) string {
	if s == "." || s == ".." {
		return s
	}
	t := strings.TrimRightFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if t == "" && strings.Count(s, ".") >= 2 {
		return ".."
	}
	return t
}

func dropControl(r rune) rune {
	if r < 0x20 && r != 0 || r == 0x7f {
		return -1
	}
	return r
}

// startsUnder reports whether the segments of a reading begin with the
// prefix's, or hold them right after a script segment (path info).
func startsUnder(segs, want []string) bool {
	for start := 0; start+len(want) <= len(segs); start++ {
		if start > 0 && !isScript(segs[start-1]) {
			continue
		}
		matched := true
		for i, w := range want {
			if !segmentReadsAs(segs[start+i], w) {
				matched = false
				break
			}
		}
		if matched {
			return true
		}
	}
	return false
}

// segmentReadsAs reports whether a folded segment may be read as the
// folded name: itself, with a format suffix (Rails and Spring route
// ".gatehouse.json" to ".gatehouse"), or as a Windows 8.3 short name
// whose stem starts the name ("GATEHO~1", "GATEHO~2.JSO").
func segmentReadsAs(seg, name string) bool {
	if seg == name || strings.HasPrefix(seg, name+".") {
		return true
	}
	i := strings.IndexByte(seg, '~')
	if i < 1 || i+1 >= len(seg) || seg[i+1] < '0' || seg[i+1] > '9' {
		return false
	}
	// Short names leave out dots and spaces; their stem is a prefix of
	// what remains.
	squeeze := strings.NewReplacer(".", "", " ", "")
	stem := squeeze.Replace(seg[:i])
	return stem != "" && strings.HasPrefix(squeeze.Replace(name), stem)
}

// looseUnescape decodes every valid escape and keeps invalid ones.
func looseUnescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// foldPath is the case folding of the loose reading: NFKC, then full
// case folding.
func foldPath(p string) string {
	if asciiPrintable(p) {
		return strings.ToLower(p)
	}
	return cases.Fold().String(norm.NFKC.String(strings.ToValidUTF8(p, "\uFFFD")))
}

// canonicalMethod reports whether a method is an upper-case token, the
// only spelling gatehouse forwards: upstreams that upper-case methods
// themselves would otherwise read "get" as the GET a rule was written for.
func canonicalMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !('A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// methodOverrideParam is the query (or form) parameter that Rails, Laravel,
// Symfony and Express's method-override read as the method of a POST.
const methodOverrideParam = "_method"
