package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// NormalizeHeaderName folds a header name for comparison the way servers
// behind a proxy may see it: its ASCII letters in lower case and its
// digits, nothing else. CGI, FastCGI and SCGI gateways turn each
// character that is not a letter or a digit into "_", so X.Forwarded.User
// and X_Forwarded_User both reach the application as
// HTTP_X_FORWARDED_USER; other readers collapse or drop separators, so
// X--Forwarded--User and XForwardedUser are the same name here too.
func NormalizeHeaderName(name string) string {
	b := make([]byte, len(name))
	return string(b[:fold(b, name)])
}

// alwaysStripped are client headers gatehouse removes on every proxied
// request and that no configuration keeps: it sets the forwarding headers
// itself (from trusted_proxies and base_url), an h2c upgrade is refused,
// and authorization is judged on the request's own method.
var alwaysStripped = []string{
	"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded",
	"http2-settings",
	"x-http-method-override", "x-http-method", "x-method-override", "x-original-method",
}

// strippedNames are the headers that proxies in front of an application
// set and applications believe: who the client is, where it connected,
// which URL, host or scheme it asked for, and which user or certificate a
// proxy authenticated. A client must never be able to send them. Names
// are normalised (see NormalizeHeaderName); headers.keep may keep one.
var strippedNames = slices.Concat(clientAddressNames, requestURLNames, authenticatedUserNames, clientCertNames)

// clientAddressNames name the client's address.
var clientAddressNames = []string{
	"x-real-ip", "x-client-ip", "client-ip", "true-client-ip", "cf-connecting-ip", "fastly-client-ip",
	"x-cluster-client-ip", "x-original-forwarded-for", "x-proxyuser-ip", "x-forwarded", "forwarded-for",
	"x-originating-ip", "x-remote-ip", "x-remote-addr", "remote-addr", "x-envoy-external-address",
	"x-azure-clientip", "x-azure-socketip", "x-appengine-user-ip", "fly-client-ip", "x-true-client-ip",
	// WebLogic's plug-in and the Java servers that copy it, and CDNs.
	"wl-proxy-client-ip", "proxy-client-ip", "x-forwarded-client-ip", "x-nf-client-connection-ip",
	"x-vercel-forwarded-for", "cloudfront-viewer-address",
}

// requestURLNames name the host, port, URL, prefix and scheme as the
// client asked for them.
var requestURLNames = []string{
	"x-forwarded-server", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-path", "x-forwarded-uri",
	"x-forwarded-url", "x-forwarded-scheme", "x-forwarded-ssl", "x-forwarded-protocol", "x-url-scheme",
	"x-scheme", "front-end-https", "x-original-url", "x-original-uri", "x-rewrite-url", "x-original-host",
	"x-host", "x-http-host-override", "x-forwarded-server-name", "x-arr-ssl", "x-real-proto",
	"wl-proxy-ssl", "cloudfront-forwarded-proto", "cf-visitor", "fastly-ssl", "x-forwarded-https", "x-original-proto",
	"x-envoy-original-path", "x-envoy-internal", "x-script-name", "script-name", "x-request-uri",
	"x-forwarded-request-uri",
	// Next.js reads it as "this request came from its own middleware".
	"x-middleware-subrequest",
}

// authenticatedUserNames name a user a proxy authenticated: the kind of
// header gatehouse itself sets as an identity header.
var authenticatedUserNames = []string{
	"remote-user", "x-remote-user", "auth-user", "x-auth-user", "x-user", "x-username", "x-forwarded-user",
	"x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username", "x-forwarded-display-name", "x-forwarded-access-token",
	"x-remote-group", "x-remote-groups", "remote-groups", "remote-email", "remote-name", "x-webauth-user",
	"x-webauth-email", "x-webauth-name", "x-authenticated-user", "x-authenticated-userid", "x-authenticated-groups",
	"x-consumer-username", "x-consumer-id", "x-consumer-custom-id", "x-credential-identifier", "x-credential-username",
	"x-anonymous-consumer", "proxy-user", "x-proxy-user", "x-user-id", "x-user-email", "x-email", "x-groups",
	"x-id-token", "x-access-token", "x-userinfo", "x-jwt-assertion", "x-iap-user",
}

// clientCertNames carry a client certificate a proxy verified.
var clientCertNames = []string{
	"x-forwarded-client-cert", "x-client-cert", "x-client-certificate", "x-client-verify", "x-client-dn",
	"x-arr-clientcert", "wl-proxy-client-cert",
}

// strippedPrefixes are families of the same kind: the identity headers
// of common authenticating proxies and client certificate headers.
var strippedPrefixes = slices.Concat(authenticatedUserPrefixes, clientCertPrefixes)

// authenticatedUserPrefixes are the families of user headers.
var authenticatedUserPrefixes = []string{
	"x-auth-request-", "x-ms-client-principal", "oidc-claim-", "oidc-access-token", "oidc-id-token",
	"shib-", "x-amzn-oidc-", "cf-access-", "x-goog-authenticated-user-", "x-goog-iap-", "x-pomerium-",
	"x-vouch-", "x-authentik-", "remote-user-",
	// Variants of the user headers above (X-Forwarded-User-Id,
	// X-Forwarded-Username, X-Remote-User-Email, X-Authenticated-User-Id):
	// an application that reads one believes it as much as the plain name.
	"x-forwarded-user", "x-forwarded-email", "x-forwarded-group", "x-forwarded-preferred-", "x-remote-user",
	"x-authenticated-user", "x-webauth-", "x-auth-user", "remote-user",
	// Other user and role headers of the same shape.
	"x-remote-", "x-forwarded-role", "x-forwarded-login", "x-forwarded-uid", "x-forwarded-sub", "x-forwarded-id-token",
	"x-original-user",
}

// clientCertPrefixes are the families of client certificate headers,
// Traefik's among them (X-Forwarded-Tls-Client-Cert, -Info).
var clientCertPrefixes = []string{
	"x-ssl-", "ssl-client-", "x-client-cert-", "x-forwarded-client-cert-", "x-forwarded-tls-client-",
}

// StrippedByDefault lists the client headers removed from every proxied
// request unless headers.keep names them (prefixes end in "*"), and
// those removed always. It is what the README's security model lists.
func StrippedByDefault() (keepable, always []string) {
	keepable = slices.Clone(strippedNames)
	for _, p := range strippedPrefixes {
		keepable = append(keepable, p+"*")
	}
	return keepable, slices.Clone(alwaysStripped)
}

func strippedByDefault(norm string) bool {
	if slices.Contains(normStrippedNames, norm) {
		return true
	}
	for _, p := range normStrippedPrefixes {
		if strings.HasPrefix(norm, p) {
			return true
		}
	}
	return false
}

// The lists above in their normal form.
var (
	normAlwaysStripped     = normalizeAll(alwaysStripped)
	normStrippedNames      = normalizeAll(strippedNames)
	normStrippedPrefixes   = normalizeAll(strippedPrefixes)
	normClientAddressNames = normalizeAll(clientAddressNames)
	normRequestURLNames    = normalizeAll(requestURLNames)
	normClientCertNames    = normalizeAll(clientCertNames)
	normClientCertPrefixes = normalizeAll(clientCertPrefixes)
)

func normalizeAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = NormalizeHeaderName(n)
	}
	return out
}

// stripper deletes identity headers and proxy-trust headers in all their
// spellings (names compared in their normal form, see
// NormalizeHeaderName).
type stripper struct {
	names    map[string]bool   // normalised
	prefixes []string          // normalised
	keep     map[string]string // normalised → the one spelling forwarded (lower case)
	// byLead holds the prefixes of at least leadLen bytes by their first
	// leadLen bytes, short those shorter: a name is compared with the
	// few prefixes that can match it, not with every one.
	byLead map[string][]string
	short  []string
}

// leadLen is how many leading bytes of a normalised name index the
// prefixes.
const leadLen = 3

// newStripper strips names and every header starting with one of
// prefixes (empty prefixes are ignored), except those in keep.
func newStripper(names []string, prefixes []string, keep []string) stripper {
	s := stripper{names: map[string]bool{}, keep: map[string]string{}}
	for _, n := range names {
		s.names[NormalizeHeaderName(n)] = true
	}
	for _, p := range prefixes {
		if p != "" {
			s.prefixes = append(s.prefixes, NormalizeHeaderName(p))
		}
	}
	for _, n := range keep {
		s.keep[NormalizeHeaderName(n)] = strings.ToLower(n)
	}
	s.byLead = map[string][]string{}
	for _, p := range s.prefixes {
		if len(p) < leadLen {
			s.short = append(s.short, p)
		} else {
			s.byLead[p[:leadLen]] = append(s.byLead[p[:leadLen]], p)
		}
	}
	return s
}

// stripperFor builds the stripper of a configuration: the identity
// headers, the configured prefix, the built-in proxy-trust headers and
// headers.strip, less headers.keep (never the identity headers or the
// always-stripped ones).
func stripperFor(h HeaderConfig, identity []string) stripper {
	names := append(slices.Clone(identity), alwaysStripped...)
	names = append(names, strippedNames...) // keep exempts the plain spelling only
	prefixes := append([]string{h.StripPrefix}, strippedPrefixes...)
	for _, n := range h.Strip {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			prefixes = append(prefixes, p)
		} else {
			names = append(names, n)
		}
	}
	var keep []string
	for _, k := range h.Keep {
		n := NormalizeHeaderName(k)
		if !slices.Contains(normAlwaysStripped, n) && !slices.ContainsFunc(identity, func(id string) bool { return NormalizeHeaderName(id) == n }) &&
			!strings.HasPrefix(n, NormalizeHeaderName(h.StripPrefix)) {
			keep = append(keep, k)
		}
	}
	return newStripper(names, prefixes, keep)
}

func (s stripper) strip(h http.Header) {
	var buf [96]byte // folds most names without allocating
	for name := range h {
		var n []byte
		if len(name) <= len(buf) {
			n = buf[:fold(buf[:len(name)], name)]
		} else {
			n = []byte(NormalizeHeaderName(name))
		}
		if s.names[string(n)] || s.hasPrefix(string(n)) {
			if kept, ok := s.keep[string(n)]; !ok || !strings.EqualFold(name, kept) {
				delete(h, name)
			}
		}
	}
}

func (s stripper) hasPrefix(n string) bool {
	for _, p := range s.short {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	if len(n) < leadLen {
		return false
	}
	for _, p := range s.byLead[n[:leadLen]] {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// fold writes the normal form of name into dst, which has its length,
// and returns the length of the normal form.
func fold(dst []byte, name string) int {
	n := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'A' && c <= 'Z':
			dst[n] = c + ('a' - 'A')
			n++
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			dst[n] = c
			n++
		}
	}
	return n
}

// stripCookies removes the named cookies (and any cookie whose name starts
// with one of prefixes) from the Cookie header, keeping every other
// cookie byte for byte. A Cookie header with several lines is joined into
// one when it changes.
func stripCookies(h http.Header, names []string, prefixes []string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	// A first pass finds whether anything goes and how long the rest is.
	changed, size, kept := false, 0, 0
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			if ours(cookieName(p), names, prefixes) {
				changed = true
				continue
			}
			size += len(p)
			kept++
		}
	}
	if !changed && len(lines) == 1 {
		return
	}
	if kept == 0 {
		delete(h, "Cookie")
		return
	}
	var b strings.Builder
	b.Grow(size + 2*(kept-1))
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" || ours(cookieName(p), names, prefixes) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
	}
	h["Cookie"] = []string{b.String()}
}

// cookieName is the name of a cookie-pair ("name=value"), trimmed.
func cookieName(pair string) string {
	name, _, _ := strings.Cut(pair, "=")
	return strings.TrimSpace(name)
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
