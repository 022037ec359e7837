package test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/beevik/etree"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gatehouse/session"
)

// auditOf returns the audit events written since the last call, by
// message.
func auditOf(h *harness) []observer.LoggedEntry { return h.samlAudit.TakeAll() }

// checkAudit finds the one event with this message and outcome and checks
// its fields (a value of nil: present, any value).
func checkAudit(t *testing.T, events []observer.LoggedEntry, level zap.AtomicLevel, msg, outcome string, want map[string]any) {
	t.Helper()
	var found []observer.LoggedEntry
	for _, e := range events {
		if e.Message == msg && e.ContextMap()["outcome"] == outcome {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Errorf("%s %s: %d events, want 1 (all: %v)", msg, outcome, len(found), events)
		return
	}
	e := found[0]
	if e.Level != level.Level() {
		t.Errorf("%s %s: level %s, want %s", msg, outcome, e.Level, level.Level())
	}
	got := e.ContextMap()
	if got["event"] != msg {
		t.Errorf("%s %s: event field %v", msg, outcome, got["event"])
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || (v != nil && !equalField(g, v)) {
			t.Errorf("%s %s: %s = %v, want %v (event %v)", msg, outcome, k, g, v, got)
		}
	}
}

func equalField(got, want any) bool {
	if w, ok := want.([]string); ok {
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i] != w[i] {
				return false
			}
		}
		return true
	}
	return got == want
}

// TestLogoutAuditEvents: a local logout, an SP-initiated single logout
// (request sent; response confirmed, or unverified) and an IdP-initiated
// single logout each write an audit event naming the IdP, the subject
// (NameID, user ID), the outcome, the client address and the request ID
// (the response's X-Request-Id), with log.level at warn: the audit logger
// is not silenced by it.
func TestLogoutAuditEvents(t *testing.T) {
	info, warn := zap.NewAtomicLevelAt(zap.InfoLevel), zap.NewAtomicLevelAt(zap.WarnLevel)
	userID := func(h *harness) string {
		t.Helper()
		var id string
		if err := h.db().QueryRow(`SELECT user_id FROM gatehouse_identities WHERE idp = ? AND subject = ?`, idpEntityID, alice.nameID).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}

	t.Run("Local", func(t *testing.T) {
		h := newHarness(t, options{warningsOnly: true})
		c := h.browser()
		readResp(t, h.login(c, "/", alice))
		auditOf(h)
		resp := h.logout(c, http.Header{"Origin": {h.base}})
		readAll(t, resp)
		rid := resp.Header.Get("X-Request-Id")
		if rid == "" {
			t.Fatal("no X-Request-Id on the logout's answer")
		}
		checkAudit(t, auditOf(h), info, "logout", "ended", map[string]any{"idp": "corp", "name_id": alice.nameID,
			"user_id": userID(h), "single_logout": false, "client_ip": "127.0.0.1", "request_id": rid})
		if n := h.logs.FilterMessage("logout").Len(); n != 0 {
			t.Errorf("audit events leaked into the warn-level main log: %d", n)
		}
	})

	t.Run("SPInitiated", func(t *testing.T) {
		spKey, spCert := spKeyPair(t, t.TempDir(), "sp")
		h := newHarness(t, options{warningsOnly: true, idpSLO: []string{bindingRedirect}, spKeys: []session.SPKey{spKey}})
		c := h.browser()
		id, relay := h.startLogin(c, "/")
		s := h.spec(alice, id)
		readResp(t, h.post(c, h.signedResponse(s), relay))
		auditOf(h)
		resp := h.logout(c, http.Header{"Origin": {h.base}})
		resp.Body.Close()
		lr := inflateQuery(t, resp.Header.Get("Location"), "SAMLRequest", spCert)
		rid := resp.Header.Get("X-Request-Id")
		events := auditOf(h)
		checkAudit(t, events, info, "logout", "ended", map[string]any{"idp": "corp", "name_id": alice.nameID, "user_id": userID(h),
			"single_logout": true, "client_ip": "127.0.0.1", "request_id": rid})
		checkAudit(t, events, info, "single_logout", "request_sent", map[string]any{"initiator": "sp", "idp": "corp",
			"name_id": alice.nameID, "user_id": userID(h), "session_index": s.sessionIndex, "logout_request_id": lr.SelectAttrValue("ID", ""),
			"binding": bindingRedirect, "client_ip": "127.0.0.1", "request_id": rid})

		answer := func(key *signer) *http.Response {
			el := h.idpLogoutMessage("LogoutResponse", func(el *etree.Element) {
				el.CreateAttr("InResponseTo", lr.SelectAttrValue("ID", ""))
				el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
			})
			var q string
			if key != nil {
				q = redirectQuery(t, "SAMLResponse", el, "", key.key)
			} else {
				q = redirectQuery(t, "SAMLResponse", el, "", nil)
			}
			req, _ := http.NewRequest(http.MethodGet, h.sloURL()+"?"+q, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			return resp
		}
		resp = answer(nil)
		checkAudit(t, auditOf(h), warn, "single_logout", "unverified", map[string]any{"initiator": "sp", "idp": "corp",
			"logout_request_id": lr.SelectAttrValue("ID", ""), "reason": "slo", "error": nil,
			"client_ip": "127.0.0.1", "request_id": resp.Header.Get("X-Request-Id")})
		resp = answer(&h.idp)
		checkAudit(t, auditOf(h), info, "single_logout", "confirmed", map[string]any{"initiator": "sp", "idp": "corp",
			"logout_request_id": lr.SelectAttrValue("ID", ""), "client_ip": "127.0.0.1", "request_id": resp.Header.Get("X-Request-Id")})
	})

	t.Run("IdPInitiated", func(t *testing.T) {
		spKey, _ := spKeyPair(t, t.TempDir(), "sp")
		h := newHarness(t, options{warningsOnly: true, idpSLO: []string{bindingRedirect}, spKeys: []session.SPKey{spKey}})
		c := h.browser()
		id, relay := h.startLogin(c, "/")
		s := h.spec(alice, id)
		readResp(t, h.post(c, h.signedResponse(s), relay))
		auditOf(h)
		send := func(el *etree.Element) *http.Response {
			req, _ := http.NewRequest(http.MethodGet, h.sloURL()+"?"+redirectQuery(t, "SAMLRequest", el, "", h.idp.key), nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		lr := h.idpLogoutMessage("LogoutRequest", logoutRequestFor(alice.nameID, s.sessionIndex))
		resp := send(lr)
		checkAudit(t, auditOf(h), info, "single_logout", "ended", map[string]any{"initiator": "idp", "idp": "corp",
			"name_id": alice.nameID, "user_id": userID(h), "ended": "sessions_by_index", "session_indexes": []string{s.sessionIndex},
			"logout_request_id": lr.SelectAttrValue("ID", ""), "client_ip": "127.0.0.1", "request_id": resp.Header.Get("X-Request-Id")})
		// No SessionIndex, from a browser without the session: every
		// session of the NameID; no user ID to name.
		lr = h.idpLogoutMessage("LogoutRequest", logoutRequestFor(alice.nameID))
		c = h.browser()
		resp = send(lr)
		events := auditOf(h)
		checkAudit(t, events, info, "single_logout", "ended", map[string]any{"initiator": "idp", "name_id": alice.nameID,
			"ended": "all_sessions_of_name_id", "request_id": resp.Header.Get("X-Request-Id")})
		if i := slices.IndexFunc(events, func(e observer.LoggedEntry) bool { _, ok := e.ContextMap()["user_id"]; return ok }); i >= 0 {
			t.Errorf("a user ID named for a logout from a browser without the session: %v", events[i].ContextMap())
		}
	})
}
