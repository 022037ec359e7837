package proxy

import "gatehouse/session"

// DefaultPrefix is the reserved path prefix. Nothing under it is ever
// proxied.
const DefaultPrefix = "/.gatehouse/"

// Reserved endpoints, relative to the prefix. This is the one table of
// gatehouse's own paths.
const (
	PathMetadata = "saml/metadata"
	PathACS      = "saml/acs"
	PathSLO      = "saml/slo"
	PathLogin    = "login"
	PathLogout   = "logout"
	PathHealthz  = "healthz"
	PathLivez    = "livez" // an alias of healthz
	PathReadyz   = "readyz"
	PathJWKS     = "jwks.json"
	PathSCIM     = "scim/v2/"

	PathOIDCCallback          = "oidc/callback"
	PathOIDCBackchannelLogout = "oidc/backchannel-logout"
	PathOIDCSignedOut         = "oidc/signed-out"
)

// Endpoints returns the SAML endpoints' absolute paths under prefix.
func Endpoints(prefix string) session.Endpoints {
	return session.Endpoints{
		Prefix:   prefix,
		Metadata: prefix + PathMetadata,
		ACS:      prefix + PathACS,
		Login:    prefix + PathLogin,
		Logout:   prefix + PathLogout,
		SLO:      prefix + PathSLO,

		OIDCCallback:          prefix + PathOIDCCallback,
		OIDCBackchannelLogout: prefix + PathOIDCBackchannelLogout,
		OIDCSignedOut:         prefix + PathOIDCSignedOut,
	}
}
