package test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"go.uber.org/zap"

	"gatehouse/session"
)

// logoutCookieOf returns the browser's pending-logout cookie, if it holds
// one.
func logoutCookieOf(h *harness, c *http.Client) *http.Cookie {
	u, _ := url.Parse(h.base)
	for _, ck := range c.Jar.Cookies(u) {
		if strings.Contains(ck.Name, "logout") {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	return nil
}

// TestForgedLogoutResponseAfterNewLogin (red team F4): a user signs out,
// the IdP never answers the LogoutRequest, and the user signs in again.
// The new login clears the pending-logout cookie, and a forged (unsigned)
// LogoutResponse, by POST or by the HTTP-Redirect binding, then gets the
// same 403 as in a browser with no pending logout: never "Signed out",
// and the session lives on. A browser that still holds the pending
// cookie beside its live session (a copy kept from before the login) is
// refused the same way, while the genuine signed answer still completes
// the logout.
func TestForgedLogoutResponseAfterNewLogin(t *testing.T) {
	spKey, spCert := spKeyPair(t, t.TempDir(), "sp")
	h := newHarness(t, options{idpSLO: []string{bindingRedirect}, spKeys: []session.SPKey{spKey}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	resp := h.logout(c, http.Header{"Origin": {h.base}})
	resp.Body.Close()
	lr := inflateQuery(t, resp.Header.Get("Location"), "SAMLRequest", spCert)
	pending := logoutCookieOf(h, c)
	if pending == nil {
		t.Fatal("no pending-logout cookie after a logout with single logout")
	}

	// The IdP never answers; the user signs in again.
	id, relay := h.startLogin(c, "/home")
	acs := h.post(c, h.signedResponse(h.spec(alice, id)), relay)
	readAll(t, acs)
	if ck := logoutCookieOf(h, c); ck != nil {
		t.Errorf("the pending-logout cookie outlived the new login: %s", ck.Name)
	}

	forged := func() *etree.Element {
		return h.idpLogoutMessage("LogoutResponse", func(el *etree.Element) {
			el.CreateAttr("InResponseTo", lr.SelectAttrValue("ID", ""))
			el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
		})
	}
	send := func(post bool, extra *http.Cookie) *http.Response {
		var req *http.Request
		if post {
			form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(serialize(forged()))}}
			req, _ = http.NewRequest(http.MethodPost, h.sloURL(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequest(http.MethodGet, h.sloURL()+"?"+redirectQuery(t, "SAMLResponse", forged(), "", nil), nil)
		}
		req.Header.Set("Accept", "text/html")
		if extra != nil {
			req.AddCookie(extra)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		name  string
		post  bool
		extra *http.Cookie
	}{
		{"POST", true, nil}, {"Redirect", false, nil},
		{"POSTWithOldPendingCookie", true, pending}, {"RedirectWithOldPendingCookie", false, pending},
	} {
		h.samlAudit.TakeAll()
		resp := send(tc.post, tc.extra)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "Signed out") {
			t.Errorf("%s: forged LogoutResponse beside a live session: %d, want 403 and not the signed-out page", tc.name, resp.StatusCode)
		}
		if ck := resp.Header.Values("Set-Cookie"); len(ck) > 0 {
			t.Errorf("%s: the forged response set cookies: %q", tc.name, ck)
		}
		if ev := h.samlAudit.FilterField(zap.String("outcome", "unverified")).Len(); ev != 0 {
			t.Errorf("%s: %d single_logout unverified events, want none beside a live session", tc.name, ev)
		}
		if code, _ := h.get(c, "/home", nil); code != http.StatusOK {
			t.Errorf("%s: the session after the forged response: %d, want 200", tc.name, code)
		}
	}

	// The genuine answer, in a browser still holding the pending cookie
	// and no session, completes the logout.
	el := forged()
	req, _ := http.NewRequest(http.MethodGet, h.sloURL()+"?"+redirectQuery(t, "SAMLResponse", el, "", h.idp.key), nil)
	req.Header.Set("Accept", "text/html")
	req.AddCookie(pending)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Signed out") {
		t.Errorf("the IdP's genuine answer: %d, want 200 and the signed-out page", resp.StatusCode)
	}
}

// TestRefusedSAMLResponseAudit (red team F7): every SAML response the ACS
// refuses writes an audit event (event login, outcome refused, the
// reason, the IdP when known, the client address and the request ID),
// with log.level at warn, and without the NameID or anything else of the
// unverified message.
func TestRefusedSAMLResponseAudit(t *testing.T) {
	warn := zap.NewAtomicLevelAt(zap.WarnLevel)
	h := newHarness(t, options{warningsOnly: true})
	type attempt struct {
		name, reason, idp string
		send              func(c *http.Client) *http.Response
	}
	for _, tc := range []attempt{
		{"NoLoginState", "no_login_state", "", func(c *http.Client) *http.Response {
			return h.post(c, h.signedResponse(h.spec(alice, "_nobody-asked")), "")
		}},
		{"Audience", "assertion", "corp", func(c *http.Client) *http.Response {
			return h.login(c, "/", alice, func(s *spec) { s.audience = "https://other.example.test/sp" })
		}},
		{"BadSignature", "validation", "corp", func(c *http.Client) *http.Response {
			id, relay := h.startLogin(c, "/")
			resp, a := respond(h.spec(alice, id))
			return h.post(c, serialize(assemble(resp, sign(t, a, loadSigner(t, "other")))), relay)
		}},
		{"Replay", "replay", "corp", func(c *http.Client) *http.Response {
			id, relay := h.startLogin(c, "/")
			first := h.spec(alice, id)
			readResp(t, h.post(c, h.signedResponse(first), relay))
			other := h.browser()
			id, relay = h.startLogin(other, "/")
			again := h.spec(alice, id)
			again.assertionID = first.assertionID
			return h.post(other, h.signedResponse(again), relay)
		}},
		{"Structure", "structure", "", func(c *http.Client) *http.Response {
			_, relay := h.startLogin(c, "/")
			return h.post(c, []byte("<samlp:Response/>"), relay)
		}},
	} {
		func() {
			h.samlAudit.TakeAll()
			resp := tc.send(h.browser())
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: ACS answer: %d, want 403\n%s", tc.name, resp.StatusCode, body)
				return
			}
			events := h.samlAudit.FilterMessage("login").All()
			if len(events) != 1 {
				t.Errorf("%s: login audit events: %v, want 1", tc.name, h.samlAudit.All())
				return
			}
			want := map[string]any{"outcome": "refused", "reason": nil, "client_ip": "127.0.0.1", "request_id": resp.Header.Get("X-Request-Id")}
			if tc.reason != "" {
				want["reason"] = tc.reason
			}
			if tc.idp != "" {
				want["idp"] = tc.idp
			}
			checkAudit(t, events, warn, "login", "refused", want)
			got := events[0].ContextMap()
			if _, ok := got["idp"]; tc.idp == "" && ok {
				t.Errorf("%s: idp %v named for a response of no known login", tc.name, got["idp"])
			}
			for k, v := range got {
				if s, ok := v.(string); k == "name_id" || (ok && strings.Contains(s, alice.nameID)) {
					t.Errorf("%s: the audit event holds the unverified NameID in %s: %v", tc.name, k, got)
				}
			}
		}()
	}
}

// TestUnavailableIdPLoginIsWarning (red team F7): an anonymous login at
// an IdP whose metadata is not loaded gets the 503 page and writes a
// warning, not an error: anyone can send such requests, and operators
// learn of the IdP from the metrics and readiness.
func TestUnavailableIdPLoginIsWarning(t *testing.T) {
	h := newHarness(t, options{sp: func(c *session.Config) {
		c.IdPs = append(c.IdPs, session.IdP{Name: "broken", EntityID: "https://broken.example.test/idp",
			MetadataURL: "https://127.0.0.1:1/metadata", MetadataUnsigned: true})
	}})
	for range 3 {
		code, _ := h.get(h.browser(), "/.gatehouse/login?idp=broken", http.Header{"Accept": {"text/html"}})
		if code != http.StatusServiceUnavailable {
			t.Fatalf("login at an IdP without metadata: %d, want 503", code)
		}
	}
	refused := h.logs.FilterMessage("request refused").FilterField(zap.String("reason", "metadata")).All()
	if len(refused) != 3 {
		t.Fatalf("request refused lines: %d, want 3", len(refused))
	}
	for _, e := range refused {
		if e.Level != zap.WarnLevel {
			t.Errorf("login at an IdP without metadata logged at %s, want warn", e.Level)
		}
	}
}

// TestClientValuesBoundedInErrors (red team F3c): a value from the
// request quoted in an error text (the idp hint, an SLO SigAlg, a logout's
// Origin header) is cut to a short prefix with its length, so a client
// does not choose the size of a log line.
func TestClientValuesBoundedInErrors(t *testing.T) {
	h := newHarness(t, options{idpSLO: []string{bindingRedirect}})
	long := strings.Repeat("A", 15000)
	send := func(req *http.Request) {
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
	}
	check := func(name, message string) {
		t.Helper()
		lines := h.logs.FilterMessage(message).All()
		if len(lines) != 1 {
			t.Errorf("%s: %d %q lines, want 1", name, len(lines), message)
			return
		}
		e, _ := lines[0].ContextMap()["error"].(string)
		if !strings.Contains(e, "AAAA") || !strings.Contains(e, "bytes)") || len(e) > 400 {
			t.Errorf("%s: error text of %d bytes, want a short quoted prefix and the length: %.500s", name, len(e), e)
		}
	}

	h.logs.TakeAll()
	req, _ := http.NewRequest(http.MethodGet, h.base+"/.gatehouse/login?idp="+strings.Repeat("A", 60000), nil)
	send(req)
	check("idp hint", "request refused")

	h.logs.TakeAll()
	el := h.idpLogoutMessage("LogoutResponse", nil)
	q := redirectQuery(t, "SAMLResponse", el, "", nil) + "&SigAlg=" + long + "&Signature=AAAA"
	req, _ = http.NewRequest(http.MethodGet, h.sloURL()+"?"+q, nil)
	send(req)
	check("SigAlg", "request refused")

	h.logs.TakeAll()
	req, _ = http.NewRequest(http.MethodPost, h.base+"/.gatehouse/logout", nil)
	req.Header.Set("Origin", "https://"+strings.Repeat("A", 60000))
	send(req)
	check("Origin", "logout refused")
}
