package test

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/zap"

	"gatehouse/session"
)

const (
	bindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	bindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	rsaSHA256       = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
)

func (h *harness) sloURL() string { return h.base + "/.gatehouse/saml/slo" }

// logout posts to the logout endpoint as a browser would from the
// confirmation page, with the given headers (Origin and the like).
func (h *harness) logout(c *http.Client, header http.Header) *http.Response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/.gatehouse/logout", nil)
	req.Header.Set("Accept", "text/html")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// idpLogoutMessage is a LogoutRequest or LogoutResponse from the test IdP.
func (h *harness) idpLogoutMessage(tag string, change func(*etree.Element)) *etree.Element {
	n := h.seq.Add(1)
	el := etree.NewElement("samlp:" + tag)
	el.CreateAttr("xmlns:samlp", nsProtocol)
	el.CreateAttr("xmlns:saml", nsAssertion)
	el.CreateAttr("ID", fmt.Sprintf("_idp-logout-%d", n))
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("IssueInstant", h.clock.Now().UTC().Format(time.RFC3339))
	el.CreateAttr("Destination", h.sloURL())
	el.CreateElement("saml:Issuer").SetText(idpEntityID)
	if change != nil {
		change(el)
	}
	return el
}

func logoutRequestFor(nameID string, indexes ...string) func(*etree.Element) {
	return func(el *etree.Element) {
		el.CreateElement("saml:NameID").SetText(nameID)
		for _, i := range indexes {
			el.CreateElement("samlp:SessionIndex").SetText(i)
		}
	}
}

// redirectQuery encodes a message for the HTTP-Redirect binding and signs
// the query with key (nil: unsigned).
func redirectQuery(t *testing.T, param string, el *etree.Element, relay string, key *rsa.PrivateKey) string {
	t.Helper()
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(serialize(el))
	fw.Close()
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	if key != nil {
		q += "&SigAlg=" + url.QueryEscape(rsaSHA256)
		sum := sha256.Sum256([]byte(q))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	return q
}

// inflateQuery reads a message gatehouse sent with the HTTP-Redirect
// binding and checks its query signature with cert (nil: must be unsigned).
func inflateQuery(t *testing.T, loc string, param string, cert *x509.Certificate) *etree.Element {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(u.Query().Get(param))
	b, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("%s does not inflate: %v", param, err)
	}
	if cert != nil {
		signed, _, _ := strings.Cut(u.RawQuery, "&Signature=")
		sig, _ := base64.StdEncoding.DecodeString(u.Query().Get("Signature"))
		sum := sha256.Sum256([]byte(signed))
		if u.Query().Get("SigAlg") != rsaSHA256 || rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, sum[:], sig) != nil {
			t.Fatalf("query signature does not verify with the SP certificate: %s", u.RawQuery)
		}
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

// sessionCookie returns a copy of the browser's session cookie, as a thief
// would keep it.
func sessionCookie(t *testing.T, h *harness, c *http.Client) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(h.base)
	for _, ck := range c.Jar.Cookies(u) {
		if strings.Contains(ck.Name, "gatehouse") && !strings.Contains(ck.Name, "gatehouse_") {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// withCookie requests path with only the given session cookie.
func withCookie(t *testing.T, h *harness, ck *http.Cookie, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSPInitiatedSingleLogout: logout ends the session here at once (a
// copy of its cookie is dead too), sends the IdP a signed LogoutRequest
// naming the NameID and SessionIndex, and completes the logout only with
// the signed LogoutResponse that answers it. A response that fails its
// checks gets the signed-out page in this browser (whose session had
// already ended) and changes nothing: the genuine answer still completes
// the logout afterwards.
func TestSPInitiatedSingleLogout(t *testing.T) {
	spKey, spCert := spKeyPair(t, t.TempDir(), "sp")
	h := newHarness(t, options{idpSLO: []string{bindingRedirect}, spKeys: []session.SPKey{spKey}})
	c := h.browser()
	id, relay := h.startLogin(c, "/")
	s := h.spec(alice, id)
	readResp(t, h.post(c, h.signedResponse(s), relay))
	stolen := sessionCookie(t, h, c)

	resp := h.logout(c, http.Header{"Origin": {h.base}})
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, idpSLOURL+"?") {
		t.Fatalf("logout: %d to %q, want a redirect to the IdP's SLO", resp.StatusCode, loc)
	}
	lr := inflateQuery(t, loc, "SAMLRequest", spCert)
	if lr.Tag != "LogoutRequest" || lr.SelectElement("NameID").Text() != alice.nameID || lr.SelectElement("NameID").SelectAttrValue("Format", "") != fmtPersist ||
		lr.SelectElement("SessionIndex").Text() != s.sessionIndex || lr.SelectAttrValue("Destination", "") != idpSLOURL {
		t.Errorf("LogoutRequest: %s", serialize(lr))
	}
	if code := withCookie(t, h, stolen, "/home"); code != http.StatusUnauthorized {
		t.Errorf("a copy of the session cookie after logout: %d, want 401", code)
	}

	answer := func(change func(*etree.Element), key *rsa.PrivateKey) *http.Response {
		el := h.idpLogoutMessage("LogoutResponse", func(el *etree.Element) {
			el.CreateAttr("InResponseTo", lr.SelectAttrValue("ID", ""))
			el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
			if change != nil {
				change(el)
			}
		})
		req, _ := http.NewRequest(http.MethodGet, h.sloURL()+"?"+redirectQuery(t, "SAMLResponse", el, "", key), nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for name, tc := range map[string]struct {
		change func(*etree.Element)
		key    *rsa.PrivateKey
	}{
		"Unsigned":          {nil, nil},
		"SignedByOther":     {nil, loadSigner(t, "other").key},
		"WrongInResponseTo": {func(el *etree.Element) { el.RemoveAttr("InResponseTo"); el.CreateAttr("InResponseTo", "_other") }, h.idp.key},
		"WrongDestination": {func(el *etree.Element) {
			el.RemoveAttr("Destination")
			el.CreateAttr("Destination", "https://evil.example.test/slo")
		}, h.idp.key},
	} {
		if resp := answer(tc.change, tc.key); resp.StatusCode != http.StatusOK || !strings.Contains(readAll(t, resp), "Signed out") {
			t.Errorf("%s LogoutResponse after this browser's logout: %d, want 200 and the signed-out page", name, resp.StatusCode)
		}
	}
	if n := h.logs.FilterMessageSnippet("unverified LogoutResponse").Len(); n != 4 {
		t.Errorf("unverified LogoutResponses logged: %d, want 4", n)
	}
	if code := withCookie(t, h, stolen, "/home"); code != http.StatusUnauthorized {
		t.Errorf("a copy of the session cookie after unverified responses: %d, want 401", code)
	}
	resp = answer(nil, h.idp.key)
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Signed out") {
		t.Fatalf("the IdP's answer: %d %s", resp.StatusCode, body)
	}
	if resp := answer(nil, h.idp.key); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the same LogoutResponse again: %d, want 403 (the pending logout is used up)", resp.StatusCode)
	}
}

// TestIdPInitiatedSingleLogout: a signed LogoutRequest ends the sessions
// it names, on this instance and for any copy of their cookies, and is
// answered with a signed LogoutResponse; a session it does not name goes
// on; without a SessionIndex every session of the NameID ends.
func TestIdPInitiatedSingleLogout(t *testing.T) {
	for _, binding := range []string{bindingRedirect, bindingPOST} {
		t.Run(binding[strings.LastIndex(binding, "-")+1:], func(t *testing.T) {
			spKey, spCert := spKeyPair(t, t.TempDir(), "sp")
			h := newHarness(t, options{idpSLO: []string{binding}, spKeys: []session.SPKey{spKey}})
			login := func() (*http.Client, string) {
				c := h.browser()
				id, relay := h.startLogin(c, "/")
				s := h.spec(alice, id)
				readResp(t, h.post(c, h.signedResponse(s), relay))
				return c, s.sessionIndex
			}
			a, indexA := login()
			b, _ := login()
			copyA, copyB := sessionCookie(t, h, a), sessionCookie(t, h, b)

			send := func(c *http.Client, el *etree.Element, key *signer) *http.Response {
				var req *http.Request
				if binding == bindingRedirect {
					var k *rsa.PrivateKey
					if key != nil {
						k = key.key
					}
					req, _ = http.NewRequest(http.MethodGet, h.sloURL()+"?"+redirectQuery(t, "SAMLRequest", el, "relay-1", k), nil)
				} else {
					if key != nil {
						el = sign(t, el, *key)
					}
					form := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(serialize(el))}, "RelayState": {"relay-1"}}
					req, _ = http.NewRequest(http.MethodPost, h.sloURL(), strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				req.Header.Set("Accept", "text/html")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			other := loadSigner(t, "other")
			for name, tc := range map[string]struct {
				el  *etree.Element
				key *signer
			}{
				"Unsigned":      {h.idpLogoutMessage("LogoutRequest", logoutRequestFor(alice.nameID, indexA)), nil},
				"SignedByOther": {h.idpLogoutMessage("LogoutRequest", logoutRequestFor(alice.nameID, indexA)), &other},
				"Expired": {h.idpLogoutMessage("LogoutRequest", func(el *etree.Element) {
					el.CreateAttr("NotOnOrAfter", h.clock.Now().Add(-10*time.Minute).UTC().Format(time.RFC3339))
					logoutRequestFor(alice.nameID, indexA)(el)
				}), &h.idp},
				"WrongDestination": {h.idpLogoutMessage("LogoutRequest", func(el *etree.Element) {
					el.RemoveAttr("Destination")
					el.CreateAttr("Destination", "https://other-sp.example.test/slo")
					logoutRequestFor(alice.nameID, indexA)(el)
				}), &h.idp},
			} {
				if resp := send(h.browser(), tc.el, tc.key); resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s LogoutRequest: %d, want 403", name, resp.StatusCode)
				}
			}
			if withCookie(t, h, copyA, "/home") != http.StatusOK {
				t.Fatal("a refused LogoutRequest ended the session")
			}

			lr := h.idpLogoutMessage("LogoutRequest", logoutRequestFor(alice.nameID, indexA))
			resp := send(a, lr, &h.idp)
			body := readAll(t, resp)
			var answer *etree.Element
			if binding == bindingRedirect {
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), idpSLOResponseURL+"?") {
					t.Fatalf("LogoutRequest: %d %q, want a redirect to the IdP's ResponseLocation", resp.StatusCode, resp.Header.Get("Location"))
				}
				answer = inflateQuery(t, resp.Header.Get("Location"), "SAMLResponse", spCert)
				if u, _ := url.Parse(resp.Header.Get("Location")); u.Query().Get("RelayState") != "relay-1" {
					t.Errorf("RelayState not returned: %s", u.RawQuery)
				}
			} else {
				answer = postedResponse(t, body, idpSLOResponseURL)
			}
			if answer.Tag != "LogoutResponse" || answer.SelectAttrValue("InResponseTo", "") != lr.SelectAttrValue("ID", "") ||
				answer.FindElement("./Status/StatusCode").SelectAttrValue("Value", "") != "urn:oasis:names:tc:SAML:2.0:status:Success" {
				t.Errorf("LogoutResponse: %s", serialize(answer))
			}
			if code := withCookie(t, h, copyA, "/home"); code != http.StatusUnauthorized {
				t.Errorf("the logged-out session (a copy of its cookie): %d, want 401", code)
			}
			if code := withCookie(t, h, copyB, "/home"); code != http.StatusOK {
				t.Errorf("a session the LogoutRequest did not name: %d, want 200", code)
			}
			// No SessionIndex: every session of the NameID so far ends.
			send(h.browser(), h.idpLogoutMessage("LogoutRequest", logoutRequestFor(alice.nameID)), &h.idp).Body.Close()
			if code := withCookie(t, h, copyB, "/home"); code != http.StatusUnauthorized {
				t.Errorf("after a LogoutRequest for the NameID: %d, want 401", code)
			}
			h.clock.Advance(2 * time.Second)
			fresh, _ := login()
			if code, _ := h.get(fresh, "/home", nil); code != http.StatusOK {
				t.Errorf("a login after the logout: %d, want 200", code)
			}
		})
	}
}

// postedResponse reads the form page gatehouse answers with on the
// HTTP-POST binding and verifies the XML signature's presence.
func postedResponse(t *testing.T, page, action string) *etree.Element {
	t.Helper()
	if !strings.Contains(page, `action="`+action+`"`) || !strings.Contains(page, `<script nonce="`) {
		t.Fatalf("auto-post page:\n%s", page)
	}
	i := strings.Index(page, `name="SAMLResponse" value="`)
	if i < 0 {
		t.Fatalf("no SAMLResponse field:\n%s", page)
	}
	v := page[i+len(`name="SAMLResponse" value="`):]
	v = v[:strings.Index(v, `"`)]
	b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(v, "&#43;", "+"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	if doc.Root().SelectElement("Signature") == nil {
		t.Error("POSTed LogoutResponse is not signed")
	}
	return doc.Root()
}

// TestSPInitiatedSingleLogoutPOST: an IdP that takes logout only over
// HTTP-POST gets a page that posts a LogoutRequest signed in its XML.
func TestSPInitiatedSingleLogoutPOST(t *testing.T) {
	spKey, _ := spKeyPair(t, t.TempDir(), "sp")
	h := newHarness(t, options{idpSLO: []string{bindingPOST}, spKeys: []session.SPKey{spKey}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	resp := h.logout(c, http.Header{"Origin": {h.base}})
	code, page := resp.StatusCode, readAll(t, resp)
	if code != http.StatusOK || !strings.Contains(page, `action="`+idpSLOURL+`"`) {
		t.Fatalf("logout: %d\n%s", code, page)
	}
	i := strings.Index(page, `name="SAMLRequest" value="`)
	if i < 0 {
		t.Fatalf("no SAMLRequest field:\n%s", page)
	}
	v := page[i+len(`name="SAMLRequest" value="`):]
	b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(v[:strings.Index(v, `"`)], "&#43;", "+"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	lr := doc.Root()
	if lr.Tag != "LogoutRequest" || lr.SelectElement("Signature") == nil || lr.SelectElement("NameID").Text() != alice.nameID {
		t.Errorf("posted LogoutRequest: %s", b)
	}
	if code, _ := h.get(c, "/home", nil); code == http.StatusOK {
		t.Error("the session outlived the logout")
	}
}

// TestUnverifiedLogoutResponse: after gatehouse's own logout, an IdP that
// answers with an unsigned LogoutResponse (SimpleSAMLphp's default), or
// with a badly signed one, leaves the browser on the signed-out page, not
// on "Sign-in failed". The response is logged (warn, with the reason) and
// does nothing else: no cookie is set or deleted, its RelayState is not
// followed. Without a logout of this browser pending, such a response is
// refused as before; so it is after a new login (which ends the pending
// logout), and the session begun since lives on.
func TestUnverifiedLogoutResponse(t *testing.T) {
	spKey, spCert := spKeyPair(t, t.TempDir(), "sp")
	h := newHarness(t, options{idpSLO: []string{bindingRedirect}, spKeys: []session.SPKey{spKey}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	resp := h.logout(c, http.Header{"Origin": {h.base}})
	resp.Body.Close()
	lr := inflateQuery(t, resp.Header.Get("Location"), "SAMLRequest", spCert)
	const evil = "https://evil.example.test/after-logout"

	response := func() *etree.Element {
		return h.idpLogoutMessage("LogoutResponse", func(el *etree.Element) {
			el.CreateAttr("InResponseTo", lr.SelectAttrValue("ID", ""))
			el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
		})
	}
	redirect := func(c *http.Client, el *etree.Element) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, h.sloURL()+"?"+redirectQuery(t, "SAMLResponse", el, evil, nil), nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	post := func(c *http.Client, doc []byte) *http.Response {
		form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {evil}}
		req, _ := http.NewRequest(http.MethodPost, h.sloURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tampered := serialize(sign(t, response(), h.idp))
	tampered = bytes.Replace(tampered, []byte(":Success"), []byte(":Requester"), 1)
	cases := []struct {
		name, reason string
		send         func(*http.Client) *http.Response
	}{
		{"UnsignedRedirect", "slo", func(c *http.Client) *http.Response { return redirect(c, response()) }},
		{"UnsignedPOST", "slo", func(c *http.Client) *http.Response { return post(c, serialize(response())) }},
		{"SignedByOtherPOST", "slo", func(c *http.Client) *http.Response {
			return post(c, serialize(sign(t, response(), loadSigner(t, "other"))))
		}},
		{"TamperedPOST", "slo", func(c *http.Client) *http.Response { return post(c, tampered) }},
	}
	for _, tc := range cases {
		h.logs.TakeAll()
		h.samlAudit.TakeAll()
		resp := tc.send(c)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Signed out") || strings.Contains(body, "evil.example") {
			t.Errorf("%s: %d, want 200 and the signed-out page without the RelayState:\n%s", tc.name, resp.StatusCode, body)
		}
		if loc, ck := resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"); loc != "" || len(ck) > 0 {
			t.Errorf("%s: the unverified response had an effect: Location %q, Set-Cookie %q", tc.name, loc, ck)
		}
		warned := h.logs.FilterMessageSnippet("unverified LogoutResponse").FilterField(zap.String("reason", tc.reason)).All()
		if len(warned) != 1 || warned[0].Level != zap.WarnLevel || warned[0].ContextMap()["error"] == "" {
			t.Errorf("%s: logged %v, want one warning with reason %q and the error", tc.name, warned, tc.reason)
		}
		if ev := h.samlAudit.FilterField(zap.String("outcome", "unverified")).All(); len(ev) != 1 || ev[0].Message != "single_logout" {
			t.Errorf("%s: audit events %v, want one single_logout, unverified", tc.name, h.samlAudit.All())
		}
	}

	// A browser with no logout pending gets the refusal, as before.
	for _, tc := range cases[:2] {
		if resp := tc.send(h.browser()); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without a pending logout: %d, want 403", tc.name, resp.StatusCode)
		}
	}

	// A session begun after the logout is not touched by one, and the
	// browser is not told it signed out: the login cleared the pending
	// logout, and the response is refused as without one.
	readResp(t, h.login(c, "/", alice))
	if resp := cases[0].send(c); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned response beside a new session: %d, want 403", resp.StatusCode)
	}
	if code, _ := h.get(c, "/home", nil); code != http.StatusOK {
		t.Errorf("the new session after an unverified LogoutResponse: %d, want 200", code)
	}
}
