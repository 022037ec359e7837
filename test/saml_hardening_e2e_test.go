package test

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Regression tests for the SAML and session items of issue 15.

// refusals returns the reasons of the logged refusals.
func (h *harness) refusals() []string {
	var out []string
	for _, e := range h.logs.FilterMessage("request refused").All() {
		out = append(out, fmt.Sprint(e.ContextMap()["reason"]))
	}
	return out
}

// TestLogoutNeedsSameOriginPOST: a GET, or a POST that does not say it
// comes from gatehouse's own origin, shows the confirmation page and
// leaves the session alone; a same-origin POST logs out.
func TestLogoutNeedsSameOriginPOST(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		header http.Header
		out    bool
	}{
		{"cross-site top-level GET", http.MethodGet, http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"GET from the same origin", http.MethodGet, http.Header{"Sec-Fetch-Site": {"same-origin"}}, false},
		{"HEAD", http.MethodHead, nil, false},
		{"POST from another origin", http.MethodPost, http.Header{"Origin": {"https://evil.example"}}, false},
		{"POST with Origin null", http.MethodPost, http.Header{"Origin": {"null"}}, false},
		{"POST with Origin null from a cross-site frame", http.MethodPost, http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"cross-site"}}, false},
		{"POST with Origin null from a same-origin no-referrer page", http.MethodPost, http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"POST cross-site by Sec-Fetch-Site", http.MethodPost, http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"POST same-site but another origin", http.MethodPost, http.Header{"Sec-Fetch-Site": {"same-site"}}, false},
		{"POST with a foreign Referer", http.MethodPost, http.Header{"Referer": {"https://evil.example/page"}}, false},
		{"POST saying nothing", http.MethodPost, nil, false},
		{"POST from the same origin", http.MethodPost, nil, true}, // Origin set below
		{"POST same-origin by Sec-Fetch-Site", http.MethodPost, http.Header{"Sec-Fetch-Site": {"same-origin"}}, true},
		{"POST with a same-origin Referer", http.MethodPost, nil, true}, // Referer set below
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{})
			c := h.browser()
			readResp(t, h.login(c, "/", alice))
			header := tc.header.Clone()
			switch tc.name {
			case "POST from the same origin":
				header = http.Header{"Origin": {h.base}}
			case "POST with a same-origin Referer":
				header = http.Header{"Referer": {h.base + "/.gatehouse/logout"}}
			}
			req, _ := http.NewRequest(tc.method, h.base+"/.gatehouse/logout", nil)
			req.Header.Set("Accept", "text/html")
			for k, v := range header {
				req.Header[k] = v
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			code, _ := h.get(c, "/home", http.Header{"Accept": {"application/json"}})
			if out := code == http.StatusUnauthorized; out != tc.out {
				t.Fatalf("logged out = %v, want %v (%d %s)", out, tc.out, resp.StatusCode, body)
			}
			if !tc.out && tc.method != http.MethodHead && !strings.Contains(body, `<form method="post" action="/.gatehouse/logout">`) {
				t.Errorf("no confirmation form:\n%s", body)
			}
		})
	}
}

// TestReturnPathCanonicalised: the return path a login ends on is
// canonical (dot segments and repeated slashes resolved), and never
// under the reserved prefix however it is spelled.
func TestReturnPathCanonicalised(t *testing.T) {
	for ret, want := range map[string]string{
		"/x/../.gatehouse/logout":     "/",
		"/.GATEHOUSE/logout":          "/",
		"/.Gatehouse/saml/acs":        "/",
		"/x/%2e%2e/.gatehouse/logout": "/",
		"/%2e%2e/.gatehouse/logout":   "/",
		"/x/..%2f.gatehouse/logout":   "/",
		"/.gatehouse;x=1/logout":      "/",
		"/.gatehouse/./logout":        "/",
		"/a/.././/.gatehouse/logout":  "/",
		"/.gatehouse%2flogout":        "/",
		"/%252e%252e/x":               "/",
		"/a\\..\\.gatehouse/logout":   "/",
		"//evil.example/x":            "/",
		"/reports//2024/./q":          "/reports/2024/q",
		"/a/b/../c?x=/../y":           "/a/c",
		"/app;jsessionid=1/page":      "/app;jsessionid=1/page",
	} {
		t.Run(ret, func(t *testing.T) {
			h := newHarness(t, options{})
			var final string
			h.upstream.handler = func(w http.ResponseWriter, r *http.Request) { final = r.URL.RequestURI() }
			resp := h.login(h.browser(), "/.gatehouse/login?return="+url.QueryEscape(ret), alice)
			readAll(t, resp)
			if got, _, _ := strings.Cut(final, "?"); got != want {
				t.Errorf("return %q landed on %q, want %q", ret, final, want)
			}
		})
	}
}

// TestPendingLoginCookiesBounded: a browser that starts many logins
// without finishing them holds a few login cookies, not one per login,
// and its last login still completes (no 431 at the ACS).
func TestPendingLoginCookiesBounded(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	var id, relay string
	for range 60 {
		id, relay = h.startLogin(c, "/")
	}
	u, _ := url.Parse(h.base)
	n := 0
	for _, ck := range c.Jar.Cookies(u) {
		if strings.Contains(ck.Name, "gatehouse_login_") {
			n++
		}
	}
	if n > 4 {
		t.Errorf("the browser holds %d login cookies after 60 login starts, want at most 4", n)
	}
	if resp := h.post(c, h.signedResponse(h.spec(alice, id)), relay); !strings.Contains(readAll(t, resp), "user=alice") {
		t.Fatalf("the last login: %d", resp.StatusCode)
	}

	// Logins started in three tabs at once each complete, in any order.
	c = h.browser()
	type pending struct{ id, relay string }
	var tabs []pending
	for range 3 {
		id, relay := h.startLogin(c, "/")
		tabs = append(tabs, pending{id, relay})
	}
	for _, i := range []int{1, 2, 0} {
		if resp := h.post(c, h.signedResponse(h.spec(alice, tabs[i].id)), tabs[i].relay); !strings.Contains(readAll(t, resp), "user=alice") {
			t.Errorf("tab %d's login: %d %v", i, resp.StatusCode, h.refusals())
		}
	}
}

// TestStateCookiesUseHostPrefixWhenSecure: with Secure cookies, the
// pending-login and pending-logout cookies are __Host- cookies (Secure,
// Path=/), which no sibling host can set or shadow.
func TestStateCookiesUseHostPrefixWhenSecure(t *testing.T) {
	h := newHarness(t, options{base: goldenBase, idpSLO: []string{bindingRedirect}})
	_, login := h.pendingLogin(t)
	if !strings.HasPrefix(login.Name, "__Host-") || login.Path != "/" || !login.Secure || login.Domain != "" {
		t.Errorf("login-state cookie %q path %q secure %v", login.Name, login.Path, login.Secure)
	}
	rec := postGolden(t, h, readGolden(t, "valid"), false)
	var sess *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "__Host-gatehouse" {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatalf("no session: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, goldenBase+"/.gatehouse/logout", nil)
	req.Header.Set("Origin", goldenBase)
	req.AddCookie(sess)
	rec = httptest.NewRecorder()
	h.proxy.ServeHTTP(rec, req)
	found := false
	for _, ck := range rec.Result().Cookies() {
		if strings.Contains(ck.Name, "gatehouse_logout") {
			found = true
			if ck.Name != "__Host-gatehouse_logout" || ck.Path != "/" || !ck.Secure {
				t.Errorf("logout cookie %q path %q secure %v", ck.Name, ck.Path, ck.Secure)
			}
		}
	}
	if !found {
		t.Errorf("SP-initiated logout set no logout cookie: %d %v", rec.Code, rec.Result().Cookies())
	}
}

// TestSLOMessageIDsNotReplayed: the same signed LogoutRequest is acted on
// once, with either binding.
func TestSLOMessageIDsNotReplayed(t *testing.T) {
	for _, binding := range []string{bindingRedirect, bindingPOST} {
		t.Run(binding[strings.LastIndex(binding, "-")+1:], func(t *testing.T) {
			h := newHarness(t, options{idpSLO: []string{binding}})
			el := h.idpLogoutMessage("LogoutRequest", logoutRequestFor(alice.nameID))
			var query string
			if binding == bindingRedirect {
				query = redirectQuery(t, "SAMLRequest", el, "", h.idp.key)
			}
			signedXML := serialize(sign(t, el.Copy(), h.idp))
			send := func() int {
				var req *http.Request
				if binding == bindingRedirect {
					req, _ = http.NewRequest(http.MethodGet, h.sloURL()+"?"+query, nil)
				} else {
					form := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(signedXML)}}
					req, _ = http.NewRequest(http.MethodPost, h.sloURL(), strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				req.Header.Set("Accept", "text/html")
				resp, err := h.browser().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := send(); code == http.StatusForbidden {
				t.Fatalf("first LogoutRequest refused: %v", h.refusals())
			}
			if code := send(); code != http.StatusForbidden || !strings.Contains(strings.Join(h.refusals(), " "), "replay") {
				t.Errorf("the same LogoutRequest again: %d %v, want 403 replay", code, h.refusals())
			}
		})
	}
}

// deflatedQuery is an HTTP-Redirect query for raw XML bytes, signed with
// key when given.
func deflatedQuery(t testing.TB, raw []byte, key *rsa.PrivateKey) string {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(raw)
	fw.Close()
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	q += "&SigAlg=" + url.QueryEscape(rsaSHA256)
	sig := make([]byte, 256)
	if key != nil {
		sum := sha256.Sum256([]byte(q))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
	}
	return q + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
}

// elementBomb is a LogoutRequest holding n empty elements.
func elementBomb(n int) []byte {
	return []byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_b" Version="2.0" IssueInstant="2027-01-01T10:00:00Z">` +
		`<saml:Issuer>` + idpEntityID + `</saml:Issuer>` + strings.Repeat("<a/>", n) + `</samlp:LogoutRequest>`)
}

// TestSLORedirectSignatureBeforeInflate: an HTTP-Redirect logout message
// is inflated only once its query signature verifies with a configured
// IdP's key; it must then come from that IdP; and what it inflates to is
// held to the logout message limits.
func TestSLORedirectSignatureBeforeInflate(t *testing.T) {
	h := newHarness(t, options{idpSLO: []string{bindingRedirect}, partner: true})
	get := func(q string) (int, string) {
		h.logs.TakeAll()
		req, _ := http.NewRequest(http.MethodGet, h.sloURL()+"?"+q, nil)
		resp, err := h.browser().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var logged []string
		for _, e := range h.logs.FilterMessage("request refused").All() {
			logged = append(logged, fmt.Sprint(e.ContextMap()["reason"], ": ", e.ContextMap()["error"]))
		}
		return resp.StatusCode, strings.Join(logged, "; ")
	}
	for _, tc := range []struct {
		name, query, want string
	}{
		{"element bomb with a forged signature", deflatedQuery(t, elementBomb(65000), nil), "does not verify"},
		{"element bomb without signature", strings.Split(deflatedQuery(t, elementBomb(65000), nil), "&SigAlg")[0], "not signed"},
		{"element bomb signed by the IdP", deflatedQuery(t, elementBomb(65000), h.idp.key), "size: "},
		{"signed by one IdP, issued as another", deflatedQuery(t, bytes.Replace(elementBomb(1), []byte(idpEntityID), []byte(partnerEntityID), 1), h.idp.key), "signed with the key of corp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, logged := get(tc.query)
			if code != http.StatusForbidden || !strings.Contains(logged, tc.want) {
				t.Errorf("%d %q, want 403 mentioning %q", code, logged, tc.want)
			}
		})
	}
}

// countingBody records how much of a request body was read.
type countingBody struct {
	r io.Reader
	n *int
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}
func (countingBody) Close() error { return nil }

// TestACSWithoutLoginStateRefusedUnread: without a live login state (and
// no IdP that may start logins) the ACS refuses a response without reading
// the body, even when a cookie is named like a login state; with a live
// state that the RelayState does not name, before decoding it.
func TestACSWithoutLoginStateRefusedUnread(t *testing.T) {
	h := newHarness(t, options{base: goldenBase})
	huge := "SAMLResponse=" + strings.Repeat("PHNhbWxwOlJlc3BvbnNl", 60000)
	read := 0
	req := httptest.NewRequest(http.MethodPost, goldenBase+"/.gatehouse/saml/acs", nil)
	req.Body = countingBody{strings.NewReader(huge), &read}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.proxy.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || read != 0 || strings.Join(h.refusals(), " ") != "no_login_state" {
		t.Errorf("no login state: %d, read %d bytes, refusals %v", rec.Code, read, h.refusals())
	}
	for _, forged := range []*http.Cookie{{Name: "__Host-gatehouse_login_0", Value: "x"}, {Name: "__Host-gatehouse_login_3", Value: strings.Repeat("A", 300)}} {
		h.logs.TakeAll()
		read = 0
		req := httptest.NewRequest(http.MethodPost, goldenBase+"/.gatehouse/saml/acs", nil)
		req.Body = countingBody{strings.NewReader(huge), &read}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(forged)
		rec := httptest.NewRecorder()
		h.proxy.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || read != 0 || strings.Join(h.refusals(), " ") != "no_login_state" {
			t.Errorf("a forged login cookie %s: %d, read %d bytes, refusals %v", forged.Name, rec.Code, read, h.refusals())
		}
	}
	_, c := h.pendingLogin(t)
	h.logs.TakeAll()
	if rec := h.postACS(bytes.Repeat([]byte("<a>"), 1000), "wrong-relay-state", c); rec.Code != http.StatusForbidden || strings.Join(h.refusals(), " ") != "no_login_state" {
		t.Errorf("cookie without matching state: %d %v", rec.Code, h.refusals())
	}
}

// TestHostileResponsesRefusedByScan: with a valid login state, responses
// beyond the limits are refused by the scan, with a clear reason, before
// any tree is built.
func TestHostileResponsesRefusedByScan(t *testing.T) {
	h := newHarness(t, options{base: goldenBase})
	valid := string(readGolden(t, "valid"))
	head := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r">`
	for name, tc := range map[string]struct{ doc, reason string }{
		"deep nesting":                {head + strings.Repeat("<a>", 5000) + strings.Repeat("</a>", 5000) + "</samlp:Response>", "size"},
		"many attributes":             {head + "<a" + buildAttrs(5000) + "/></samlp:Response>", "size"},
		"element bomb":                {head + strings.Repeat("<a/>", 100000) + "</samlp:Response>", "size"},
		"elements after a comment":    {head + "<!--" + strings.Repeat("<a/>", 1000) + "-->" + strings.Repeat("<a/>", 13000) + "</samlp:Response>", "structure"}, // no comment is accepted at all
		"elements in an attribute":    {head + `<a x="` + strings.Repeat("&gt;", 10) + `">` + strings.Repeat("<a/>", 13000) + "</a></samlp:Response>", "size"},
		"too large":                   {valid + strings.Repeat(" ", 2<<20), "size"},
		"doctype":                     {`<!DOCTYPE r [<!ENTITY x "y">]>` + valid, "structure"},
		"entity declaration in a DTD": {`<!DOCTYPE r SYSTEM "http://evil.example/x.dtd">` + valid, "structure"},
	} {
		t.Run(name, func(t *testing.T) {
			h.logs.TakeAll()
			relay, c := h.pendingLogin(t)
			rec := h.postACS([]byte(tc.doc), relay, c)
			if reasons := strings.Join(h.refusals(), " "); rec.Code != http.StatusForbidden || reasons != tc.reason {
				t.Errorf("%d %v, want 403 %s", rec.Code, reasons, tc.reason)
			}
		})
	}
}

func buildAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ` a%d="1"`, i)
	}
	return b.String()
}

// TestManyGroupValuesLogIn: a user in 5,000 groups logs in (the XML
// signature library's 1,000-element budget no longer decides), and a
// response beyond the element limit is refused as too large, never with a
// library panic.
func TestManyGroupValuesLogIn(t *testing.T) {
	h := newHarness(t, options{base: goldenBase, proxy: slowStore, storeTimeout: time.Minute})
	many := alice
	many.groups = nil
	for i := range 5000 {
		many.groups = append(many.groups, fmt.Sprintf("group-%05d", i))
	}
	doc := signedAssertion(t, goldenSpec(many, "many-groups"), h.idp)
	if rec := postGolden(t, h, doc, false); rec.Code != http.StatusSeeOther {
		t.Fatalf("a user in 5,000 groups: %d %v", rec.Code, h.refusals())
	}
	if n := h.count(`SELECT count(*) FROM gatehouse_memberships`); n != 5000 {
		t.Errorf("%d memberships, want 5000", n)
	}
	many.groups = append(many.groups, many.groups...)
	many.groups = append(many.groups, many.groups[:3000]...)
	doc = signedAssertion(t, goldenSpec(many, "too-many-groups"), h.idp)
	h.logs.TakeAll()
	if rec := postGolden(t, h, doc, false); rec.Code != http.StatusForbidden || strings.Join(h.refusals(), " ") != "size" {
		t.Errorf("13,000 values: %d %v, want 403 size", rec.Code, h.refusals())
	}
	if p := h.logs.FilterMessageSnippet("panic").All(); len(p) > 0 {
		t.Errorf("logged a panic: %v", p)
	}
}

// TestRevocationsSurviveRestart: a session logged out before a restart
// stays logged out after it (single instance, no Redis), while another
// session of the same user goes on.
func TestRevocationsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, options{base: goldenBase, stateDir: dir})
	login := func(id string) *http.Cookie {
		rec := postGolden(t, h, signedAssertion(t, goldenSpec(alice, id), h.idp), false)
		for _, ck := range rec.Result().Cookies() {
			if ck.Name == "__Host-gatehouse" {
				return ck
			}
		}
		t.Fatalf("login %s: %d %v", id, rec.Code, h.refusals())
		return nil
	}
	out, kept := login("restart-a"), login("restart-b")
	req := httptest.NewRequest(http.MethodPost, goldenBase+"/.gatehouse/logout", nil)
	req.Header.Set("Origin", goldenBase)
	req.AddCookie(out)
	h.proxy.ServeHTTP(httptest.NewRecorder(), req)

	again := newHarness(t, options{base: goldenBase, stateDir: dir, dbPath: h.dbPath})
	get := func(ck *http.Cookie) int {
		req := httptest.NewRequest(http.MethodGet, goldenBase+"/home", nil)
		req.Header.Set("Accept", "application/json")
		req.AddCookie(ck)
		rec := httptest.NewRecorder()
		again.proxy.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := get(kept); code != http.StatusOK {
		t.Fatalf("control: a live session after the restart: %d", code)
	}
	if code := get(out); code != http.StatusUnauthorized {
		t.Errorf("a logged-out cookie after a restart: %d, want 401", code)
	}
}

// TestCookieFromAnotherDeploymentRefused: two deployments that share the
// cookie key (but not the SP entity ID) do not accept each other's
// session cookies.
func TestCookieFromAnotherDeploymentRefused(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	ck := sessionCookie(t, h, c)
	if code := withCookie(t, h, ck, "/home"); code != http.StatusOK {
		t.Fatalf("control: %d", code)
	}
	other := newHarness(t, options{entityID: "https://other.example.test/saml"})
	if code := withCookie(t, other, ck, "/home"); code != http.StatusUnauthorized {
		t.Errorf("a cookie of another deployment with the same key: %d, want 401", code)
	}
}

// TestForgedACSPostKeepsPendingLogin: a cross-site post to the ACS with a
// RelayState that picks the slot of the browser's pending login does not
// end that login.
func TestForgedACSPostKeepsPendingLogin(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	id, relay := h.startLogin(c, "/")
	forged := relay[:1] + strings.Repeat("A", len(relay)-1)
	if forged == relay {
		forged = relay[:1] + strings.Repeat("B", len(relay)-1)
	}
	if resp := h.post(c, h.signedResponse(h.spec(mallory, "_forged")), forged); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged post: %d", resp.StatusCode)
	}
	if resp := h.post(c, h.signedResponse(h.spec(alice, id)), relay); !strings.Contains(readAll(t, resp), "user=alice") {
		t.Errorf("the pending login after a forged post: %d %v", resp.StatusCode, h.refusals())
	}
}

// TestLoginStateServesOneResponse: a login state cookie is good for one
// response, whatever becomes of it. An attacker who keeps the cookie
// after a refusal (the browser would have deleted it) cannot post again
// with it, so every response gatehouse parses costs a login start.
func TestLoginStateServesOneResponse(t *testing.T) {
	h := newHarness(t, options{base: goldenBase})
	relay, cookie := h.pendingLogin(t)
	garbage := []byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r"><a/></samlp:Response>`)
	if rec := h.postACS(garbage, relay, cookie); rec.Code != http.StatusForbidden {
		t.Fatalf("garbage: %d", rec.Code)
	}
	h.logs.TakeAll()
	valid := signedAssertion(t, goldenSpec(alice, "one-use"), h.idp)
	rec := h.postACS(valid, relay, cookie)
	if reasons := strings.Join(h.refusals(), " "); rec.Code != http.StatusForbidden || reasons != "no_login_state" {
		t.Fatalf("second response on one login state: %d %v, want 403 no_login_state", rec.Code, reasons)
	}
	// A fresh login state takes the same response.
	relay, cookie = h.pendingLogin(t)
	if rec := h.postACS(valid, relay, cookie); rec.Code != http.StatusSeeOther {
		t.Fatalf("valid response on a fresh login state: %d %v", rec.Code, h.refusals())
	}
}
