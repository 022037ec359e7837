package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/text/cases"

	"gatehouse/provision"
	"gatehouse/session"
)

// A request is judged under every reading that a server behind gatehouse
// may make of it, so that no spelling picks the rule it likes best.
//
// Primary readings must all be granted for a request to be public, and
// each one's rule must pass: the method as sent (and GET for HEAD; for a
// POST, each method a rule names, which an override could turn it into;
// the method in a "_method" query parameter), and the canonical path as
// sent, with ";" parameters dropped (Tomcat, Jetty), and for a script
// segment both the script that runs and the path info after it (PHP, CGI,
// ASP.NET: "/admin.php/x" runs "/admin.php", "/index.php/admin" routes
// "/admin"), each compared case-sensitively and case-insensitively (IIS,
// Express).
//
// Secondary readings only ever restrict: the path with its trailing slash
// added or removed (Express, Spring, Rails read "/api" and "/api/" alike)
// and without a format suffix on its last segment (Rails and Spring route
// "/admin.json" to "/admin"), of every primary reading: "/admin.php/x"
// falls under a rule for "/admin" through the script "/admin.php". A
// deny, require or authenticated rule that a secondary reading reaches
// applies, unless it also matches a primary reading: that is a wider rule
// (a catch-all "/") which the primary reading weighed already, in order. So "/robots.txt" stays public under
// a public rule for it, while "/admin.json" falls under a rule for
// "/admin".

// view is one reading of a path.
type view struct {
	path, folded string
	fold         bool // compare case-insensitively
}

// judgement is the outcome of the rules over every reading of a request.
type judgement struct {
	// deny is the first deny rule some reading reached.
	deny *rule
	// public: every primary reading is granted without a session.
	public bool
	// rules are the authenticated and require rules whose conditions a
	// session must meet, each once, in order of first reach.
	rules []*rule
}

func (j *judgement) reach(rl *rule) {
	switch {
	case rl == nil || rl.effect == AllowPublic:
	case rl.effect == AllowDeny:
		if j.deny == nil {
			j.deny = rl
		}
	case !slices.Contains(j.rules, rl):
		j.rules = append(j.rules, rl)
	}
}

// refusal returns the first rule whose conditions the session's user and
// IdP do not meet; nil when all do.
func (j *judgement) refusal(u *provision.User, idp string) *rule {
	for _, rl := range j.rules {
		if !rl.admits(u, idp) {
			return rl
		}
	}
	return nil
}

// authnContext returns the authentication context classes that satisfy
// every reached rule that names some (nil when none does), and whether
// any class can; rl is the first rule naming classes.
func (j *judgement) authnContext() (accepted []string, rl *rule) {
	for _, r := range j.rules {
		if len(r.authn) == 0 {
			continue
		}
		if rl == nil {
			rl, accepted = r, slices.Clone(r.authn)
			continue
		}
		accepted = slices.DeleteFunc(accepted, func(c string) bool { return !slices.Contains(r.authn, c) })
	}
	return accepted, rl
}

// pathSensitive reports whether the path decides anything beyond the
// reserved prefix: then ambiguous spellings are refused and the canonical
// path is what the upstream receives.
func (p *Proxy) pathSensitive() bool { return len(p.rules) > 0 || len(p.public) > 0 }

// authorize reads the request's method and path the one canonical way,
// refuses (400) what has no canonical reading, and judges the rest. The
// request it returns carries the canonical path, to be forwarded as is.
func (p *Proxy) authorize(w http.ResponseWriter, r *http.Request) (*http.Request, judgement, bool) {
	if !canonicalMethod(r.Method) {
		p.pages.badRequest(w, r, "method", fmt.Errorf("method %q is not an upper-case token", r.Method))
		return r, judgement{}, false
	}
	if !p.pathSensitive() {
		return r, judgement{}, true
	}
	c, err := canonicalPath(r.URL.EscapedPath())
	if err != nil {
		p.pages.badRequest(w, r, "ambiguous_path", err)
		return r, judgement{}, false
	}
	if n := scriptSegments(c.path); n > maxScriptSegments {
		p.pages.badRequest(w, r, "ambiguous_path", fmt.Errorf("%d script segments, each a reading of its own", n))
		return r, judgement{}, false
	}
	methods, err := p.methodReadings(r)
	if err != nil {
		p.pages.badRequest(w, r, "method", err)
		return r, judgement{}, false
	}
	if c.escaped != r.URL.EscapedPath() {
		if i := requestInfoFrom(r.Context()); i != nil {
			i.canonical = c.escaped // for the access log's canonical_path
		}
	}
	return withPath(r, c), p.judge(methods, c.path), true
}

// withPath returns a shallow copy of r whose URL carries the canonical
// path.
func withPath(r *http.Request, c canonical) *http.Request {
	if r.URL.Path == c.path && r.URL.EscapedPath() == c.escaped {
		return r
	}
	u := *r.URL
	u.Path, u.RawPath = c.path, c.escaped
	if url.PathEscape(c.path) == c.escaped || (&url.URL{Path: c.path}).EscapedPath() == c.escaped {
		u.RawPath = ""
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
}

// judge applies the rules to every reading of the request.
func (p *Proxy) judge(methods []string, path string) judgement {
	primary := pathReadings(path)
	var secondary []string
	for _, q := range primary {
		for _, s := range looseReadings(q) {
			if !slices.Contains(primary, s) && !slices.Contains(secondary, s) {
				secondary = append(secondary, s)
			}
		}
	}
	j := judgement{public: true}
	for _, m := range methods {
		for _, q := range primary {
			for _, v := range views(q) {
				granted, rl := p.first(m, v)
				j.public = j.public && granted
				j.reach(rl)
			}
		}
		for _, q := range secondary {
			for _, v := range views(q) {
				// Only a rule about this spelling in particular applies: one
				// that also matches a primary reading (a catch-all) has been
				// weighed there already.
				if granted, rl := p.first(m, v); !granted && rl != nil && !rl.matchesAny(m, primary, v.fold) {
					j.public = false
					j.reach(rl)
				}
			}
		}
	}
	return j
}

// matchesAny reports whether the rule matches one of the paths.
func (r *rule) matchesAny(method string, paths []string, fold bool) bool {
	for _, q := range paths {
		if r.matches(method, view{path: q, folded: foldCase(q), fold: fold}) {
			return true
		}
	}
	return false
}

func views(q string) [2]view {
	f := foldCase(q)
	return [2]view{{path: q, folded: f}, {path: q, folded: f, fold: true}}
}

// first returns the decision for one reading: granted without a session
// (a public path or a public rule), and the rule that matched, if any.
func (p *Proxy) first(method string, v view) (granted bool, rl *rule) {
	for _, pub := range p.public {
		if !v.fold && underPath(v.path, pub) || v.fold && underPath(v.folded, foldCase(pub)) {
			return true, nil
		}
	}
	for i := range p.rules {
		if p.rules[i].matches(method, v) {
			return p.rules[i].effect == AllowPublic, &p.rules[i]
		}
	}
	return false, nil
}

// methodReadings lists the methods a request is judged as.
func (p *Proxy) methodReadings(r *http.Request) ([]string, error) {
	ms := []string{r.Method}
	if r.Method == http.MethodHead {
		ms = append(ms, http.MethodGet)
	}
	if !p.methodRules() {
		return ms, nil
	}
	if r.Method == http.MethodPost {
		// A form field _method (Rails, Laravel, Symfony) or an override
		// header can make a POST any method; the body is not read, so a
		// POST must pass as each method a rule names.
		for i := range p.rules {
			ms = append(ms, p.rules[i].methods...)
		}
	}
	over, err := queryMethods(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	ms = append(ms, over...)
	slices.Sort(ms)
	return slices.Compact(ms), nil
}

// methodRules reports whether some rule names methods.
func (p *Proxy) methodRules() bool {
	for i := range p.rules {
		if len(p.rules[i].methods) > 0 {
			return true
		}
	}
	return false
}

// queryMethods returns the methods named by "_method" query parameters,
// upper-cased as frameworks do. A key names the method when one decoding
// reads as "_method" the way frameworks read keys: ASCII case aside, and
// with PHP's spellings ("." " " "[" as "_", leading spaces dropped);
// pairs are split on ";" as well as "&" (older Rack and Python). A key
// that reads as "_method" only when decoded again, Unicode-folded or cut
// at a NUL is refused: gatehouse does not guess which reading the
// application makes.
func queryMethods(rawQuery string) ([]string, error) {
	if !mayNameMethod(rawQuery) {
		return nil, nil
	}
	var ms []string
	for _, pair := range strings.FieldsFunc(rawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		switch {
		case isMethodParam(queryUnescape(rawKey)):
			v := queryUnescape(rawVal)
			m := strings.ToUpper(strings.TrimSpace(v))
			if !canonicalMethod(m) {
				return nil, fmt.Errorf("%s parameter %q is not a method", methodOverrideParam, v)
			}
			ms = append(ms, m)
		case isMethodParam(looseQueryKey(rawKey)):
			return nil, fmt.Errorf("query key %q reads as %s only when decoded again, folded or cut at a NUL", rawKey, methodOverrideParam)
		}
	}
	return ms, nil
}

// mayNameMethod reports whether some reading of a query could hold a
// "_method" key: only escapes and non-ASCII characters can spell one
// without the letters.
func mayNameMethod(rawQuery string) bool {
	return containsFold(rawQuery, "method") || strings.Contains(rawQuery, "%") || !asciiOnly(rawQuery)
}

// isMethodParam reports whether a decoded query key reads as "_method".
func isMethodParam(key string) bool {
	key = strings.TrimLeft(key, " ") // PHP drops leading spaces
	if len(key) != len(methodOverrideParam) {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '.' || c == ' ' || c == '[':
			c = '_' // PHP
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != methodOverrideParam[i] {
			return false
		}
	}
	return true
}

// queryUnescape decodes a query component once, "+" as a space; an
// invalid escape is kept as written.
func queryUnescape(s string) string {
	return looseUnescape(strings.ReplaceAll(s, "+", " "))
}

// looseQueryKey is the loosest reading of a query key: decoded until
// nothing changes, cut at a NUL (C strings), Unicode-folded, without
// control characters or surrounding white space.
func looseQueryKey(rawKey string) string {
	k := queryUnescape(rawKey)
	for range 4 {
		d := looseUnescape(k)
		if d == k {
			break
		}
		k = d
	}
	k, _, _ = strings.Cut(k, "\x00")
	k = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, foldPath(k))
	return strings.TrimSpace(k)
}

// pathReadings lists the primary readings of a canonical path: itself,
// without ";" segment parameters, and for each script segment the
// script that runs (up to and including the segment) and the path info
// after it ("/index.php/admin" runs "/index.php" with "/admin"), path
// info being read again for the scripts it holds.
func pathReadings(p string) []string {
	out := []string{p}
	if strings.Contains(p, ";") {
		out = append(out, dropParams(p))
	}
	for k := 0; k < len(out); k++ {
		q := out[k]
		for i := 1; i < len(q); i++ {
			j := strings.IndexByte(q[i:], '/')
			if j < 0 {
				break
			}
			if isScript(q[i : i+j]) {
				for _, r := range [2]string{q[:i+j], q[i+j:]} {
					if !slices.Contains(out, r) {
						out = append(out, r)
					}
				}
			}
			i += j
		}
	}
	return out
}

// looseReadings lists the secondary readings of a path: trailing slash
// toggled, and format suffix dropped (with the slash either way), also
// when the suffix is a segment of its own ("/admin/.json").
func looseReadings(p string) []string {
	if p == "/" {
		return nil
	}
	base := strings.TrimSuffix(p, "/")
	out := []string{base, base + "/"}
	last := base[strings.LastIndexByte(base, '/')+1:]
	switch i := strings.IndexByte(last, '.'); {
	case i > 0: // "/admin.json"
		bare := base[:len(base)-len(last)+i]
		out = append(out, bare, bare+"/")
	case i == 0 && len(last) > 1 && len(base) > len(last)+1: // "/admin/.json"
		bare := base[:len(base)-len(last)-1]
		out = append(out, bare, bare+"/")
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == p })
}

// dropParams removes ";" parameters from every segment, as Tomcat does,
// and the empty segments that leaves.
func dropParams(p string) string {
	segs := strings.Split(p, "/")
	out := segs[:0]
	for i, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		if s != "" || i == len(segs)-1 {
			out = append(out, s)
		}
	}
	return "/" + strings.TrimPrefix(strings.Join(out, "/"), "/")
}

// scriptSuffixes are the extensions of files that servers run with the
// rest of the path as path info.
var scriptSuffixes = []string{".php", ".php3", ".php4", ".php5", ".php7", ".php8", ".phtml", ".phar", ".cgi", ".fcgi",
	".pl", ".plx", ".pm", ".py", ".wsgi", ".psgi", ".scgi", ".lua", ".rb", ".rhtml", ".hh", ".esp", ".asp", ".aspx",
	".ashx", ".asmx", ".axd", ".svc", ".cshtml", ".vbhtml", ".jsp", ".jspx", ".dll", ".exe", ".cfm", ".cfml", ".cfc",
	".nsf", ".shtml", ".shtm", ".stm", ".tcl", ".sh", ".fpl", ".fastcgi", ".erb", ".jsf", ".xhtml"}

// maxScriptSegments bounds the readings of a path (and so the work of
// judging it): no real path runs a script under a script more than this.
const maxScriptSegments = 3

// scriptSegments counts the segments of a path, last excepted, that name
// a script (their own ";" parameters dropped).
func scriptSegments(p string) int {
	n := 0
	segs := strings.Split(p, "/")
	for _, s := range segs[:len(segs)-1] {
		s, _, _ = strings.Cut(s, ";")
		if isScript(s) {
			n++
		}
	}
	return n
}

func isScript(seg string) bool {
	seg = strings.ToLower(seg)
	for _, s := range scriptSuffixes {
		if len(seg) > len(s) && strings.HasSuffix(seg, s) {
			return true
		}
	}
	return false
}

// foldCase is the case folding rules and paths are compared under.
func foldCase(s string) string {
	if asciiPrintable(s) {
		return strings.ToLower(s)
	}
	return cases.Fold().String(s) // a Caser is not safe for concurrent use
}

// badRequest refuses a request gatehouse will not read one way only.
func (p *Pages) badRequest(w http.ResponseWriter, r *http.Request, reason string, err error) {
	id := errorID(r)
	if p.OnProblem != nil {
		p.OnProblem(reason, http.StatusBadRequest, false)
	}
	p.log.Warn("request refused", zap.String("error_id", id), zap.Int("status", http.StatusBadRequest),
		zap.String("reason", reason), logString("method", r.Method), logString("path", r.URL.EscapedPath()), logErr(err))
	p.render(w, r, pageData{Status: http.StatusBadRequest, Title: "Bad request",
		Message: "This address is spelled in a way the application could read differently. Use its plain form.", ErrorID: id})
}

// admit checks a session against the rules a request reached: the IdP
// and the user's groups and fields (403), then the authentication context
// (a step-up for a browser, 403 otherwise). It answers and returns false
// when the request may not pass.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, j judgement, s session.Session, id *identity) bool {
	if rl := j.refusal(&id.user, s.IdP); rl != nil {
		p.pages.refused(w, r, session.Failure{Page: session.AccessDenied, Reason: "forbidden",
			Err: fmt.Errorf("authorization[%d] refuses user %s (IdP %s) for %s %s", rl.index, id.userID, s.IdP, r.Method, r.URL.Path)}, id.user.UserName)
		return false
	}
	accepted, rl := j.authnContext()
	if rl == nil || s.MadeWith(accepted) {
		return true
	}
	if len(accepted) > 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r) {
		p.sessions.StartLoginWith(w, r, s.IdP, r.URL.RequestURI(), session.LoginOptions{AuthnContext: accepted, ForceAuthn: true})
		return false
	}
	p.pages.refused(w, r, session.Failure{Page: session.AccessDenied, Reason: "authn_context",
		Err: fmt.Errorf("authorization[%d] needs a login made with %v; the session's was %q", rl.index, accepted, s.AuthnContext)}, id.user.UserName)
	return false
}
