package test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkOIDCLogins compares, in one run and one gatehouse, the
// OpenID Connect callback with the SAML ACS for a repeat login of an
// unchanged user, one login at a time: for OIDC, from the callback's
// arrival to the session cookie, which includes the token request to the
// provider (oidc-provider under Node.js, on this machine) and the ID
// token's verification; for SAML, the POST of a signed response to the
// ACS. The logins are started (and, at the provider, authorized)
// beforehand, so only gatehouse's side is timed. Three interleaved rounds;
// the median is reported.
func BenchmarkOIDCLogins(b *testing.B) {
	// With two IdPs a page shows the chooser; the SAML login starts at
	// the login endpoint with the IdP named, as the chooser's link does.
	const samlStart = "/.gatehouse/login?idp=corp&return=/"
	h := newHarness(b, options{realTime: true, oidc: opFor(), warningsOnly: true})
	h.upstream.discard = true
	const n = 60
	// First logins, so that the rounds are repeat logins.
	first := h.browser()
	if code, _ := getPage(b, first, h.oidcLogin(first, "op-sub-ann", "/")); code != http.StatusOK {
		b.Fatalf("first OIDC login: %d", code)
	}
	readResp(b, h.login(h.browser(), samlStart, alice))
	oidcRound := func() time.Duration {
		type pending struct {
			browser *http.Client
			cb      string
		}
		logins := make([]pending, n)
		for i := range logins {
			c := h.browser()
			logins[i] = pending{c, h.oidcLogin(c, "op-sub-ann", "/")}
		}
		start := time.Now()
		for _, l := range logins {
			resp, err := l.browser.Get(l.cb)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("OIDC callback: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		return time.Since(start) / n
	}
	samlRound := func() time.Duration {
		type pending struct {
			browser *http.Client
			doc     []byte
			relay   string
		}
		logins := make([]pending, n)
		for i := range logins {
			c := h.browser()
			id, relay := h.startLogin(c, samlStart)
			logins[i] = pending{c, h.signedResponse(h.spec(alice, id)), relay}
		}
		start := time.Now()
		for _, l := range logins {
			readResp(b, h.post(l.browser, l.doc, l.relay))
		}
		return time.Since(start) / n
	}
	b.ResetTimer()
	var o, s []time.Duration
	for range 3 {
		o = append(o, oidcRound())
		s = append(s, samlRound())
	}
	med := func(d []time.Duration) time.Duration {
		x := append([]time.Duration(nil), d...)
		for i := range x {
			for j := i + 1; j < len(x); j++ {
				if x[j] < x[i] {
					x[i], x[j] = x[j], x[i]
				}
			}
		}
		return x[len(x)/2]
	}
	om, sm := med(o), med(s)
	b.ReportMetric(float64(om.Microseconds()), "oidc-µs/login")
	b.ReportMetric(float64(sm.Microseconds()), "saml-µs/login")
	b.ReportMetric(float64(om)/float64(sm), "oidc/saml")
	fmt.Printf("OIDC callback %v per login (with the provider's token endpoint), SAML ACS %v per login, ratio %.2f (rounds: %v / %v)\n",
		om.Round(time.Microsecond), sm.Round(time.Microsecond), float64(om)/float64(sm), o, s)
}
