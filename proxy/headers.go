package proxy

import (
	"net/http"
	"strings"
)

// NormalizeHeaderName folds a header name for comparison the way servers
// behind a proxy may see it: lower case, with "_" treated as "-" (CGI and
// some frameworks map both to the same variable).
func NormalizeHeaderName(name string) string {
	b := make([]byte, len(name))
	fold(b, name)
	return string(b)
}

// stripper deletes identity headers in all their spellings.
type stripper struct {
	names  map[string]bool // normalised
	prefix string          // normalised; may be empty
}

func newStripper(names []string, prefix string) stripper {
	s := stripper{names: map[string]bool{}, prefix: NormalizeHeaderName(prefix)}
	for _, n := range names {
		s.names[NormalizeHeaderName(n)] = true
	}
	return s
}

func (s stripper) strip(h http.Header) {
	var buf [96]byte // folds most names without allocating
	for name := range h {
		var n []byte
		if len(name) <= len(buf) {
			n = buf[:len(name)]
			fold(n, name)
		} else {
			n = []byte(NormalizeHeaderName(name))
		}
		if s.names[string(n)] || (s.prefix != "" && strings.HasPrefix(string(n), s.prefix)) {
			delete(h, name)
		}
	}
}

// fold writes the normal form of name into dst, which has its length.
func fold(dst []byte, name string) {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'A' && c <= 'Z':
			dst[i] = c + ('a' - 'A')
		case c == '_':
			dst[i] = '-'
		default:
			dst[i] = c
		}
	}
}

// stripCookies removes the named cookies (and any cookie whose name starts
// with one of prefixes) from the Cookie header, keeping every other
// cookie byte for byte.
func stripCookies(h http.Header, names []string, prefixes []string) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			name, _, _ := strings.Cut(p, "=")
			name = strings.TrimSpace(name)
			if ours(name, names, prefixes) {
				changed = true
				continue
			}
			kept = append(kept, p)
		}
	}
	if !changed && len(lines) == 1 {
		return
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h.Set("Cookie", strings.Join(kept, "; "))
}

func ours(name string, names, prefixes []string) bool {
	for _, n := range names {
		if name == n {
			return true
		}
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
