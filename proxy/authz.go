package proxy

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"gatehouse/provision"
)

// Rule is one authorization rule. A request is judged under every
// reading a server behind gatehouse may make of its method and canonical
// path (see judge); under each, the first rule whose methods and path
// match decides. A reading no rule matches needs a session, as before.
type Rule struct {
	// Methods limits the rule to these HTTP methods; empty matches any.
	// HEAD is judged as GET too.
	Methods []string `yaml:"methods"`
	// Path is a path prefix ("/admin/" matches below it, "/report" matches
	// itself and below), or Pattern a regular expression (RE2) matched
	// against the canonical path. Exactly one is set. Both match case-
	// insensitively for restrictions and case-sensitively for grants.
	Path    string `yaml:"path"`
	Pattern string `yaml:"pattern"`
	// Allow is public (no session), authenticated (any signed-in user) or
	// deny (nobody); or Require names who may pass.
	Allow   string       `yaml:"allow"`
	Require *Requirement `yaml:"require"`
	// AuthnContext, on an authenticated or require rule, needs a session
	// whose login was made with one of these authentication context
	// classes; a browser with a weaker one is sent back to its IdP with
	// ForceAuthn and the first class requested (a step-up).
	AuthnContext []string `yaml:"authn_context"`
	// IdPs, on an authenticated or require rule, needs a session from one
	// of these configured IdPs (group names from every IdP share one
	// namespace: this is how a rule trusts one IdP's "admins" only).
	IdPs []string `yaml:"idps"`
}

// Requirement is a predicate over the user's groups and fields. With both
// set, both must hold.
type Requirement struct {
	AnyOf *Conditions `yaml:"any_of"`
	AllOf *Conditions `yaml:"all_of"`
}

// Conditions are tests on the user: membership of a group (compared
// case-insensitively, as group names are everywhere), and fields (a core
// field such as email or user_name, or a mapped extra field) holding one
// of the listed values (exactly).
type Conditions struct {
	Groups     []string            `yaml:"groups"`
	Attributes map[string][]string `yaml:"attributes"`
}

// Rule effects.
const (
	AllowPublic        = "public"
	AllowAuthenticated = "authenticated"
	AllowDeny          = "deny"
	effectRequire      = "require"
)

func (r Rule) validate() error { return errors.Join(r.problems()...) }

// problems is every problem of the rule, keyed within it.
func (r Rule) problems() []error {
	var errs []error
	if (r.Path == "") == (r.Pattern == "") {
		errs = append(errs, errors.New("set path or pattern, not both"))
	}
	if r.Path != "" {
		if err := checkRulePath(r.Path); err != nil {
			errs = append(errs, fmt.Errorf("path: %w", err))
		}
	}
	if r.Pattern != "" {
		if err := checkPattern(r.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("pattern: %w", err))
		}
	}
	for _, m := range r.Methods {
		if !canonicalMethod(m) {
			errs = append(errs, fmt.Errorf("methods: %q is not an upper-case method name", m))
		}
	}
	if len(r.AuthnContext) > 0 && (r.Allow == AllowPublic || r.Allow == AllowDeny) {
		errs = append(errs, errors.New("authn_context: only on authenticated or require rules"))
	}
	for _, ref := range r.AuthnContext {
		if ref == "" || strings.ContainsAny(ref, " \t\r\n<>&\"") {
			errs = append(errs, fmt.Errorf("authn_context: %q is not a class reference URI", ref))
		}
	}
	if len(r.IdPs) > 0 && (r.Allow == AllowPublic || r.Allow == AllowDeny) {
		errs = append(errs, errors.New("idps: only on authenticated or require rules"))
	}
	for _, name := range r.IdPs {
		if name == "" {
			errs = append(errs, errors.New("idps: empty IdP name"))
		}
	}
	switch {
	case r.Allow != "" && r.Require != nil:
		errs = append(errs, errors.New("set allow or require, not both"))
	case r.Allow == "" && r.Require == nil:
		errs = append(errs, errors.New("set allow (public, authenticated or deny) or require"))
	case r.Allow != "" && r.Allow != AllowPublic && r.Allow != AllowAuthenticated && r.Allow != AllowDeny:
		errs = append(errs, fmt.Errorf("allow: %q is not public, authenticated or deny", r.Allow))
	case r.Require != nil:
		if r.Require.AnyOf == nil && r.Require.AllOf == nil {
			errs = append(errs, errors.New("require: set any_of or all_of"))
		}
		for name, c := range map[string]*Conditions{"any_of": r.Require.AnyOf, "all_of": r.Require.AllOf} {
			if c != nil && len(c.Groups) == 0 && len(c.Attributes) == 0 {
				errs = append(errs, fmt.Errorf("require.%s: names no group or attribute", name))
			}
			if c == nil {
				continue
			}
			for f, vals := range c.Attributes {
				if f == "" || len(vals) == 0 {
					errs = append(errs, fmt.Errorf("require.%s.attributes.%s: needs a field name and at least one value", name, f))
				}
			}
		}
	}
	return errs
}

// CheckIdPNames reports every authorization rule whose idps names an IdP
// that is not configured (cmd passes the configured names).
func (c Config) CheckIdPNames(known []string) error {
	var errs []error
	for i, r := range c.Authorization {
		for _, name := range r.IdPs {
			if name != "" && !slices.Contains(known, name) {
				errs = append(errs, fmt.Errorf("authorization[%d].idps: %q is not a configured IdP", i, name))
			}
		}
	}
	return errors.Join(errs...)
}

// rule is a compiled Rule.
type rule struct {
	index   int
	methods []string
	path    string // as configured
	folded  string // case folded, for the case-insensitive reading
	re      *regexp.Regexp
	reFold  *regexp.Regexp // the same pattern, case-insensitive
	effect  string
	req     *Requirement
	groups  map[string]bool // any_of groups, folded
	all     []string        // all_of groups, folded
	authn   []string        // accepted authentication context classes
	idps    []string        // accepted IdPs; empty: any
}

func compileRules(rs []Rule) []rule {
	out := make([]rule, 0, len(rs))
	for i, r := range rs {
		c := rule{index: i, methods: r.Methods, path: r.Path, folded: foldCase(r.Path), effect: r.Allow, req: r.Require,
			authn: r.AuthnContext, idps: r.IdPs}
		if r.Pattern != "" {
			c.re = regexp.MustCompile(r.Pattern) // validated
			c.reFold = regexp.MustCompile("(?i)" + r.Pattern)
		}
		if r.Require != nil {
			c.effect = effectRequire
			if a := r.Require.AnyOf; a != nil {
				c.groups = map[string]bool{}
				for _, g := range a.Groups {
					c.groups[provision.NormalizeName(g)] = true
				}
			}
			if a := r.Require.AllOf; a != nil {
				for _, g := range a.Groups {
					c.all = append(c.all, provision.NormalizeName(g))
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// matches reports whether the rule applies to one reading of a request:
// a method and a canonical path, compared as sent (case-sensitively) or
// case-insensitively (folded holds the folded path).
func (r *rule) matches(method string, v view) bool {
	if len(r.methods) > 0 && !slices.Contains(r.methods, method) {
		return false
	}
	switch {
	case r.re != nil && v.fold:
		return r.reFold.MatchString(v.path)
	case r.re != nil:
		return r.re.MatchString(v.path)
	case v.fold:
		return underPath(v.folded, r.folded)
	default:
		return underPath(v.path, r.path)
	}
}

// admits reports whether a rule's session conditions hold: the IdP, and
// for a require rule the user's groups and fields. (The authentication
// context is checked apart: it can be stepped up.)
func (r *rule) admits(u *provision.User, idp string) bool {
	if len(r.idps) > 0 && !slices.Contains(r.idps, idp) {
		return false
	}
	return r.effect != effectRequire || r.permits(u)
}

// permits evaluates a require rule on a user.
func (r *rule) permits(u *provision.User) bool {
	q := r.req
	if q.AnyOf != nil && !r.anyOf(u, q.AnyOf) {
		return false
	}
	if q.AllOf != nil && !r.allOf(u, q.AllOf) {
		return false
	}
	return true
}

func (r *rule) anyOf(u *provision.User, c *Conditions) bool {
	for _, g := range u.Groups {
		if r.groups[provision.NormalizeName(g)] {
			return true
		}
	}
	for f, vals := range c.Attributes {
		if v := u.Field(f); v != "" && slices.Contains(vals, v) {
			return true
		}
	}
	return false
}

func (r *rule) allOf(u *provision.User, c *Conditions) bool {
	have := make(map[string]bool, len(u.Groups))
	for _, g := range u.Groups {
		have[provision.NormalizeName(g)] = true
	}
	for _, g := range r.all {
		if !have[g] {
			return false
		}
	}
	for f, vals := range c.Attributes {
		if v := u.Field(f); v == "" || !slices.Contains(vals, v) {
			return false
		}
	}
	return true
}

// checkRulePath refuses a rule or public path that is not in the
// canonical form requests are judged in: such a path would never match
// (or, for a grant, would match something else than it says).
func checkRulePath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must be an absolute path, got %q", p)
	}
	c, err := canonicalPath(escapeRulePath(p))
	if err != nil {
		return fmt.Errorf("%q can never match a request (%w); write the path decoded, without dot segments or repeated slashes", p, err)
	}
	if c.path != p {
		return fmt.Errorf("%q is not in canonical form, which would be %q", p, c.path)
	}
	return nil
}

// escapeRulePath escapes a configured (decoded) path for canonicalPath.
func escapeRulePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '/' || isPathChar(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// checkPattern refuses a pattern that does not compile, that tells upper
// from lower case (rules compare paths case-insensitively, as IIS and
// Express do), or that needs text no canonical path holds.
func checkPattern(pat string) error {
	if _, err := regexp.Compile(pat); err != nil {
		return err
	}
	for _, r := range pat {
		if r >= utf8.RuneSelf && confusable(r) {
			return fmt.Errorf("%q holds %U, which reads as ASCII or is invisible; no canonical path holds it", pat, r)
		}
	}
	tree, err := syntax.Parse("(?i)"+pat, syntax.Perl)
	if err != nil {
		return err
	}
	var problem error
	walkRegexp(tree, func(re *syntax.Regexp) {
		if problem == nil && caseSensitive(re) {
			problem = fmt.Errorf("%q tells upper from lower case (%s), but paths are compared case-insensitively", pat, re)
		}
		if problem != nil || re.Op != syntax.OpConcat && re.Op != syntax.OpLiteral {
			return
		}
		for _, run := range literalRuns(re) {
			if why := impossible(run); why != "" {
				problem = fmt.Errorf("%q can never match a canonical request path: it needs %q (%s)", pat, strings.TrimSuffix(run, "$"), why)
				return
			}
		}
	})
	return problem
}

func walkRegexp(re *syntax.Regexp, f func(*syntax.Regexp)) {
	f(re)
	for _, s := range re.Sub {
		walkRegexp(s, f)
	}
}

// caseSensitive reports whether a node of a pattern parsed with (?i)
// still tells an ASCII letter's cases apart (a (?-i) group).
func caseSensitive(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		return slices.ContainsFunc(re.Rune, func(r rune) bool { return unicode.SimpleFold(r) != r })
	case syntax.OpCharClass:
		for c := 'a'; c <= 'z'; c++ {
			if inClass(re.Rune, c) != inClass(re.Rune, c-'a'+'A') {
				return true
			}
		}
	}
	return false
}

func inClass(ranges []rune, r rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= r && r <= ranges[i+1] {
			return true
		}
	}
	return false
}

// literalRuns lists the literal texts a concatenation (or a literal)
// needs, lower-cased; a run followed by the end of the text ends in "$".
func literalRuns(re *syntax.Regexp) []string {
	subs := re.Sub
	if re.Op == syntax.OpLiteral {
		subs = []*syntax.Regexp{re}
	}
	var runs []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			runs = append(runs, cur.String())
			cur.Reset()
		}
	}
	for _, s := range subs {
		switch {
		case s.Op == syntax.OpLiteral:
			cur.WriteString(strings.ToLower(string(s.Rune)))
		case s.Op == syntax.OpCharClass && singleRune(s.Rune):
			cur.WriteRune(unicode.ToLower(s.Rune[0]))
		case s.Op == syntax.OpEndText || s.Op == syntax.OpEndLine:
			cur.WriteByte('$')
			flush()
		case s.Op == syntax.OpBeginText || s.Op == syntax.OpBeginLine || s.Op == syntax.OpEmptyMatch:
		default:
			flush()
		}
	}
	flush()
	return runs
}

// singleRune reports whether a class holds one character, ignoring case.
func singleRune(ranges []rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if unicode.ToLower(ranges[i]) != unicode.ToLower(ranges[0]) || unicode.ToLower(ranges[i+1]) != unicode.ToLower(ranges[0]) {
			return false
		}
	}
	return len(ranges) >= 2
}

// impossible says why a needed literal cannot occur in a canonical path
// ("" when it can); a trailing "$" marks the end of the path.
func impossible(run string) string {
	atEnd := strings.HasSuffix(run, "$")
	text := strings.TrimSuffix(run, "$")
	for _, bad := range []struct{ s, why string }{
		{"//", "repeated slashes are merged"}, {"/./", "dot segments are resolved"}, {"/../", "dot segments are resolved"},
		{`\`, "backslashes are refused"}, {"./", "segments never end in a dot"}, {" /", "segments never end in a space"},
		{":$", "NTFS stream names are refused"}, {".;", "segments never end in a dot or a space, nor before parameters"},
		{" ;", "segments never end in a dot or a space, nor before parameters"},
		{".:", "segments never end in a dot or a space, nor before a stream name"},
		{" :", "segments never end in a dot or a space, nor before a stream name"},
		{":/", "empty stream names are refused"}, {":;", "empty stream names are refused"},
	} {
		if strings.Contains(text, bad.s) {
			return bad.why
		}
	}
	if atEnd && (strings.HasSuffix(text, ".") || strings.HasSuffix(text, " ")) {
		return "segments never end in a dot or a space"
	}
	if atEnd && strings.HasSuffix(text, ":") {
		return "empty stream names are refused"
	}
	for i := 0; i < len(text); i++ {
		if text[i] < 0x20 || text[i] == 0x7f {
			return "control characters are refused"
		}
		if text[i] == '%' && i+1 < len(text) && (text[i+1] == 'u' || i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2])) {
			return "paths are matched decoded: write the character, not its escape"
		}
	}
	for _, r := range text {
		if r >= utf8.RuneSelf && confusable(r) {
			return fmt.Sprintf("%U reads as ASCII or is invisible, and is refused", r)
		}
	}
	return ""
}
