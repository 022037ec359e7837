package session

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Logout for OpenID Connect: RP-initiated logout sends the browser to the
// provider's end_session_endpoint after the session is revoked here; the
// provider's back-channel logout (OpenID Connect Back-Channel Logout 1.0)
// ends every session of a sid, or of a sub, through the same revocations
// as SAML single logout, so that it reaches every replica.

// backchannelEvent is the events member a logout token must hold.
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutTokenBody bounds the back-channel logout request's body: a
// form with one JWT.
const maxLogoutTokenBody = 16 << 10

// maxLogoutTokenAge is how old a logout token's iat may be.
const maxLogoutTokenAge = 5 * time.Minute

// rpLogoutURL is where an RP-initiated logout of an OpenID Connect
// session sends the browser, or "" when the provider has no
// end_session_endpoint (or no_single_logout is set).
func (m *Manager) rpLogoutURL(in *idp) string {
	p := in.oidc.prov.Load()
	if p == nil || p.disc.EndSessionEndpoint == "" || in.cfg.NoSingleLogout {
		return ""
	}
	back := *m.base
	back.Path = m.cfg.Endpoints.OIDCSignedOut
	u, err := url.Parse(p.disc.EndSessionEndpoint)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("client_id", in.cfg.ClientID)
	q.Set("post_logout_redirect_uri", back.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// ServeOIDCSignedOut is where the provider returns the browser after an
// RP-initiated logout: the signed-out page.
func (m *Manager) ServeOIDCSignedOut(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	m.pages.SignedOut(w, r)
}

// ServeBackchannelLogout is the back-channel logout endpoint: the
// provider posts a signed logout token naming a sid or a sub, and every
// session of it ends. 200 when the sessions are revoked; 400 (with an
// OAuth error) for a token that is refused; 503 when the revocation
// cannot be recorded, so that the provider retries.
func (m *Manager) ServeBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	refuse := func(status int, reason string, idpName string, err error) {
		ev := []zap.Field{zap.String("reason", reason), zap.String("idp_kind", KindOIDC), zap.String("initiator", "idp"), zap.Error(err)}
		if idpName != "" {
			ev = append(ev, zap.String("idp", idpName))
		}
		m.auditEvent(w, r, zap.WarnLevel, "single_logout", "refused", ev...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		code := "invalid_request"
		if status >= 500 {
			code = "temporarily_unavailable"
		}
		fmt.Fprintf(w, `{"error":%q}`, code)
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		refuse(http.StatusBadRequest, "content_type", "", fmt.Errorf("content type %s", quoted(r.Header.Get("Content-Type"))))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLogoutTokenBody+1))
	if err != nil || len(body) > maxLogoutTokenBody {
		refuse(http.StatusBadRequest, "too_large", "", fmt.Errorf("body unreadable or over %d bytes", maxLogoutTokenBody))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form["logout_token"]) != 1 {
		refuse(http.StatusBadRequest, "logout_token", "", errors.New("the body must hold exactly one logout_token"))
		return
	}
	in, lt, err := m.verifyLogoutToken(r, form.Get("logout_token"))
	name := ""
	if in != nil {
		name = in.cfg.Name
	}
	if err != nil {
		refuse(http.StatusBadRequest, "logout_token", name, err)
		return
	}
	// The token's jti is claimed only once its sessions are revoked: a
	// provider that retries after a 503 must find its token unused. The
	// revocation reaches the sessions issued up to the token's iat (and
	// the clock skew: gatehouse's clock may run ahead of the provider's),
	// so a delivery again (a retry, a replay) ends no session made since.
	target := Session{IdP: in.cfg.Name, NameID: lt.Subject, SessionIndex: lt.SID}
	upTo := lt.iat.Add(m.cfg.ClockSkew)
	if now := m.now(); upTo.After(now) {
		upTo = now
	}
	if err := m.revokeAt(r.Context(), target, upTo); err != nil {
		m.log.Error("back-channel logout: revoke sessions", zap.String("idp", name), zap.Error(err))
		refuse(http.StatusServiceUnavailable, "revoke_failed", name, err)
		return
	}
	fresh, err := m.replay.Claim(r.Context(), "bcl\x00"+in.cfg.Issuer+"\x00"+lt.JTI, lt.until)
	switch {
	case err != nil:
		refuse(http.StatusServiceUnavailable, "replay_cache", name, err)
		return
	case !fresh:
		// Revoked again up to the same iat: nothing a first delivery did
		// not end.
		refuse(http.StatusBadRequest, "replay", name, errors.New("the logout token was used already (jti)"))
		return
	}
	ev := []zap.Field{zap.String("initiator", "idp"), zap.String("idp", name), zap.String("idp_kind", KindOIDC),
		zap.String("channel", "back"), zap.String("name_id", lt.Subject), zap.String("logout_token_id", lt.JTI)}
	if lt.SID != "" {
		ev = append(ev, zap.String("ended", "sessions_by_index"), zap.Strings("session_indexes", []string{lt.SID}))
	} else {
		ev = append(ev, zap.String("ended", "all_sessions_of_name_id"))
	}
	m.auditEvent(w, r, zap.InfoLevel, "single_logout", "ended", ev...)
	w.WriteHeader(http.StatusOK)
}

// logoutToken is a verified logout token.
type logoutToken struct {
	Subject, SID, JTI string
	iat               time.Time
	until             time.Time // how long its jti is remembered
}

// verifyLogoutToken checks a logout token (Back-Channel Logout 1.0,
// 2.6): from a configured provider (by iss, then the signature with its
// keys and algorithms), for this client, recent, with the back-channel
// logout event, a sid or a sub, a jti, and no nonce (an ID token is not a
// logout token).
func (m *Manager) verifyLogoutToken(r *http.Request, raw string) (*idp, logoutToken, error) {
	if len(raw) > maxLogoutTokenBody || strings.Count(raw, ".") != 2 {
		return nil, logoutToken{}, errors.New("not a compact JWS")
	}
	// The issuer picks the provider whose keys verify the signature;
	// nothing else of the payload is read before the signature is
	// checked.
	var peek struct {
		Issuer string `json:"iss"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil || json.Unmarshal(payload, &peek) != nil {
		return nil, logoutToken{}, errors.New("payload is not base64url JSON")
	}
	var in *idp
	for _, cand := range m.idps {
		if cand.oidc != nil && cand.cfg.Issuer == peek.Issuer {
			in = cand
			break
		}
	}
	if in == nil {
		return nil, logoutToken{}, fmt.Errorf("issuer %s is no configured OpenID provider", quoted(peek.Issuer))
	}
	p := in.oidc.prov.Load()
	if p == nil {
		return in, logoutToken{}, errNoMetadata
	}
	verified, err := p.keys.VerifySignature(r.Context(), raw)
	if err != nil {
		return in, logoutToken{}, err
	}
	var c struct {
		Issuer   string                     `json:"iss"`
		Audience audience                   `json:"aud"`
		IssuedAt *float64                   `json:"iat"`
		Expiry   *float64                   `json:"exp"`
		JTI      string                     `json:"jti"`
		Subject  string                     `json:"sub"`
		SID      string                     `json:"sid"`
		Events   map[string]json.RawMessage `json:"events"`
		Nonce    *json.RawMessage           `json:"nonce"`
	}
	if err := json.Unmarshal(verified, &c); err != nil {
		return in, logoutToken{}, fmt.Errorf("claims: %w", err)
	}
	now := m.now()
	skew := m.cfg.ClockSkew
	switch {
	case c.Issuer != in.cfg.Issuer:
		return in, logoutToken{}, errors.New("iss changed under the signature")
	case !slices.Contains(c.Audience, in.cfg.ClientID):
		return in, logoutToken{}, fmt.Errorf("aud %q does not hold this client", []string(c.Audience))
	case c.IssuedAt == nil:
		return in, logoutToken{}, errors.New("no iat")
	case c.Nonce != nil:
		return in, logoutToken{}, errors.New("a nonce: an ID token is not a logout token")
	case c.JTI == "" || len(c.JTI) > 256:
		return in, logoutToken{}, errors.New("no usable jti")
	case c.Subject == "" && c.SID == "":
		return in, logoutToken{}, errors.New("neither sub nor sid")
	case len(c.Subject) > 255 || len(c.SID) > maxSessionIndexInCookie:
		return in, logoutToken{}, errors.New("sub or sid too long")
	}
	ev, ok := c.Events[backchannelEvent]
	var obj map[string]json.RawMessage
	if !ok || json.Unmarshal(ev, &obj) != nil {
		return in, logoutToken{}, errors.New("events does not hold the back-channel logout event as an object")
	}
	iat := time.Unix(int64(*c.IssuedAt), 0)
	if iat.After(now.Add(skew)) || iat.Before(now.Add(-maxLogoutTokenAge-skew)) {
		return in, logoutToken{}, fmt.Errorf("issued at %v: not within %v of now", iat, maxLogoutTokenAge)
	}
	until := iat.Add(maxLogoutTokenAge + 2*skew)
	if c.Expiry != nil {
		exp := time.Unix(int64(*c.Expiry), 0)
		if !now.Add(-skew).Before(exp) {
			return in, logoutToken{}, fmt.Errorf("expired at %v", exp)
		}
	}
	return in, logoutToken{Subject: c.Subject, SID: c.SID, JTI: c.JTI, iat: iat, until: until}, nil
}
