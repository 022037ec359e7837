package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"gatehouse/provision"
)

// Rule is one authorization rule. Rules are tried in order; the first
// whose methods and path match the request decides. A request no rule
// matches needs a session, as before.
type Rule struct {
	// Methods limits the rule to these HTTP methods; empty matches any.
	Methods []string `yaml:"methods"`
	// Path is a path prefix ("/admin/" matches below it, "/report" matches
	// itself and below), or Pattern a regular expression (RE2) matched
	// against the path. Exactly one is set.
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

func (r Rule) validate() error {
	var errs []error
	if (r.Path == "") == (r.Pattern == "") {
		errs = append(errs, errors.New("set path or pattern, not both"))
	}
	if r.Path != "" && (!strings.HasPrefix(r.Path, "/") || strings.Contains(r.Path, "..")) {
		errs = append(errs, fmt.Errorf("path: must be an absolute path, got %q", r.Path))
	}
	if r.Pattern != "" {
		if _, err := regexp.Compile(r.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("pattern: %w", err))
		}
	}
	for _, m := range r.Methods {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsFunc(m, func(c rune) bool { return c < 'A' || c > 'Z' }) {
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
	return errors.Join(errs...)
}

// rule is a compiled Rule.
type rule struct {
	index   int
	methods []string
	path    string // as configured, and lower-cased for the normalised path
	lower   string
	re      *regexp.Regexp
	effect  string
	req     *Requirement
	groups  map[string]bool // any_of groups, folded
	all     []string        // all_of groups, folded
	authn   []string        // accepted authentication context classes
}

func compileRules(rs []Rule) []rule {
	out := make([]rule, 0, len(rs))
	for i, r := range rs {
		c := rule{index: i, methods: r.Methods, path: r.Path, lower: strings.ToLower(r.Path), effect: r.Allow, req: r.Require,
			authn: r.AuthnContext}
		if r.Pattern != "" {
			c.re = regexp.MustCompile(r.Pattern) // validated
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

// matches reports whether the rule applies to a request. A rule that
// grants more (public, authenticated) must match the path both as sent
// and as the upstream may read it (normalised: lower case, "\" as "/",
// dot segments resolved), so that no spelling widens access; a rule that
// restricts (deny, require) applies when either matches, so that no
// spelling escapes it.
func (r *rule) matches(method, raw, norm string) bool {
	if len(r.methods) > 0 && !slices.Contains(r.methods, method) {
		return false
	}
	var asSent, asRead bool
	if r.re != nil {
		asSent, asRead = r.re.MatchString(raw), r.re.MatchString(norm)
	} else {
		asSent, asRead = underPath(raw, r.path), underPath(norm, r.lower)
	}
	if r.effect == AllowPublic || r.effect == AllowAuthenticated {
		return asSent && asRead
	}
	return asSent || asRead
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

// decide finds the rule for a request: nil when none matches.
func (p *Proxy) decide(r *http.Request) *rule {
	if len(p.rules) == 0 {
		return nil
	}
	norm := normalizePath(r.URL.Path)
	for i := range p.rules {
		if p.rules[i].matches(r.Method, r.URL.Path, norm) {
			return &p.rules[i]
		}
	}
	return nil
}
