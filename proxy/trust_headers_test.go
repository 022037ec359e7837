package proxy

import "testing"

// TestMoreProxyTrustHeadersStripped: headers Java application servers
// behind WebLogic's plug-in, nginx's client certificate set-up, CDNs and
// Envoy believe are removed from every client request, and none can be
// an identity header (red team, third pass).
func TestMoreProxyTrustHeadersStripped(t *testing.T) {
	for _, name := range []string{
		"WL-Proxy-Client-IP", "Proxy-Client-IP", "WL-Proxy-SSL", "WL-Proxy-Client-Cert",
		"X-SSL-Cert", "X-SSL-Subject", "X-SSL-Issuer", "Ssl-Client-Cert-Chain", "SSL_CLIENT_VERIFY",
		"CloudFront-Forwarded-Proto", "Cf-Visitor", "Fastly-SSL", "X-Forwarded-Https", "X-Original-Proto",
		"CloudFront-Viewer-Address", "X-Forwarded-Client-Ip", "X-Nf-Client-Connection-Ip", "X-Vercel-Forwarded-For",
		"X-Envoy-Original-Path", "X-Envoy-Internal", "X-Script-Name", "Script-Name", "X-Request-Uri",
		"X-Forwarded-Request-Uri", "X-Middleware-Subrequest",
	} {
		if !strippedByDefault(NormalizeHeaderName(name)) {
			t.Errorf("%s is not stripped from clients", name)
		}
		if notIdentityHeader(name) == "" {
			t.Errorf("%s is accepted as an identity header", name)
		}
	}
}

// TestBrowserHeadersAreNoIdentityHeaders: an identity header named after
// what a browser says of a request's origin and intent would replace the
// browser's value on every request and defeat the application's forgery
// checks; such names are refused. Names that merely start alike are not.
func TestBrowserHeadersAreNoIdentityHeaders(t *testing.T) {
	for _, name := range []string{"Origin", "Referer", "Sec-Fetch-Site", "sec_fetch_mode", "Sec-CH-UA", "X-Requested-With",
		"X-XSRF-Token", "X-Csrf-Token", "Destination", "Early-Data", "Cookie2", "Prefer"} {
		if notIdentityHeader(name) == "" {
			t.Errorf("%s is accepted as an identity header", name)
		}
	}
	for _, name := range []string{"X-Security-Level", "Secretariat", "X-Origin-Office", "X-Employee-Id"} {
		if why := notIdentityHeader(name); why != "" {
			t.Errorf("%s is refused: %s", name, why)
		}
	}
}
