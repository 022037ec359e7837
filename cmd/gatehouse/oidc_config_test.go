package main

import (
	"strings"
	"testing"
)

// oidcIdP is an OpenID provider entry appended to goodConfig's idps.
const oidcIdP = `  - name: partner
    kind: oidc
    issuer: https://op.example.test
    client_id: gatehouse
    client_secret: ${TEST_OIDC_SECRET}
    scopes: [openid, email]
    mapping:
      user_name: preferred_username
`

// TestOIDCIdPConfig: an OpenID provider beside a SAML IdP decodes and
// validates; its client secret is read from the environment, and a
// literal one, a SAML-only key, an HMAC algorithm or a missing issuer is
// a problem at its key.
func TestOIDCIdPConfig(t *testing.T) {
	withOIDC := func(idp string) string {
		return strings.Replace(goodConfig, "store:\n", idp+"store:\n", 1)
	}
	env := map[string]string{"TEST_GATEHOUSE_KEY": testEnv["TEST_GATEHOUSE_KEY"], "TEST_OIDC_SECRET": "s3cret"}
	if lines := configProblems(t, withOIDC(oidcIdP), env); len(lines) != 0 {
		t.Fatalf("sound config: %v", lines)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"literal secret": {"${TEST_OIDC_SECRET}", "s3cret", "idps[1].client_secret: must be an environment reference"},
		"unset secret":   {"${TEST_OIDC_SECRET}", "${TEST_OIDC_UNSET}", "TEST_OIDC_UNSET is not set"},
		"saml key":       {"    client_id: gatehouse\n", "    client_id: gatehouse\n    allow_idp_initiated: true\n", "idps[1].allow_idp_initiated: a SAML setting"},
		"hmac":           {"    scopes:", "    id_token_signing_algs: [HS256]\n    scopes:", "HS256 is an HMAC"},
		"no issuer":      {"    issuer: https://op.example.test\n", "", "idps[1].issuer: required for kind oidc"},
	} {
		lines := configProblems(t, withOIDC(strings.Replace(oidcIdP, tc.from, tc.to, 1)), env)
		if !strings.Contains(strings.Join(lines, "\n"), tc.want) {
			t.Errorf("%s: %v, want %q", name, lines, tc.want)
		}
	}
}
