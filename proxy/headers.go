package proxy

import (
	"net/http"
	"strings"
)

// NormalizeHeaderName folds a header name for comparison the way servers
// behind a proxy may see it: lower case, with "_" treated as "-" (CGI and
// some frameworks map both to the same variable).
func NormalizeHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case c == '_':
			b[i] = '-'
		}
	}
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
	for name := range h {
		n := NormalizeHeaderName(name)
		if s.names[n] || (s.prefix != "" && strings.HasPrefix(n, s.prefix)) {
			delete(h, name)
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
