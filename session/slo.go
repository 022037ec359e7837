package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"
)

// ServeLogout ends the browser's session: locally always (the session is
// revoked, so a copy of its cookie is dead too), and at the IdP when its
// metadata has a SingleLogoutService (SP-initiated single logout).
//
// Only a same-origin POST logs out; a GET (a link, or a cross-site
// top-level navigation) shows a page that asks, with a form that posts
// back here. An IdP's logout reaches ServeSLO, as a signed message.
func (m *Manager) ServeLogout(w http.ResponseWriter, r *http.Request) {
	m.serve(m.serveLogout)(w, r)
}

// serveLogout is ServeLogout's inner handler.
func (m *Manager) serveLogout(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		m.pages.ConfirmLogout(w, r, m.cfg.Endpoints.Logout)
		return nil
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	if err := m.sameOrigin(r); err != nil {
		m.log.Warn("logout refused", zap.String("reason", "cross_origin"), zap.Error(err))
		m.pages.ConfirmLogout(w, r, m.cfg.Endpoints.Logout)
		return nil
	}
	s, ok := m.Load(r)
	m.clearSession(w)
	if !ok {
		m.pages.SignedOut(w, r)
		return nil
	}
	outcome := "ended"
	if err := m.revoke(r.Context(), s); err != nil {
		m.log.Error("revoke session", zap.String("idp", s.IdP), zap.Error(err))
		outcome = "revoke_failed" // the cookie is deleted; a copy of it lives on
	}
	in := m.byName[s.IdP]
	if in != nil && in.oidc != nil {
		// RP-initiated logout: the provider ends its own session and
		// sends the browser back to the signed-out page.
		dest := m.rpLogoutURL(in)
		m.auditEvent(w, r, zap.InfoLevel, "logout", outcome, append(subjectFields(s), zap.String("idp_kind", KindOIDC), zap.Bool("single_logout", dest != ""))...)
		if dest == "" {
			m.pages.SignedOut(w, r)
			return nil
		}
		http.Redirect(w, r, dest, http.StatusSeeOther)
		return nil
	}
	sp := in.sp.Load()
	binding, dest := saml.HTTPRedirectBinding, ""
	if !in.cfg.NoSingleLogout && sp != nil && s.NameID != "" {
		if dest, _ = sloEndpoint(sp.IDPMetadata, binding); dest == "" {
			binding = saml.HTTPPostBinding
			dest, _ = sloEndpoint(sp.IDPMetadata, binding)
		}
	}
	m.auditEvent(w, r, zap.InfoLevel, "logout", outcome, append(subjectFields(s), zap.Bool("single_logout", dest != ""))...)
	if dest == "" {
		m.pages.SignedOut(w, r)
		return nil
	}
	el, id, err := m.message("LogoutRequest", dest)
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "random", Err: err}
	}
	nid := el.CreateElement("saml:NameID")
	if s.NameIDFormat != "" {
		nid.CreateAttr("Format", s.NameIDFormat)
	}
	nid.SetText(s.NameID)
	if s.SessionIndex != "" {
		el.CreateElement("samlp:SessionIndex").SetText(s.SessionIndex)
	}
	name := m.logoutCookieName()
	sealed, err := m.sealer.seal(name, pack(stateFormat, []time.Time{m.now().Add(m.cfg.LoginTimeout)}, id, in.cfg.Name))
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "seal", Err: err}
	}
	http.SetCookie(w, m.logoutCookie(sealed, int(m.cfg.LoginTimeout/time.Second)))
	ev := append(subjectFields(s), zap.String("initiator", "sp"), zap.String("logout_request_id", id), zap.String("binding", binding))
	if err := m.send(w, r, binding, dest, "SAMLRequest", el, ""); err != nil {
		m.auditEvent(w, r, zap.WarnLevel, "single_logout", "request_failed", append(ev, zap.Error(err))...)
		return &Failure{Page: Unavailable, Reason: "logout_request", Err: err}
	}
	m.auditEvent(w, r, zap.InfoLevel, "single_logout", "request_sent", ev...)
	return nil
}

// sameOrigin accepts a request that says it comes from base_url's origin:
// by its Origin header, else its Sec-Fetch-Site header, else its Referer.
// A request that says none of these is refused. "Origin: null" (a page
// with no-referrer, a sandboxed frame) only defers to Sec-Fetch-Site,
// which the browser computes whatever the page's policy.
func (m *Manager) sameOrigin(r *http.Request) error {
	origin := m.base.Scheme + "://" + m.base.Host
	if o := r.Header.Values("Origin"); len(o) == 1 && o[0] == "null" {
		if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
			return nil
		}
		return errors.New("the Origin header is null and Sec-Fetch-Site does not say same-origin")
	}
	if o := r.Header.Values("Origin"); len(o) > 0 {
		if len(o) == 1 && strings.EqualFold(o[0], origin) {
			return nil
		}
		return fmt.Errorf("the Origin header %s is not %s", quoted(strings.Join(o, ", ")), origin)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		if site == "same-origin" {
			return nil
		}
		return fmt.Errorf("the Sec-Fetch-Site header is %s", quoted(site))
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		if u, err := url.Parse(ref); err == nil && strings.EqualFold(u.Scheme+"://"+u.Host, origin) && u.User == nil {
			return nil
		}
		return errors.New("the Referer header is from another origin")
	}
	return errors.New("no Origin, Sec-Fetch-Site or Referer says where the request comes from")
}

// ServeSLO is the SingleLogoutService: it takes an IdP's LogoutRequest
// (IdP-initiated single logout, HTTP-Redirect or HTTP-POST) and the
// LogoutResponse that answers gatehouse's own LogoutRequest.
func (m *Manager) ServeSLO(w http.ResponseWriter, r *http.Request) {
	m.serve(m.serveSLO)(w, r)
}

// serveSLO is ServeSLO's inner handler.
func (m *Manager) serveSLO(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	msg, err := m.readSLO(w, r)
	if err == nil {
		err = m.checkSLOHead(msg.root)
	}
	if err != nil {
		reason := "slo"
		if errors.Is(err, errXMLLimit) {
			reason = "size"
		}
		f := &Failure{Page: LogoutFailed, Reason: reason, Err: err}
		if isLogoutResponse(r) {
			return m.refuseLogoutResponse(w, r, f)
		}
		return f
	}
	if f := m.claimSLO(r.Context(), msg); f != nil {
		if msg.root.Tag == "LogoutResponse" {
			return m.refuseLogoutResponse(w, r, f)
		}
		return f
	}
	if msg.root.Tag == "LogoutResponse" {
		return m.logoutResponse(w, r, msg)
	}
	return m.logoutRequest(w, r, msg)
}

// claimSLO records the message's ID in the replay cache until the end of
// the window checkSLOHead accepts it in, so that it is acted on once.
func (m *Manager) claimSLO(ctx context.Context, msg *sloMessage) *Failure {
	id := msg.root.SelectAttrValue("ID", "")
	if id == "" {
		return &Failure{Page: LogoutFailed, Reason: "slo", Err: errors.New("logout message without an ID")}
	}
	at, _ := time.Parse(time.RFC3339Nano, msg.root.SelectAttrValue("IssueInstant", "")) // checked by checkSLOHead
	fresh, err := m.replay.Claim(ctx, "slo\x00"+msg.in.cfg.EntityID+"\x00"+id, at.Add(m.cfg.ClockSkew+saml.MaxIssueDelay))
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "replay_cache", Err: err}
	}
	if !fresh {
		return &Failure{Page: LogoutFailed, Reason: "replay", Err: fmt.Errorf("logout message %s was already used", id)}
	}
	return nil
}

// logoutRequest ends the sessions an IdP's LogoutRequest names, on every
// replica the revocations reach, and answers it.
func (m *Manager) logoutRequest(w http.ResponseWriter, r *http.Request, msg *sloMessage) error {
	root := msg.root
	if v := root.SelectAttrValue("NotOnOrAfter", ""); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err != nil || !m.now().Add(-m.cfg.ClockSkew).Before(t) {
			return &Failure{Page: LogoutFailed, Reason: "slo", Err: errors.New("LogoutRequest expired (NotOnOrAfter)")}
		}
	}
	nids := childrenNS(root, nsAssertion, "NameID")
	if len(nids) != 1 || nids[0].Text() == "" {
		return &Failure{Page: LogoutFailed, Reason: "slo", Err: errors.New("LogoutRequest must name exactly one NameID (encrypted IDs are not supported)")}
	}
	name := msg.in.cfg.Name
	target := Session{IdP: name, NameID: nids[0].Text()}
	var indexes []string
	for _, e := range childrenNS(root, nsProtocol, "SessionIndex") {
		indexes = append(indexes, strings.TrimSpace(e.Text()))
	}
	ctx := r.Context()
	// The browser's own session, read before the revocation ends it: the
	// audit event names its user when the logout is about it.
	own, hasOwn := m.Load(r)
	var rerr error
	if len(indexes) == 0 {
		rerr = m.revoke(ctx, target)
	}
	for _, idx := range indexes {
		t := target
		t.SessionIndex = idx
		rerr = errors.Join(rerr, m.revoke(ctx, t))
	}
	status := statusOK
	if rerr != nil {
		m.log.Error("single logout: revoke sessions", zap.String("idp", name), zap.Error(rerr))
		status = "urn:oasis:names:tc:SAML:2.0:status:Responder"
	}
	m.clearSession(w) // the front channel runs through the user's own browser
	m.log.Info("single logout from the IdP", zap.String("idp", name), zap.Int("session_indexes", len(indexes)))
	ev := []zap.Field{zap.String("initiator", "idp"), zap.String("idp", name), zap.String("name_id", target.NameID)}
	if hasOwn && own.IdP == name && own.NameID == target.NameID && own.UserID != "" {
		ev = append(ev, zap.String("user_id", own.UserID))
	}
	if len(indexes) > 0 {
		ev = append(ev, zap.String("ended", "sessions_by_index"), zap.Strings("session_indexes", indexes))
	} else {
		ev = append(ev, zap.String("ended", "all_sessions_of_name_id"))
	}
	ev = append(ev, zap.String("logout_request_id", root.SelectAttrValue("ID", "")))
	outcome := "ended"
	if rerr != nil {
		outcome = "revoke_failed"
		ev = append(ev, zap.Error(rerr))
	}
	m.auditEvent(w, r, zap.InfoLevel, "single_logout", outcome, ev...)
	_, dest := sloEndpoint(msg.in.sp.Load().IDPMetadata, msg.binding)
	binding := msg.binding
	if dest == "" {
		binding = map[string]string{saml.HTTPPostBinding: saml.HTTPRedirectBinding, saml.HTTPRedirectBinding: saml.HTTPPostBinding}[binding]
		_, dest = sloEndpoint(msg.in.sp.Load().IDPMetadata, binding)
	}
	if dest == "" {
		m.pages.SignedOut(w, r)
		return nil
	}
	el, _, err := m.message("LogoutResponse", dest)
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "random", Err: err}
	}
	el.CreateAttr("InResponseTo", root.SelectAttrValue("ID", ""))
	el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", status)
	if err := m.send(w, r, binding, dest, "SAMLResponse", el, msg.relay); err != nil {
		return &Failure{Page: Unavailable, Reason: "logout_response", Err: err}
	}
	return nil
}

// logoutResponse completes an SP-initiated logout: the response must
// answer the LogoutRequest this browser sent, from the IdP it went to.
func (m *Manager) logoutResponse(w http.ResponseWriter, r *http.Request, msg *sloMessage) error {
	id, idpName, ok := m.pendingLogout(r)
	if !ok {
		return &Failure{Page: LogoutFailed, Reason: "slo", Err: errors.New("LogoutResponse without a pending logout in this browser")}
	}
	if got := msg.root.SelectAttrValue("InResponseTo", ""); got != id || msg.in.cfg.Name != idpName {
		err := fmt.Errorf("LogoutResponse answers %s from %s, not this browser's logout", quoted(got), msg.in.cfg.Name)
		return m.refuseLogoutResponse(w, r, &Failure{Page: LogoutFailed, Reason: "in_response_to", Err: err})
	}
	// Used up: the same response cannot complete a logout twice.
	http.SetCookie(w, m.logoutCookie("", -1))
	ev := []zap.Field{zap.String("initiator", "sp"), zap.String("idp", idpName), zap.String("logout_request_id", id)}
	if sc := msg.root.FindElement("./Status/StatusCode"); sc == nil || sc.SelectAttrValue("Value", "") != statusOK {
		// The session here is already gone; the IdP's may live on.
		status := ""
		if sc != nil {
			status = sc.SelectAttrValue("Value", "")
		}
		m.log.Warn("the IdP did not confirm single logout", zap.String("idp", idpName), zap.String("status", status))
		m.auditEvent(w, r, zap.WarnLevel, "single_logout", "not_confirmed", append(ev, zap.String("status", status))...)
	} else {
		m.auditEvent(w, r, zap.InfoLevel, "single_logout", "confirmed", ev...)
	}
	w.Header().Set("Cache-Control", "no-store")
	m.pages.SignedOut(w, r)
	return nil
}

// pendingLogout returns the LogoutRequest ID and IdP of this browser's
// own logout, from the cookie ServeLogout set after it had ended the
// session here, if the browser holds one that is live.
func (m *Manager) pendingLogout(r *http.Request) (id, idpName string, ok bool) {
	name := m.logoutCookieName()
	c, err := r.Cookie(name)
	if err != nil {
		return "", "", false
	}
	plain, err := m.sealer.open(name, c.Value)
	var expires time.Time
	if err == nil {
		err = unpack(plain, stateFormat, []*time.Time{&expires}, &id, &idpName)
	}
	if err != nil || m.now().After(expires) {
		return "", "", false
	}
	return id, idpName, true
}

// isLogoutResponse reports whether r carries a SAMLResponse (and no
// SAMLRequest): an answer to a logout, whatever it turns out to hold.
func isLogoutResponse(r *http.Request) bool {
	v := r.PostForm
	if r.Method != http.MethodPost {
		v, _ = url.ParseQuery(r.URL.RawQuery)
	}
	return v.Has("SAMLResponse") && !v.Has("SAMLRequest")
}

// unverifiedLogoutResponse handles a LogoutResponse that failed its checks
// (unsigned, badly signed, from another IdP, answering another request,
// replayed...) in a browser whose session this SP had already ended with
// its own LogoutRequest: many IdPs (SimpleSAMLphp by default) do not sign
// their LogoutResponse. The browser gets the signed-out page, which it
// would have got anyway; the response is logged and does nothing else: no
// session is touched, its RelayState is not followed, and the pending
// logout stays for the genuine answer. It reports false, doing nothing,
// when the browser has no pending logout: then the caller refuses the
// message as before. It does the same when the browser has a live session
// (one begun since in another tab, or with a cookie the login did not
// clear): a forged answer must not show "Signed out" to a signed-in user.
func (m *Manager) unverifiedLogoutResponse(w http.ResponseWriter, r *http.Request, reason string, err error) bool {
	id, idpName, ok := m.pendingLogout(r)
	if !ok {
		return false
	}
	if _, live := m.Load(r); live {
		return false
	}
	m.log.Warn("unverified LogoutResponse after this browser's logout: signed-out page shown, nothing else done",
		zap.String("idp", idpName), zap.String("reason", reason), zap.Error(err))
	m.auditEvent(w, r, zap.WarnLevel, "single_logout", "unverified", zap.String("initiator", "sp"), zap.String("idp", idpName),
		zap.String("logout_request_id", id), zap.String("reason", reason), zap.Error(err))
	w.Header().Set("Cache-Control", "no-store")
	m.pages.SignedOut(w, r)
	return true
}

// refuseLogoutResponse refuses a LogoutResponse with f, unless
// unverifiedLogoutResponse shows the browser the signed-out page instead
// (then it returns nil).
func (m *Manager) refuseLogoutResponse(w http.ResponseWriter, r *http.Request, f *Failure) error {
	if m.unverifiedLogoutResponse(w, r, f.Reason, f.Err) {
		return nil
	}
	return f
}
