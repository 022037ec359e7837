package session

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"
)

// maxFormBytes bounds the ACS POST body: the largest response
// responseLimits admits, base64-encoded (4/3), form-encoded ('+', '/' and
// '=' take three bytes each) and wrapped in lines by some IdPs, with the
// RelayState.
const maxFormBytes = 4 << 20

// ServeMetadata serves the SP's SAML metadata.
func (m *Manager) ServeMetadata(w http.ResponseWriter, r *http.Request) {
	m.serve(m.serveMetadata)(w, r)
}

// serveMetadata is ServeMetadata's inner handler (see serve).
func (m *Manager) serveMetadata(w http.ResponseWriter, r *http.Request) error {
	buf, err := m.metadata()
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "metadata", Err: err}
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(buf)
	return nil
}

// ServeLogin starts a login: with an idp query parameter or a single IdP
// it redirects to that IdP; otherwise it shows the chooser. The return
// query parameter is where the user lands afterwards (same-origin paths
// only).
func (m *Manager) ServeLogin(w http.ResponseWriter, r *http.Request) {
	m.serve(m.serveLogin)(w, r)
}

// serveLogin is ServeLogin's inner handler.
func (m *Manager) serveLogin(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	q := r.URL.Query()
	returnTo := m.safeReturn(q.Get("return"))
	if hint := q.Get("idp"); hint != "" {
		// A partner portal links with the IdP's name or its entity ID.
		in := m.byName[hint]
		if in == nil {
			in = m.byEntity[hint]
		}
		if in == nil {
			return &Failure{Page: LoginFailed, Reason: "unknown_idp", Err: fmt.Errorf("unknown idp %s", quoted(hint)), NoMessage: true}
		}
		http.SetCookie(w, &http.Cookie{Name: lastIdPCookie, Value: in.cfg.Name, Path: m.cfg.Endpoints.Prefix,
			MaxAge: 365 * 24 * 3600, HttpOnly: true, Secure: m.secure(), SameSite: http.SameSiteLaxMode})
		return m.startLogin(w, r, in.cfg.Name, returnTo, LoginOptions{})
	}
	if len(m.idps) == 1 {
		return m.startLogin(w, r, m.idps[0].cfg.Name, returnTo, LoginOptions{})
	}
	last := ""
	if c, err := r.Cookie(lastIdPCookie); err == nil && m.byName[c.Value] != nil {
		last = c.Value
	}
	page := ChooserPage{Searchable: len(m.idps) > searchableIdPs, Action: m.cfg.Endpoints.Login, ReturnTo: returnTo}
	if page.Searchable {
		page.Query = strings.TrimSpace(q.Get("q"))
		if len(page.Query) > 100 {
			page.Query = page.Query[:100]
		}
	}
	for _, in := range m.idps {
		if page.Query != "" && !containsFold(in.displayName(), page.Query) && !containsFold(in.cfg.Name, page.Query) &&
			!containsFold(in.cfg.EntityID, page.Query) {
			continue
		}
		v := url.Values{"idp": {in.cfg.Name}, "return": {returnTo}}
		c := Choice{Name: in.cfg.Name, DisplayName: in.displayName(), URL: m.cfg.Endpoints.Login + "?" + v.Encode(), LastUsed: in.cfg.Name == last,
			Unavailable: !in.loaded()}
		if c.LastUsed {
			page.Choices = append([]Choice{c}, page.Choices...)
		} else {
			page.Choices = append(page.Choices, c)
		}
	}
	m.pages.Chooser(w, r, page)
	return nil
}

// lastIdPCookie remembers the IdP a browser chose, to list it first.
const lastIdPCookie = "gatehouse_idp"

// searchableIdPs is how many IdPs the chooser lists before it offers a
// search.
const searchableIdPs = 6

// containsFold reports whether s contains sub, ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// StartLogin sends the browser to an IdP with an AuthnRequest
// (HTTP-Redirect binding). With name empty it picks the only IdP or shows
// the chooser. The RelayState is an opaque token; the request ID and the
// return path travel sealed in a short-lived cookie named after it.
func (m *Manager) StartLogin(w http.ResponseWriter, r *http.Request, name, returnTo string) {
	m.StartLoginWith(w, r, name, returnTo, LoginOptions{})
}

// StartLoginWith is StartLogin with a stronger authentication than the
// IdP's settings ask for: the response must then be made with one of
// opts.AuthnContext.
func (m *Manager) StartLoginWith(w http.ResponseWriter, r *http.Request, name, returnTo string, opts LoginOptions) {
	m.serve(func(w http.ResponseWriter, r *http.Request) error { return m.startLogin(w, r, name, returnTo, opts) })(w, r)
}

// startLogin is StartLoginWith's inner handler.
func (m *Manager) startLogin(w http.ResponseWriter, r *http.Request, name, returnTo string, opts LoginOptions) error {
	returnTo = m.safeReturn(returnTo)
	if name == "" {
		if len(m.idps) != 1 {
			http.Redirect(w, r, m.cfg.Endpoints.Login+"?"+url.Values{"return": {returnTo}}.Encode(), http.StatusFound)
			return nil
		}
		name = m.idps[0].cfg.Name
	}
	in := m.byName[name]
	if in.oidc != nil {
		return m.startOIDCLogin(w, r, in, returnTo, opts)
	}
	sp := in.sp.Load()
	if sp == nil {
		return &Failure{Page: Unavailable, Reason: "metadata", Err: fmt.Errorf("idp %s: %w", name, errNoMetadata), Routine: true}
	}
	req, err := sp.MakeAuthenticationRequest(ssoLocation(sp.IDPMetadata), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "authn_request", Err: err}
	}
	if f := nameIDFormatURN(in.cfg.NameIDFormat); f != "" {
		req.NameIDPolicy.Format = &f // AllowCreate="true" is crewjam/saml's
	}
	refs := in.cfg.AuthnContext
	if len(opts.AuthnContext) > 0 {
		refs = opts.AuthnContext
	}
	if len(refs) > 0 {
		// crewjam/saml's request carries one class: the first; the
		// response may use any listed one (see acceptedContext).
		req.RequestedAuthnContext = &saml.RequestedAuthnContext{Comparison: cmp.Or(in.cfg.AuthnContextComparison, "exact"),
			AuthnContextClassRef: refs[0]}
	}
	yes := true
	if in.cfg.ForceAuthn || opts.ForceAuthn {
		req.ForceAuthn = &yes
	} else if in.cfg.IsPassive {
		req.IsPassive = &yes
	}
	token, err := m.loginToken(r)
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "random", Err: err}
	}
	if len(returnTo) > maxReturnInState {
		returnTo = "/"
	}
	st := loginState{Token: token, RequestID: req.ID, IdP: name, ReturnTo: returnTo, Expires: m.now().Add(m.cfg.LoginTimeout),
		AuthnContext: strings.Join(opts.AuthnContext, " ")}
	sealed, err := m.sealer.seal(m.bindingCookieName(token), st.encode())
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "seal", Err: err}
	}
	redirect, err := authnRedirect(req, token, sp)
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "authn_request", Err: err}
	}
	http.SetCookie(w, m.bindingCookie(token, sealed, int(m.cfg.LoginTimeout/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, redirect, http.StatusFound)
	return nil
}

// pendingLogin returns the login a RelayState token names, if this
// browser holds its sealed state, the state belongs to that token, and it
// has not expired. The slot's cookie is then deleted (a state serves one
// response), as it is when it holds nothing usable; a live state of
// another login is left alone.
func (m *Manager) pendingLogin(w http.ResponseWriter, r *http.Request, relay string) (loginState, bool) {
	if len(relay) != tokenLen {
		return loginState{}, false
	}
	name := m.bindingCookieName(relay)
	c, err := r.Cookie(name)
	if err != nil {
		return loginState{}, false
	}
	plain, err := m.sealer.open(name, c.Value)
	var st loginState
	if err == nil {
		st, err = decodeState(plain)
	}
	if err == nil && m.now().Before(st.Expires) && subtle.ConstantTimeCompare([]byte(st.Token), []byte(relay)) != 1 {
		// The slot holds another login's state, which stays: a response
		// (or a forged post) for one login must not end another.
		return loginState{}, false
	}
	http.SetCookie(w, m.bindingCookie(relay, "", -1))
	if err != nil || !m.now().Before(st.Expires) {
		return loginState{}, false
	}
	return st, true
}

// ACS returns the assertion consumer service (HTTP-POST binding): it
// validates the response, runs login (JIT provisioning), issues the session
// and redirects to the stored return path.
func (m *Manager) ACS(login LoginFunc) http.Handler {
	return m.serve(func(w http.ResponseWriter, r *http.Request) error { return m.acs(w, r, login) })
}

// acs is the ACS's inner handler.
func (m *Manager) acs(w http.ResponseWriter, r *http.Request, login LoginFunc) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	var idpName string // the login's IdP, once known
	id, returnTo, f := m.consume(w, r, &idpName)
	if f != nil {
		// An audit event for every refused response: the pages line is a
		// warning that log.level error hides. It names nothing the
		// unverified message says but the reason and the configured IdP
		// it is from.
		ev := []zap.Field{zap.String("reason", f.Reason)}
		if idpName != "" {
			ev = append(ev, zap.String("idp", idpName))
		}
		m.auditEvent(w, r, zap.WarnLevel, "login", "refused", ev...)
		return f
	}
	return m.finishLogin(w, r, login, id, returnTo)
}

// finishLogin runs login (JIT provisioning) for an accepted response,
// issues the session and redirects to the login's return path.
func (m *Manager) finishLogin(w http.ResponseWriter, r *http.Request, login LoginFunc, id Identity, returnTo string) error {
	userID, err := login(r.Context(), id)
	if err != nil {
		return loginFailure(err, returnTo)
	}
	now := m.now()
	sid, err := randomToken()
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "random", Err: err}
	}
	m.setSession(w, Session{ID: sid[:22], UserID: userID, IdP: id.IdP, NameID: id.NameID, NameIDFormat: id.NameIDFormat, SessionIndex: id.SessionIndex,
		AuthnContext: id.AuthnContext,
		Issued:       now, LastSeen: now})
	if _, err := r.Cookie(m.logoutCookieName()); err == nil {
		// A logout this browser left pending ends with this login: a
		// LogoutResponse arriving now answers nothing the user is waiting
		// for.
		http.SetCookie(w, m.logoutCookie("", -1))
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
	return nil
}

// stateClaimer is a ReplayCache that keeps used login states apart from
// assertion IDs (MemoryReplay.ClaimState).
type stateClaimer interface {
	ClaimState(ctx context.Context, token string, until time.Time) (bool, error)
}

// claimState records that the login state token served a response, in
// the part of the replay cache that anyone's garbage may fill without
// turning real logins away, where the cache has one.
func (m *Manager) claimState(ctx context.Context, token string, until time.Time) (bool, error) {
	if c, ok := m.replay.(stateClaimer); ok {
		return c.ClaimState(ctx, token, until)
	}
	return m.replay.Claim(ctx, "login\x00"+token, until)
}

// consume validates the posted response. Failures carry the reason for
// logs and metrics; the browser sees only the page.
//
// The work is ordered by cost, so that an unauthenticated request is
// refused as cheaply as possible: without a live login-state cookie (one
// sealed here, unexpired; and no IdP that may start logins) before the
// body is read; without the login
// state its RelayState names (ditto) before the response is decoded; a
// response beyond responseLimits by a scan that builds nothing; and only
// then are trees built and signatures checked.
//
// idpName is set to the configured name of the IdP the response is for,
// once known: from the browser's login state, or from a configured
// issuer of an unsolicited response.
func (m *Manager) consume(w http.ResponseWriter, r *http.Request, idpName *string) (_ Identity, _ string, failure *Failure) {
	var known string // the login's return path, once its state is read
	defer func() {
		if failure != nil && failure.ReturnTo == "" {
			failure.ReturnTo = known
		}
	}()
	fail := func(reason string, err error) (Identity, string, *Failure) {
		return Identity{}, "", &Failure{Page: LoginFailed, Reason: reason, Err: err}
	}
	errNoState := errors.New("no pending login in this browser matches the response (expired, used, or started in another browser), and no idp may start logins")
	if !m.anyUnsolicited && !m.hasLiveLogin(r) {
		return fail("no_login_state", errNoState)
	}
	form, err := readACSForm(w, r)
	if errors.Is(err, errFormTooLarge) {
		return fail("size", fmt.Errorf("response form larger than %d bytes: %w", maxFormBytes, errXMLLimit))
	} else if err != nil {
		return fail("form", err)
	}
	relay := form.relay
	st, solicited := m.pendingLogin(w, r, relay)
	if solicited {
		known = st.ReturnTo
		// A login state serves one response, whatever becomes of it: a
		// browser that ignores the cookie's deletion cannot post again
		// with it, so each response parsed costs a login start (which the
		// rate limit counts).
		fresh, err := m.claimState(r.Context(), st.Token, st.Expires)
		if err != nil {
			return Identity{}, "", &Failure{Page: Unavailable, Reason: "replay_cache", Err: err}
		}
		if !fresh {
			return fail("no_login_state", errors.New("the browser's login state was already used for a response"))
		}
	}
	if !solicited && !m.anyUnsolicited {
		return fail("no_login_state", errNoState)
	}
	if len(form.response) == 0 {
		return fail("form", errors.New("no SAMLResponse"))
	}
	doc, reason, err := decodeResponse(form.response)
	if err != nil {
		return fail(reason, err)
	}
	sh, err := precheck(doc)
	if err != nil {
		if errors.Is(err, errXMLLimit) {
			return fail("size", err)
		}
		return fail("structure", err)
	}

	var (
		in          *idp
		requestIDs  []string
		returnTo    = "/"
		unsolicited bool
		stepUp      []string
	)
	if solicited {
		in, requestIDs, returnTo, stepUp = m.byName[st.IdP], []string{st.RequestID}, st.ReturnTo, strings.Fields(st.AuthnContext)
		if in != nil {
			*idpName = in.cfg.Name
		}
		if in == nil {
			return fail("unknown_idp", fmt.Errorf("login state names unknown idp %q", st.IdP))
		}
		if sh.issuer != in.cfg.EntityID {
			return fail("issuer", fmt.Errorf("response issuer %s, login was sent to %q", quoted(sh.issuer), in.cfg.EntityID))
		}
	} else {
		unsolicited = true
		if in = m.byEntity[sh.issuer]; in == nil {
			return fail("issuer", fmt.Errorf("response from unknown issuer %s", quoted(sh.issuer)))
		}
		*idpName = in.cfg.Name
		if !in.cfg.AllowIdPInitiated {
			return fail("no_login_state", fmt.Errorf("no pending login in this browser matches the response (expired, used, or started in another browser), and idp %s may not start logins", in.cfg.Name))
		}
		if sh.inResponseTo != "" {
			return fail("in_response_to", errors.New("response answers a request with no pending login (expired, used, or from another browser)"))
		}
		returnTo = m.safeReturn(relay)
	}
	id, until, f := m.validate(in, sh, requestIDs, unsolicited, m.now())
	if f != nil {
		return Identity{}, "", f
	}
	if err := acceptedContext(in, stepUp, id.AuthnContext); err != nil {
		return fail("authn_context", err)
	}
	fresh, err := m.replay.Claim(r.Context(), id.AssertionID, until)
	if err != nil {
		return Identity{}, "", &Failure{Page: Unavailable, Reason: "replay_cache", Err: err}
	}
	if !fresh {
		return fail("replay", fmt.Errorf("assertion %s was already used", id.AssertionID))
	}
	// Only an accepted, fresh login may make the IdP answer a query.
	if in.cfg.AttributeQuery {
		if err := m.queryAttributes(r.Context(), in, &id); err != nil {
			return Identity{}, "", &Failure{Page: Unavailable, Reason: "attribute_query", Err: err}
		}
	}
	m.log.Debug("saml response accepted", zap.String("idp", in.cfg.Name), zap.String("assertion_id", id.AssertionID), zap.Bool("unsolicited", unsolicited))
	return id, returnTo, nil
}

// validate checks a pre-checked response from in (verifyResponse, then
// checkAssertion) as at the instant now, and returns the identity it
// asserts and until when its assertion ID must be remembered. Every check
// below it reads the time from now, never from the Manager's clock or
// crewjam/saml's, so that Explain can judge at another instant while
// the Manager serves.
func (m *Manager) validate(in *idp, sh shape, requestIDs []string, unsolicited bool, now time.Time) (Identity, time.Time, *Failure) {
	if in.sp.Load() == nil {
		return Identity{}, time.Time{}, &Failure{Page: Unavailable, Reason: "metadata", Err: errNoMetadata}
	}
	a, reason, err := m.verifyResponseSafely(in, sh, requestIDs, unsolicited, now)
	if err != nil {
		return Identity{}, time.Time{}, &Failure{Page: LoginFailed, Reason: reason, Err: err}
	}
	until, err := m.checkAssertion(a, unsolicited, now)
	if err != nil {
		return Identity{}, time.Time{}, &Failure{Page: LoginFailed, Reason: "assertion", Err: err}
	}
	id := Identity{IdP: in.cfg.Name, EntityID: in.cfg.EntityID, NameID: a.Subject.NameID.Value,
		NameIDFormat: a.Subject.NameID.Format, AssertionID: a.ID, Unsolicited: unsolicited, Attributes: map[string][]string{}}
	if len(a.AuthnStatements) > 0 {
		st := a.AuthnStatements[0]
		id.SessionIndex, id.AuthnInstant = st.SessionIndex, st.AuthnInstant
		if st.AuthnContext.AuthnContextClassRef != nil {
			id.AuthnContext = strings.TrimSpace(st.AuthnContext.AuthnContextClassRef.Value)
		}
	}
	for _, stmt := range a.AttributeStatements {
		for _, attr := range stmt.Attributes {
			for _, v := range attr.Values {
				id.Attributes[attr.Name] = append(id.Attributes[attr.Name], v.Value)
			}
		}
	}
	return id, until, nil
}

// acceptedContext enforces the authentication context: the assertion's
// class must be one of the step-up's, or else one of the IdP's
// authn_context, when either is set.
func acceptedContext(in *idp, stepUp []string, got string) error {
	accepted := in.cfg.AuthnContext
	if len(stepUp) > 0 {
		accepted = stepUp
	}
	if len(accepted) == 0 || slices.Contains(accepted, got) {
		return nil
	}
	return fmt.Errorf("the assertion's authentication context %s is not one of %s", quoted(got), strings.Join(accepted, ", "))
}

const bearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

// checkAssertion applies the rules crewjam/saml leaves loose: the
// configured clock skew, a mandatory bearer confirmation with Recipient and
// NotOnOrAfter, and no InResponseTo on unsolicited assertions, at the
// instant now. It returns until when the assertion ID must be remembered.
func (m *Manager) checkAssertion(a *saml.Assertion, unsolicited bool, now time.Time) (time.Time, error) {
	skew := m.cfg.ClockSkew
	if a.ID == "" {
		return time.Time{}, errors.New("assertion has no ID")
	}
	if a.Subject == nil || a.Subject.NameID == nil || a.Conditions == nil {
		return time.Time{}, errors.New("assertion lacks Subject, NameID or Conditions")
	}
	if a.IssueInstant.After(now.Add(skew)) {
		return time.Time{}, errors.New("assertion issued in the future")
	}
	c := a.Conditions
	if !c.NotBefore.IsZero() && now.Add(skew).Before(c.NotBefore) {
		return time.Time{}, errors.New("assertion not yet valid")
	}
	if !c.NotOnOrAfter.IsZero() && !now.Add(-skew).Before(c.NotOnOrAfter) {
		return time.Time{}, errors.New("assertion expired")
	}
	if err := m.checkAudience(a); err != nil {
		return time.Time{}, err
	}
	until := c.NotOnOrAfter
	confirmed := false
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		if sc.Method != bearer || d == nil {
			continue
		}
		if d.Recipient != m.acsURL.String() {
			return time.Time{}, fmt.Errorf("recipient %s is not this ACS", quoted(d.Recipient))
		}
		if d.NotOnOrAfter.IsZero() || !now.Add(-skew).Before(d.NotOnOrAfter) {
			return time.Time{}, errors.New("subject confirmation expired or without NotOnOrAfter")
		}
		if unsolicited && d.InResponseTo != "" {
			return time.Time{}, errors.New("unsolicited assertion carries InResponseTo")
		}
		if d.NotOnOrAfter.After(until) {
			until = d.NotOnOrAfter
		}
		confirmed = true
	}
	if !confirmed {
		return time.Time{}, errors.New("no bearer subject confirmation")
	}
	// The assertion is refused once its IssueInstant is MaxIssueDelay old
	// (checkAssertionHead), whatever its NotOnOrAfter (often an hour): its
	// ID need not be remembered longer.
	if last := a.IssueInstant.Add(saml.MaxIssueDelay); last.Before(until) {
		until = last
	}
	return until.Add(skew), nil
}

// Load returns the request's session if its cookie opens and it has not
// timed out, its IdP is configured and it is not revoked. It does no I/O.
// A cookie value that opened before is read from the cache (see
// CacheSessions); every check after the opening runs on every request.
func (m *Manager) Load(r *http.Request) (Session, bool) {
	value, ok := cookieValue(r.Header, m.cfg.Cookie.Name)
	if !ok {
		return Session{}, false
	}
	e := m.opened.get(value)
	if e == nil {
		plain, err := m.sealer.open(m.cfg.Cookie.Name, value)
		if err != nil {
			return Session{}, false
		}
		s, err := decodeSession(plain)
		if err != nil {
			return Session{}, false
		}
		e = m.opened.put(value, s)
	}
	s := e.s
	s.opened = e
	now := m.now()
	if now.Sub(s.Issued) >= m.cfg.Cookie.MaxAge || now.Sub(s.LastSeen) >= m.cfg.Cookie.IdleTimeout {
		m.opened.drop(value, e)
		return Session{}, false
	}
	if _, ok := m.byName[s.IdP]; !ok || m.revoked(s) {
		m.opened.drop(value, e)
		return Session{}, false
	}
	return s, true
}

// Touch records activity for the idle timeout. It re-issues the cookie
// only when the stored last-seen time is more than a minute (or a tenth of
// the idle timeout, if shorter) old, so most requests cost nothing. A
// session read by Load whose cookie was re-issued within that step
// already (its client did not store the new cookie) gets that cookie
// again instead of a newly sealed one: it carries a last-seen time as
// recent as the step allows.
func (m *Manager) Touch(w http.ResponseWriter, s Session) {
	step := min(time.Minute, m.cfg.Cookie.IdleTimeout/10)
	now := m.now()
	if now.Sub(s.LastSeen) < step {
		return
	}
	e := s.opened
	if e == nil || !e.holds(s) {
		s.LastSeen = now
		m.setSession(w, s)
		return
	}
	maxAge := m.cookieMaxAge(s, now)
	rc := e.refreshed.Load()
	if rc == nil || now.Before(rc.lastSeen) || now.Sub(rc.lastSeen) >= step {
		s.LastSeen = now
		value, err := m.sealer.seal(m.cfg.Cookie.Name, s.encode())
		if err != nil {
			m.log.Error("seal session", zap.Error(err))
			return
		}
		rc = &refreshedCookie{lastSeen: now, value: value, maxAge: maxAge, line: []string{m.sessionCookie(value, maxAge).String()}}
		e.refreshed.Store(rc)
	} else if rc.maxAge != maxAge {
		rc = &refreshedCookie{lastSeen: rc.lastSeen, value: rc.value, maxAge: maxAge, line: []string{m.sessionCookie(rc.value, maxAge).String()}}
		e.refreshed.Store(rc)
	}
	h := w.Header()
	if old := h["Set-Cookie"]; len(old) > 0 {
		h["Set-Cookie"] = append(old, rc.line[0])
	} else {
		h["Set-Cookie"] = rc.line // shared; an append copies it
	}
}

func (m *Manager) setSession(w http.ResponseWriter, s Session) {
	value, err := m.sealer.seal(m.cfg.Cookie.Name, s.encode())
	if err != nil {
		m.log.Error("seal session", zap.Error(err))
		return
	}
	http.SetCookie(w, m.sessionCookie(value, m.cookieMaxAge(s, m.now())))
}

// cookieMaxAge is the Max-Age of s's cookie at now: until its absolute
// timeout.
func (m *Manager) cookieMaxAge(s Session, now time.Time) int {
	return int(s.Issued.Add(m.cfg.Cookie.MaxAge).Sub(now) / time.Second)
}

// sessionCookie is the session cookie carrying value.
func (m *Manager) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: m.cfg.Cookie.Name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.secure(), SameSite: http.SameSiteLaxMode}
}

// clearSession deletes the session cookie.
func (m *Manager) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: m.cfg.Cookie.Name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: m.secure(), SameSite: http.SameSiteLaxMode})
}
