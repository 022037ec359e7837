package proxy

import (
	"strings"
	"testing"
)

// TestIdentityHeaderRefusesHopByHopAndTrustNames: an identity header
// named Connection, Forwarded or X-Real-IP (in any spelling that folds to
// it) would let IdP or SCIM data decide which headers a hop drops or who
// the client is. Configuration refuses such a name at its key, for
// headers.extra, the built-in header settings and signed_identity.header
// alike. (Before, headers.extra.Connection: email was accepted and the
// application received Connection: <the user's email>.)
func TestIdentityHeaderRefusesHopByHopAndTrustNames(t *testing.T) {
	for _, name := range []string{
		"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
		"TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Content-Type",
		"Cookie", "Authorization", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-IP", "x_real_ip", "CONNECTION", "X-HTTP-Method-Override",
	} {
		t.Run("Extra"+name, func(t *testing.T) {
			cfg := Config{Upstream: "http://app:8080", Headers: HeaderConfig{Extra: map[string]string{name: "email"}}}
			assertProblem(t, cfg, "headers.extra."+name+": ")
		})
	}
	for _, tc := range []struct {
		name string
		h    HeaderConfig
		want string
	}{
		{"User", HeaderConfig{User: "Connection"}, "headers.user: Connection is a hop-by-hop header"},
		{"Email", HeaderConfig{Email: "Forwarded"}, "headers.email: Forwarded is a forwarding"},
		{"Groups", HeaderConfig{Groups: "Cookie"}, "headers.groups: Cookie is a header that frames"},
		{"PreferredUsername", HeaderConfig{PreferredUsername: "X_Real_IP"}, "headers.preferred_username: X_Real_IP is a proxy-trust header"},
		{"DisplayName", HeaderConfig{DisplayName: "transfer-encoding"}, "headers.display_name: transfer-encoding is a hop-by-hop header"},
	} {
		t.Run("Builtin"+tc.name, func(t *testing.T) {
			assertProblem(t, Config{Upstream: "http://app:8080", Headers: tc.h}, tc.want)
		})
	}
	t.Run("SignedIdentity", func(t *testing.T) {
		cfg := Config{Upstream: "http://app:8080", SignedIdentity: &SignedIdentityConfig{Header: "Authorization"}}
		assertProblem(t, cfg, "signed_identity.header: Authorization is a header that frames")
	})
	ok := Config{Upstream: "http://app:8080", Headers: HeaderConfig{Extra: map[string]string{"X-Dept": "department", "X-Connection-Id": "id", "X-Host-Name": "display_name"}}}
	if err := ok.WithDefaults().Validate(); err != nil {
		t.Errorf("Validate(ordinary names) = %v", err)
	}
}

func assertProblem(t *testing.T, cfg Config, want string) {
	t.Helper()
	for _, e := range cfg.WithDefaults().Problems() {
		if strings.HasPrefix(e.Error(), want) {
			return
		}
	}
	t.Errorf("Problems() = %v, want one starting %q", cfg.WithDefaults().Problems(), want)
}

// TestIdentityHeaderRefusesStrippedTrustAndFramingNames: every header
// gatehouse strips from clients because applications trust it (the
// client's address, the URL, host, port or scheme it asked for, a client
// certificate) and every header that frames or conditions the request
// (Content-*, Expect, Range, If-*, Via, Max-Forwards, Trailers) is
// refused as an identity header name, in any spelling. Before, an IdP
// value reached the application as X-Client-Ip, X-Original-Url or
// Content-Encoding. The user headers of the same lists stay allowed:
// they are what an identity header is.
func TestIdentityHeaderRefusesStrippedTrustAndFramingNames(t *testing.T) {
	refused := []string{
		"X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "X-Envoy-External-Address", "x_client_ip",
		"X-Original-URL", "X.Original.URL", "X-Rewrite-URL", "X-Forwarded-Port", "X-Forwarded-Prefix",
		"X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded", "Forwarded-For", "Front-End-Https",
		"X-Forwarded-Client-Cert", "Ssl-Client-Verify", "X-Forwarded-Tls-Client-Cert-Info", "X-Ssl-Client-S-Dn",
		"Content-Encoding", "Content-Range", "Content-Language", "Content-Disposition", "Content-Anything",
		"ContentEncoding", "content_md5", "Expect", "Range", "If", "If-Match", "If-None-Match",
		"If_Modified_Since", "IfMatch", "If-Anything", "Via", "Max-Forwards", "Trailer", "Trailers",
	}
	for _, list := range [][]string{clientAddressNames, requestURLNames, clientCertNames} {
		refused = append(refused, list...)
	}
	for _, p := range clientCertPrefixes {
		refused = append(refused, p+"info")
	}
	for _, name := range refused {
		t.Run("Extra"+name, func(t *testing.T) {
			cfg := Config{Upstream: "http://app:8080", Headers: HeaderConfig{Extra: map[string]string{name: "email"}}}
			assertProblem(t, cfg, "headers.extra."+name+": ")
		})
	}
	for _, tc := range []struct {
		name string
		h    HeaderConfig
		want string
	}{
		{"User", HeaderConfig{User: "X-Original-URL"}, "headers.user: X-Original-URL is a proxy-trust header naming the URL"},
		{"Email", HeaderConfig{Email: "X-Client-IP"}, "headers.email: X-Client-IP is a proxy-trust header naming the client's address"},
		{"Groups", HeaderConfig{Groups: "Content-Encoding"}, "headers.groups: Content-Encoding is a Content-* header"},
		{"PreferredUsername", HeaderConfig{PreferredUsername: "If_None_Match"}, "headers.preferred_username: If_None_Match is a conditional"},
		{"DisplayName", HeaderConfig{DisplayName: "Ssl-Client-S-Dn"}, "headers.display_name: Ssl-Client-S-Dn is a proxy-trust header carrying a client certificate"},
		{"DisplayNameVia", HeaderConfig{DisplayName: "Via"}, "headers.display_name: Via is a hop-by-hop header"},
	} {
		t.Run("Builtin"+tc.name, func(t *testing.T) {
			assertProblem(t, Config{Upstream: "http://app:8080", Headers: tc.h}, tc.want)
		})
	}
	t.Run("SignedIdentity", func(t *testing.T) {
		cfg := Config{Upstream: "http://app:8080", SignedIdentity: &SignedIdentityConfig{Header: "X-Forwarded-Client-Cert"}}
		assertProblem(t, cfg, "signed_identity.header: X-Forwarded-Client-Cert is a proxy-trust header")
	})

	// The user headers gatehouse strips are the ones it may set.
	allowed := []string{"X-Content-Owner", "X-If-Match-Id", "Ifa-Id", "X-Ranges", "X-Via-User"}
	allowed = append(allowed, authenticatedUserNames...)
	for _, p := range authenticatedUserPrefixes {
		allowed = append(allowed, p+"x")
	}
	for _, name := range allowed {
		if why := notIdentityHeader(name); why != "" {
			t.Errorf("notIdentityHeader(%q) = %q, want an identity header name", name, why)
		}
	}
}
