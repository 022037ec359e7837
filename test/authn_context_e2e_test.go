package test

import (
	"net/http"
	"strings"
	"testing"

	"gatehouse/proxy"
	"gatehouse/session"
)

const (
	classPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	classMFA      = "https://refeds.org/profile/mfa"
)

// TestAuthnContextPerIdP: the IdP's first class is requested with the
// comparison and ForceAuthn, and an assertion made with a class not
// listed is refused, not just requested.
func TestAuthnContextPerIdP(t *testing.T) {
	h := newHarness(t, options{corp: func(p *session.IdP) {
		p.AuthnContext, p.AuthnContextComparison, p.ForceAuthn = []string{classMFA, classPassword + "-strong"}, "minimum", true
	}})
	c := h.browser()
	req, relay := h.authnRequest(c, "/")
	rac := req.SelectElement("RequestedAuthnContext")
	if rac == nil || rac.SelectAttrValue("Comparison", "") != "minimum" || rac.SelectElement("AuthnContextClassRef").Text() != classMFA ||
		req.SelectAttrValue("ForceAuthn", "") != "true" {
		t.Fatalf("AuthnRequest does not ask for the class with ForceAuthn: %s", serialize(req))
	}
	s := h.spec(alice, req.SelectAttrValue("ID", ""))
	resp := h.post(c, h.signedResponse(s), relay) // PasswordProtectedTransport
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("assertion with an unlisted class: %d %s", resp.StatusCode, body)
	}
	logged := h.logs.FilterMessage("request refused").All()
	if len(logged) == 0 || logged[len(logged)-1].ContextMap()["reason"] != "authn_context" {
		t.Errorf("refusal not logged with reason authn_context: %v", logged)
	}
	c = h.browser()
	req, relay = h.authnRequest(c, "/")
	s = h.spec(alice, req.SelectAttrValue("ID", ""))
	s.classRef = classMFA
	if body := readAll(t, h.post(c, h.signedResponse(s), relay)); !strings.Contains(body, "user=alice") {
		t.Fatalf("assertion with the requested class: %s", body)
	}
}

func TestIsPassiveRequested(t *testing.T) {
	h := newHarness(t, options{corp: func(p *session.IdP) { p.IsPassive = true }})
	req, _ := h.authnRequest(h.browser(), "/")
	if req.SelectAttrValue("IsPassive", "") != "true" || req.SelectAttrValue("ForceAuthn", "") != "" {
		t.Errorf("AuthnRequest: %s", serialize(req))
	}
}

// TestStepUpPerPath: a path that needs multi-factor sends a browser whose
// session was made with a password back to its IdP with ForceAuthn and
// the class requested; the answer must use it; API clients get 403.
func TestStepUpPerPath(t *testing.T) {
	h := newHarness(t, options{authorization: []proxy.Rule{
		{Path: "/admin/", Allow: proxy.AllowAuthenticated, AuthnContext: []string{classMFA}},
		{Path: "/", Allow: proxy.AllowAuthenticated},
	}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice)) // password
	if code, _ := h.get(c, "/admin/", http.Header{"Accept": {"application/json"}}); code != http.StatusForbidden {
		t.Errorf("API request to a step-up path with a password session: %d, want 403", code)
	}
	req, relay := h.authnRequest(c, "/admin/")
	if req.SelectAttrValue("ForceAuthn", "") != "true" || req.SelectElement("RequestedAuthnContext") == nil ||
		req.SelectElement("RequestedAuthnContext").SelectElement("AuthnContextClassRef").Text() != classMFA {
		t.Fatalf("step-up AuthnRequest: %s", serialize(req))
	}
	// The IdP answers the step-up with a password again: refused.
	s := h.spec(alice, req.SelectAttrValue("ID", ""))
	if resp := h.post(c, h.signedResponse(s), relay); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("step-up answered with a password: %d", resp.StatusCode)
	}
	req, relay = h.authnRequest(c, "/admin/")
	s = h.spec(alice, req.SelectAttrValue("ID", ""))
	s.classRef = classMFA
	resp := h.post(c, h.signedResponse(s), relay)
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "GET /admin/ user=alice") {
		t.Fatalf("after the step-up: %d %s", resp.StatusCode, body)
	}
	if code, _ := h.get(c, "/admin/settings", http.Header{"Accept": {"application/json"}}); code != http.StatusOK {
		t.Errorf("API request with the stepped-up session: %d", code)
	}
}
