package proxy

import (
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"gatehouse/provision"
	"gatehouse/session"
)

// Config configures the request path.
type Config struct {
	// Upstream is the application's base URL.
	Upstream string `yaml:"upstream"`
	// Prefix is the reserved path prefix; default "/.gatehouse/".
	Prefix string `yaml:"prefix"`
	// PreserveHost sends the canonical host of BaseURL upstream instead
	// of the upstream's (a request for any other host is redirected to
	// BaseURL before it gets here).
	PreserveHost bool         `yaml:"preserve_host"`
	Headers      HeaderConfig `yaml:"headers"`
	// BaseURL is gatehouse's public origin: cmd fills it from the session
	// section's base_url. Requests for another host are redirected to it,
	// and X-Forwarded-Host and -Proto are taken from it.
	BaseURL string `yaml:"-"`
	Edges   `yaml:",inline"`
	// PublicPaths are path prefixes served without a session. Identity
	// headers are stripped there too.
	PublicPaths []string `yaml:"public_paths"`
	// UserCacheTTL is how long a user record is served from memory before
	// it is read again from the store; default 1m.
	UserCacheTTL time.Duration `yaml:"user_cache_ttl"`
	// UserCacheBytes bounds the memory of the identity cache (user
	// records, their identity headers and signed identity tokens, kept
	// for UserCacheTTL); default 4 MiB, some 2,000 users without groups or
	// 1,000 in 20 groups (an identity costs 1.1 to 4 KiB, a signed token
	// up to 1.5 KiB more; see DefaultUserCacheBytes). When it is full,
	// random entries make room.
	UserCacheBytes int64 `yaml:"user_cache_bytes"`
	// KnownUsersBytes bounds the last known good records kept for
	// continue_on_store_error; default 2 MiB, some 1,400 users without
	// groups or 700 in 20 groups (a record costs 1 to 3.3 KiB). When it is
	// full, the oldest go.
	KnownUsersBytes int64 `yaml:"known_users_bytes"`
	// SessionCacheBytes bounds the memory of opened session cookies, kept
	// so that a cookie value seen before is not decrypted again; default
	// 4 MiB, some 1,600 sessions (an entry costs three times the cookie
	// value, the session's strings and 1 KiB). Timeouts, revocation and the
	// IdP are checked on every request all the same.
	SessionCacheBytes int64 `yaml:"session_cache_bytes"`
	// JITTimeout bounds the store work of one login; default 5s.
	JITTimeout time.Duration `yaml:"jit_timeout"`
	// Authorization is the ordered list of rules applied before a request
	// is proxied (after PublicPaths).
	Authorization []Rule `yaml:"authorization"`
	// SignedIdentity, when set, adds a signed JWT describing the user to
	// every proxied request.
	SignedIdentity *SignedIdentityConfig `yaml:"signed_identity"`
}

// HeaderConfig names the identity headers sent upstream.
type HeaderConfig struct {
	User   string `yaml:"user"`   // user name; default X-Forwarded-User
	Email  string `yaml:"email"`  // default X-Forwarded-Email
	Groups string `yaml:"groups"` // default X-Forwarded-Groups
	// PreferredUsername carries the user name, as oauth2-proxy sends it
	// (applications written for it log users in by this header); default
	// X-Forwarded-Preferred-Username.
	PreferredUsername string `yaml:"preferred_username"`
	// DisplayName carries the display name, free text that an IdP or a
	// SCIM client sets and that need not be unique; default
	// X-Forwarded-Display-Name.
	DisplayName string `yaml:"display_name"`
	// Extra maps further header names to a user field: "id",
	// "given_name", "family_name", "display_name" or a mapped extra name.
	Extra map[string]string `yaml:"extra"`
	// StripPrefix: every client header starting with it is deleted;
	// default "X-Gatehouse-".
	StripPrefix string `yaml:"strip_prefix"`
	// GroupSeparator joins group names; default ",".
	GroupSeparator string `yaml:"group_separator"`
	// Strip names further client headers deleted before a request is
	// proxied, on top of the built-in list of proxy-trust headers (see
	// StrippedByDefault); a trailing "*" makes a name a prefix.
	Strip []string `yaml:"strip"`
	// Keep names headers of the built-in list that the application needs
	// from the client and that are forwarded as sent.
	Keep []string `yaml:"keep"`
}

// IdPPolicy is the per-IdP part of the JIT rules.
type IdPPolicy struct {
	Mapping provision.Mapping
	// ContinueOnStoreError lets a login proceed unprovisioned when the
	// store fails, with identity headers from the assertion.
	ContinueOnStoreError bool
	// Reserved names the fields SCIM owns (provision.Login.Reserved).
	Reserved []string
}

// The bounds of user_cache_bytes, known_users_bytes and
// session_cache_bytes.
const (
	minCacheBytes = 64 << 10
	maxCacheBytes = 4 << 30
)

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	h := &c.Headers
	for _, d := range []struct {
		p *string
		v string
	}{
		{&h.User, "X-Forwarded-User"}, {&h.Email, "X-Forwarded-Email"}, {&h.Groups, "X-Forwarded-Groups"},
		{&h.PreferredUsername, "X-Forwarded-Preferred-Username"}, {&h.DisplayName, "X-Forwarded-Display-Name"},
		{&h.StripPrefix, "X-Gatehouse-"}, {&h.GroupSeparator, ","},
	} {
		if *d.p == "" {
			*d.p = d.v
		}
	}
	if c.UserCacheTTL == 0 {
		c.UserCacheTTL = time.Minute
	}
	if c.JITTimeout == 0 {
		c.JITTimeout = 5 * time.Second
	}
	if c.UserCacheBytes == 0 {
		c.UserCacheBytes = DefaultUserCacheBytes
	}
	if c.KnownUsersBytes == 0 {
		c.KnownUsersBytes = DefaultKnownUsersBytes
	}
	if c.SessionCacheBytes == 0 {
		c.SessionCacheBytes = session.DefaultSessionCacheBytes
	}
	c.Edges = c.Edges.withDefaults()
	if c.SignedIdentity != nil {
		si := *c.SignedIdentity
		si.withDefaults(c.Upstream)
		c.SignedIdentity = &si
	}
	return c
}

// Validate checks the configuration (after WithDefaults): Problems,
// joined.
func (c Config) Validate() error { return errors.Join(c.Problems()...) }

// Problems is every problem Validate finds, each naming its key.
func (c Config) Problems() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if u, err := url.Parse(c.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		add("upstream: must be an http(s) URL without query, got %q", c.Upstream)
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") || len(c.Prefix) < 3 || strings.Contains(c.Prefix, "//") {
		add("prefix: must look like /.gatehouse/, got %q", c.Prefix)
	}
	h := c.Headers
	builtin := map[string]string{"user": h.User, "email": h.Email, "groups": h.Groups, "preferred_username": h.PreferredUsername, "display_name": h.DisplayName}
	for key, name := range builtin {
		if !httpguts.ValidHeaderFieldName(name) {
			add("headers.%s: %q is not a valid header name", key, name)
		} else if why := notIdentityHeader(name); why != "" {
			add("headers.%s: %s is %s; it cannot carry a user field", key, name, why)
		}
	}
	// Names are compared in their normal form: X_Forwarded_User is
	// X-Forwarded-User to a CGI or FastCGI application.
	seen := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(builtin)) {
		name := textproto.CanonicalMIMEHeaderKey(builtin[key])
		if other, ok := seen[NormalizeHeaderName(name)]; ok {
			add("headers.%s: %q is also headers.%s: each identity header carries one field", key, name, other)
		}
		seen[NormalizeHeaderName(name)] = key
	}
	if h.StripPrefix != "" && !httpguts.ValidHeaderFieldName(h.StripPrefix) {
		add("headers.strip_prefix: %q is not a valid header name prefix", h.StripPrefix)
	}
	for _, name := range slices.Sorted(maps.Keys(h.Extra)) {
		field := h.Extra[name]
		if !httpguts.ValidHeaderFieldName(name) {
			add("headers.extra.%s: not a valid header name", name)
		} else if why := notIdentityHeader(name); why != "" {
			add("headers.extra.%s: %s; it cannot carry a user field", name, why)
		}
		if key, ok := seen[NormalizeHeaderName(name)]; ok {
			add("headers.extra.%s: is headers.%s, which carries its own field", name, key)
		}
		seen[NormalizeHeaderName(name)] = "extra." + name
		if field == "" {
			add("headers.extra.%s: names no field", name)
		}
	}
	if h.GroupSeparator == "" || strings.ContainsAny(h.GroupSeparator, "\r\n\x00") {
		add("headers.group_separator: must be a printable separator")
	}
	for i, p := range c.PublicPaths {
		if !strings.HasPrefix(p, "/") || reserved(escapeRulePath(p), c.Prefix) {
			add("public_paths[%d]: must be an absolute path outside the reserved prefix, got %q", i, p)
		} else if err := checkRulePath(p); err != nil {
			add("public_paths[%d]: %w", i, err)
		}
	}
	for i, r := range c.Authorization {
		for _, e := range r.problems() {
			add("authorization[%d].%w", i, e)
		}
		if r.Path != "" && reserved(escapeRulePath(r.Path), c.Prefix) {
			add("authorization[%d].path: %q is under the reserved prefix, which is never proxied", i, r.Path)
		}
	}
	if c.SignedIdentity != nil {
		for _, e := range c.SignedIdentity.problems() {
			add("signed_identity.%w", e)
		}
		if name := c.SignedIdentity.Header; httpguts.ValidHeaderFieldName(name) {
			if why := notIdentityHeader(name); why != "" {
				add("signed_identity.header: %s is %s; it cannot carry the identity token", name, why)
			}
		}
	}
	errs = append(errs, c.validateEdges()...)
	if c.UserCacheTTL < time.Second || c.UserCacheTTL > time.Hour {
		add("user_cache_ttl: must be between 1s and 1h")
	}
	if c.JITTimeout < 100*time.Millisecond || c.JITTimeout > time.Minute {
		add("jit_timeout: must be between 100ms and 1m")
	}
	for _, b := range []struct {
		key string
		n   int64
	}{{"user_cache_bytes", c.UserCacheBytes}, {"known_users_bytes", c.KnownUsersBytes}, {"session_cache_bytes", c.SessionCacheBytes}} {
		if b.n < minCacheBytes || b.n > maxCacheBytes {
			add("%s: must be between %d (64 KiB) and %d (4 GiB), got %d", b.key, minCacheBytes, int64(maxCacheBytes), b.n)
		}
	}
	return errs
}

// Header names that no identity header may take, in their normal form
// (see NormalizeHeaderName). Set from a user record, they would let IdP or
// SCIM data reshape the request the upstream reads: which headers a hop
// drops, how the body is framed, which host, cookie or credentials it
// carries, or which client, host and scheme it came from. Besides these,
// every header gatehouse strips from clients because applications trust
// it (headers.go) is refused, but for the user headers: those are what an
// identity header is.
var (
	hopByHopHeaders = normalizeAll([]string{
		"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
		"TE", "Trailer", "Trailers", "Transfer-Encoding", "Upgrade", "Via", "Max-Forwards",
	})
	messageHeaders = normalizeAll([]string{"Host", "Content-Length", "Content-Type", "Cookie", "Authorization"})
	// contentPrefix: every Content-* header (encoding, range, language,
	// location, digest, disposition...) in any spelling, separators
	// dropped included.
	contentPrefix = NormalizeHeaderName("Content-")
	// conditionalHeaders: Expect, Range and the conditionals, which decide
	// whether the request is served at all and which part of the body.
	// Any other name whose first word is If is refused too.
	conditionalHeaders = normalizeAll([]string{
		"Expect", "Range", "If", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
		"If-Range", "If-Schedule-Tag-Match",
	})
	// browserHeaders: what a browser says about the request's origin and
	// intent, which applications check against cross-site forgery; an
	// identity header would replace the browser's value on every request.
	browserHeaders = normalizeAll([]string{
		"Origin", "Referer", "X-Requested-With", "X-XSRF-Token", "X-CSRF-Token", "X-CSRFToken", "Destination",
		"Early-Data", "Cookie2", "Prefer",
	})
)

// notIdentityHeader says why name cannot be an identity header, or "" if
// it can. It is the one list every identity header setting is checked
// against; headers.keep checks alwaysStripped the same way.
func notIdentityHeader(name string) string {
	norm := NormalizeHeaderName(name)
	hasPrefix := func(prefixes []string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(norm, p) })
	}
	switch {
	case slices.Contains(hopByHopHeaders, norm):
		return "a hop-by-hop header, consumed or rewritten by every proxy on the way"
	case slices.Contains(messageHeaders, norm):
		return "a header that frames or addresses the request or carries the client's credentials"
	case strings.HasPrefix(norm, contentPrefix):
		return "a Content-* header, which says how the request's body is framed or read"
	case slices.Contains(conditionalHeaders, norm) || firstWordIsIf(name):
		return "a conditional or range header, which decides whether and how much of a resource is served"
	case slices.Contains(browserHeaders, norm) || firstWordIs(name, "sec"):
		return "a header the browser sets about the request's origin and intent, which applications check against forgery"
	case slices.Contains(normAlwaysStripped, norm):
		return "a forwarding or method header that gatehouse always replaces or removes"
	case slices.Contains(normClientAddressNames, norm):
		return "a proxy-trust header naming the client's address"
	case slices.Contains(normRequestURLNames, norm):
		return "a proxy-trust header naming the URL, host, port or scheme the client asked for"
	case slices.Contains(normClientCertNames, norm) || hasPrefix(normClientCertPrefixes):
		return "a proxy-trust header carrying a client certificate a proxy verified"
	}
	return ""
}

// firstWordIsIf reports whether name is If-* in any spelling that keeps a
// separator after If (If_Foo, if.foo).
func firstWordIsIf(name string) bool { return firstWordIs(name, "if") }

// firstWordIs reports whether name starts with word and a separator, in
// any case (Sec-Fetch-Site, sec_fetch_mode).
func firstWordIs(name, word string) bool {
	n := len(word)
	return len(name) > n && strings.EqualFold(name[:n], word) && NormalizeHeaderName(name[n:n+1]) == ""
}
