package proxy

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Edges configures the edges of a proxied request: which client
// addresses are believed, which protocol upgrades pass, how fast a client
// must send its body, how much a client without a session may hold at
// the upstream, and how often it may start SAML work. Its keys sit
// at the top level of the config file.
type Edges struct {
	// TrustedProxies are the addresses (CIDRs or single IPs) of proxies in
	// front of gatehouse. Only a connection from one of them has its
	// X-Forwarded-For believed; see ClientIP.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Upgrades are the Upgrade protocols that may be proxied; default
	// [websocket]; an empty list allows none. h2c is never allowed.
	Upgrades []string `yaml:"upgrades"`
	// UpgradeMaxLifetime closes an upgraded connection (a WebSocket) after
	// this long; 0 (default): it lives as long as its session.
	UpgradeMaxLifetime time.Duration `yaml:"upgrade_max_lifetime"`
	// EndpointBodyTimeout bounds the time a client may take to send the
	// whole body of a request to gatehouse's own endpoints (ACS, SLO,
	// logout, SCIM); default 10s.
	EndpointBodyTimeout time.Duration `yaml:"endpoint_body_timeout"`
	// ProxiedBodyIdleTimeout bounds the pause between two reads of a
	// proxied request's body (an upload may take as long as it keeps
	// sending); default 60s.
	ProxiedBodyIdleTimeout time.Duration `yaml:"proxied_body_idle_timeout"`
	// PublicBodyTimeout bounds the time a request without a session (on a
	// public path or under a public rule) may take to send its whole
	// body to the upstream; default 60s.
	PublicBodyTimeout time.Duration `yaml:"public_body_timeout"`
	// PublicUpgradeMaxLifetime closes an upgraded connection opened
	// without a session after this long; default 15m.
	PublicUpgradeMaxLifetime time.Duration `yaml:"public_upgrade_max_lifetime"`
	// PublicMaxConcurrent bounds the requests without a session that one
	// client address (an IPv6 client by its /64) may have at the upstream
	// at once, open upgraded connections included; default 64. One more
	// waits up to 5s for a place, then gets 429.
	PublicMaxConcurrent int `yaml:"public_max_concurrent"`
	// MaxPathLength bounds the request path as sent (escaped), in bytes;
	// a longer one gets 414. Default 2048 (the longest URL old browsers
	// sent): every reading of a path is work that grows with its length.
	MaxPathLength int             `yaml:"max_path_length"`
	RateLimit     RateLimitConfig `yaml:"rate_limit"`
}

// RateLimitConfig is the per-client limit on SAML endpoints and login
// starts.
type RateLimitConfig struct {
	// Disabled turns the limit off.
	Disabled bool `yaml:"disabled"`
	// PerMinute is the sustained rate per client; default 120.
	PerMinute int `yaml:"per_minute"`
	// Burst is how many requests a client may make at once; default 60.
	Burst int `yaml:"burst"`
	// MaxBytes bounds the memory of the clients tracked, 128 bytes each
	// (least recently seen are forgotten first); default 8 MiB, 65,536
	// clients.
	MaxBytes int `yaml:"max_bytes"`
	// MaxClients is the older form of the bound, in clients; set one or
	// the other.
	MaxClients int `yaml:"max_clients"`
}

// maxClients is the number of clients the bound allows.
func (r RateLimitConfig) maxClients() int {
	if r.MaxClients != 0 {
		return r.MaxClients
	}
	return r.MaxBytes / limiterEntryBytes
}

func (e Edges) withDefaults() Edges {
	if e.Upgrades == nil {
		e.Upgrades = []string{"websocket"}
	}
	if e.EndpointBodyTimeout == 0 {
		e.EndpointBodyTimeout = 10 * time.Second
	}
	if e.ProxiedBodyIdleTimeout == 0 {
		e.ProxiedBodyIdleTimeout = time.Minute
	}
	if e.PublicBodyTimeout == 0 {
		e.PublicBodyTimeout = time.Minute
	}
	if e.PublicUpgradeMaxLifetime == 0 {
		e.PublicUpgradeMaxLifetime = 15 * time.Minute
	}
	if e.PublicMaxConcurrent == 0 {
		e.PublicMaxConcurrent = 64
	}
	if e.MaxPathLength == 0 {
		e.MaxPathLength = 2048
	}
	r := &e.RateLimit
	if r.PerMinute == 0 {
		r.PerMinute = 120
	}
	if r.Burst == 0 {
		r.Burst = 60
	}
	if r.MaxBytes == 0 && r.MaxClients == 0 {
		r.MaxBytes = 8 << 20
	}
	return e
}

// validateEdges checks the edge keys, BaseURL and the header lists.
func (c Config) validateEdges() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, err := parseTrusted(c.TrustedProxies); err != nil {
		add("trusted_proxies%v", err)
	}
	for i, u := range c.Upgrades {
		switch {
		case u == "" || !tokenOnly(u):
			add("upgrades[%d]: %q is not a protocol name", i, u)
		case strings.EqualFold(protocolName(u), "h2c"):
			add("upgrades[%d]: h2c is never allowed: an h2c connection carries requests gatehouse cannot see", i)
		}
	}
	if d := c.UpgradeMaxLifetime; d != 0 && (d < time.Second || d > 7*24*time.Hour) {
		add("upgrade_max_lifetime: 0 (the session's lifetime) or between 1s and 168h")
	}
	if d := c.EndpointBodyTimeout; d < time.Second || d > 5*time.Minute {
		add("endpoint_body_timeout: between 1s and 5m")
	}
	if d := c.ProxiedBodyIdleTimeout; d < time.Second || d > time.Hour {
		add("proxied_body_idle_timeout: between 1s and 1h")
	}
	if d := c.PublicBodyTimeout; d < time.Second || d > time.Hour {
		add("public_body_timeout: between 1s and 1h")
	}
	if d := c.PublicUpgradeMaxLifetime; d < time.Second || d > 7*24*time.Hour {
		add("public_upgrade_max_lifetime: between 1s and 168h")
	}
	if n := c.PublicMaxConcurrent; n < 1 || n > 100_000 {
		add("public_max_concurrent: between 1 and 100000")
	}
	if n := c.MaxPathLength; n < 256 || n > 32<<10 {
		add("max_path_length: between 256 and 32768 bytes")
	}
	if r := c.RateLimit; !r.Disabled {
		if r.PerMinute < 1 || r.PerMinute > 1_000_000 {
			add("rate_limit.per_minute: between 1 and 1000000 (or set disabled: true)")
		}
		if r.Burst < 1 || r.Burst > 100_000 {
			add("rate_limit.burst: between 1 and 100000")
		}
		switch {
		case r.MaxBytes != 0 && r.MaxClients != 0:
			add("rate_limit.max_bytes: set max_bytes or max_clients, not both")
		case r.MaxClients != 0 && (r.MaxClients < 100 || r.MaxClients > 10_000_000):
			add("rate_limit.max_clients: between 100 and 10000000")
		case r.MaxClients == 0 && (r.MaxBytes < 64<<10 || r.MaxBytes > 1<<30):
			add("rate_limit.max_bytes: between 65536 (64 KiB) and 1073741824 (1 GiB)")
		}
	}
	for i, n := range c.Headers.Strip {
		if name := strings.TrimSuffix(n, "*"); name == "" || !httpguts.ValidHeaderFieldName(name) {
			add("headers.strip[%d]: %q is not a header name (or a prefix ending in *)", i, n)
		}
	}
	identity := newHeaderSet(c.Headers).names()
	for i, n := range c.Headers.Keep {
		norm := NormalizeHeaderName(n)
		switch {
		case slices.ContainsFunc(identity, func(id string) bool { return NormalizeHeaderName(id) == norm }):
			add("headers.keep[%d]: %s is an identity header: gatehouse sets it", i, n)
		case slices.Contains(normAlwaysStripped, norm):
			add("headers.keep[%d]: %s is always replaced or removed by gatehouse", i, n)
		case !strippedByDefault(norm):
			add("headers.keep[%d]: %s is not stripped by default; nothing to keep", i, n)
		}
	}
	return errs
}

// canonicalOrigin parses base_url into its scheme and host, the host
// lower case and without the scheme's default port.
func canonicalOrigin(base string) (origin, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return origin{}, fmt.Errorf("must be an http(s) URL with a host, got %q", base)
	}
	return origin{scheme: u.Scheme, host: normalizeHost(u.Host, u.Scheme)}, nil
}

// origin is gatehouse's canonical scheme and host.
type origin struct{ scheme, host string }

// normalizeHost lower-cases a host, drops a trailing dot of the name and
// the scheme's default port.
func normalizeHost(host, scheme string) string {
	host = strings.ToLower(host)
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		name, port = host[:i], host[i+1:]
	}
	name = strings.TrimSuffix(name, ".")
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return name
	}
	return name + ":" + port
}

// parseTrusted reads trusted_proxies; the error names the entry.
func parseTrusted(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("[%d]: %q is not an IP address or CIDR", i, s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// tokenOnly reports whether s is an HTTP token, optionally with a
// "/version" (an Upgrade protocol).
func tokenOnly(s string) bool {
	name, version, hasVersion := strings.Cut(s, "/")
	ok := func(t string) bool {
		if t == "" {
			return false
		}
		for i := 0; i < len(t); i++ {
			if !httpguts.IsTokenRune(rune(t[i])) {
				return false
			}
		}
		return true
	}
	return ok(name) && (!hasVersion || ok(version))
}

// protocolName is an Upgrade protocol without its version.
func protocolName(s string) string {
	name, _, _ := strings.Cut(s, "/")
	return name
}
