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
