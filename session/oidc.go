package session

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// OpenID Connect relying party: an IdP of kind oidc logs users in by the
// authorization code flow with PKCE (S256). The login state (state,
// nonce, PKCE verifier, return path) travels sealed in the same cookie
// slots as a SAML login's, so any replica finishes a login any other
// started. The ID token is verified by go-oidc against the provider's
// keys (jwksCache) with the configured algorithms, then by the checks
// go-oidc leaves to its caller: nonce, azp, issued-at, acr. Its claims
// become the Identity's attributes, and from there the login is a SAML
// login's: the same mapping, JIT, session and revocations.

// oidcSubjectFormat is the NameIDFormat of an OpenID Connect login's
// Identity: its NameID is the ID token's sub, unique within the issuer.
const oidcSubjectFormat = "urn:gatehouse:oidc:sub"

// Kind is the kind of the IdP the identity comes from: KindOIDC for an
// OpenID Connect login, else KindSAML. It is set where the identity is
// made, never read from what the IdP sent.
func (id Identity) Kind() string {
	if id.IdPKind == KindOIDC {
		return KindOIDC
	}
	return KindSAML
}

// oidcIdP is the OpenID Connect state of an IdP of kind oidc.
type oidcIdP struct {
	client *http.Client // trusts issuer_ca_file when set
	prov   atomic.Pointer[oidcProvider]
}

// oidcProvider is a provider's discovery document, loaded.
type oidcProvider struct {
	disc     oidcDiscovery
	keys     *jwksCache
	verifier *oidc.IDTokenVerifier
	// authStyle is how the client secret is sent to the token endpoint.
	authStyle oauth2.AuthStyle
}

// oidcDiscovery is what gatehouse reads of a discovery document.
type oidcDiscovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods              []string `json:"code_challenge_methods_supported"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
	AuthorizationResponseIssParameter bool     `json:"authorization_response_iss_parameter_supported"`
}

// maxDiscoveryBytes bounds a discovery document.
const maxDiscoveryBytes = 256 << 10

// newOIDCIdP prepares the HTTP client of an oidc IdP.
func newOIDCIdP(p IdP, base *http.Client) (*oidcIdP, error) {
	o := &oidcIdP{client: base}
	if len(p.caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(p.caPEM) {
			return nil, fmt.Errorf("issuer_ca_file: no PEM certificate in %s", p.IssuerCAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		o.client = &http.Client{Timeout: base.Timeout, Transport: tr}
	}
	return o, nil
}

// loadOIDC reads the provider's discovery document (falling back to the
// last good copy in metadata_cache_dir when it fails and none is loaded)
// and installs it.
func (m *Manager) loadOIDC(ctx context.Context, in *idp) (err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fromCache := false
	defer func() { m.recordLoad(in, err, fromCache) }()
	where := strings.TrimSuffix(in.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	data, err := fetchJSON(ctx, in.oidc.client, where, maxDiscoveryBytes)
	if err != nil && m.cfg.MetadataCacheDir != "" && in.oidc.prov.Load() == nil {
		if b, cerr := os.ReadFile(cachePath(m.cfg.MetadataCacheDir, where)); cerr == nil {
			m.log.Warn("openid provider discovery failed; using the last good copy", zap.String("idp", in.cfg.Name), zap.Error(err))
			data, err, fromCache = b, nil, true
		}
	}
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	var d oidcDiscovery
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if err := d.check(in.cfg.Issuer); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	p := &oidcProvider{disc: d, keys: newJWKSCache(d.JWKSURI, in.oidc.client, in.cfg.IDTokenAlgs, func() time.Time { return m.now() })}
	if old := in.oidc.prov.Load(); old != nil && old.disc.JWKSURI == d.JWKSURI {
		// A refreshed document keeps the cache, whose keys are read again
		// now: a key the provider withdrew is dropped, and when the read
		// fails the keys held stay.
		p.keys = old.keys
		if _, err := p.keys.current(ctx, true); err != nil {
			m.log.Warn("openid provider keys not read again", zap.String("idp", in.cfg.Name), zap.Error(err))
		}
	} else if _, err := p.keys.current(ctx, false); err != nil {
		// Read again at the first token; a provider whose keys cannot be
		// read yet is still discovered.
		m.log.Warn("openid provider keys not read", zap.String("idp", in.cfg.Name), zap.Error(err))
	}
	p.verifier = oidc.NewVerifier(in.cfg.Issuer, p.keys, &oidc.Config{ClientID: in.cfg.ClientID,
		SupportedSigningAlgs: in.cfg.IDTokenAlgs,
		// exp is checked with the configured skew: go-oidc compares it
		// with this clock, set back by the skew.
		Now: func() time.Time { return m.now().Add(-m.cfg.ClockSkew) }})
	p.authStyle = oauth2.AuthStyleInHeader
	if len(d.TokenEndpointAuthMethods) > 0 && !slices.Contains(d.TokenEndpointAuthMethods, "client_secret_basic") &&
		slices.Contains(d.TokenEndpointAuthMethods, "client_secret_post") {
		p.authStyle = oauth2.AuthStyleInParams
	}
	in.oidc.prov.Store(p)
	in.next = m.now().Add(m.refresh)
	if m.cfg.MetadataCacheDir != "" && !fromCache {
		if err := writeCache(cachePath(m.cfg.MetadataCacheDir, where), data); err != nil {
			m.log.Warn("keep a copy of the discovery document", zap.String("idp", in.cfg.Name), zap.Error(err))
		}
	}
	m.log.Info("openid provider discovered", zap.String("idp", in.cfg.Name), zap.String("issuer", d.Issuer), zap.Bool("from_cache", fromCache))
	return nil
}

// check refuses a discovery document of another issuer, or one whose
// endpoints gatehouse cannot use safely.
func (d oidcDiscovery) check(issuer string) error {
	if d.Issuer != issuer {
		return fmt.Errorf("the document names the issuer %q, not the configured %q", d.Issuer, issuer)
	}
	scheme := "https"
	if strings.HasPrefix(issuer, "http:") {
		scheme = "http" // a plain-http demo (checked by Validate)
	}
	for name, v := range map[string]string{"authorization_endpoint": d.AuthorizationEndpoint, "token_endpoint": d.TokenEndpoint,
		"jwks_uri": d.JWKSURI} {
		if u, err := url.Parse(v); err != nil || u.Scheme != scheme || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("%s: %q is not an %s URL", name, v, scheme)
		}
	}
	for name, v := range map[string]string{"userinfo_endpoint": d.UserinfoEndpoint, "end_session_endpoint": d.EndSessionEndpoint} {
		if u, err := url.Parse(v); v != "" && (err != nil || u.Scheme != scheme || u.Host == "" || u.Fragment != "") {
			return fmt.Errorf("%s: %q is not an %s URL", name, v, scheme)
		}
	}
	if len(d.CodeChallengeMethods) > 0 && !slices.Contains(d.CodeChallengeMethods, "S256") {
		return errors.New("the provider does not support PKCE with S256")
	}
	return nil
}

// fetchJSON reads a JSON document of at most limit bytes.
func fetchJSON(ctx context.Context, client *http.Client, where string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", where, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", where, limit)
	}
	return b, nil
}

// redirectURI is the callback the provider sends the browser back to.
func (m *Manager) redirectURI() string {
	u := *m.base
	u.Path = m.cfg.Endpoints.OIDCCallback
	return u.String()
}

// oauthConfig is the client's OAuth 2.0 configuration for the token
// exchange.
func (in *idp) oauthConfig(p *oidcProvider, redirect string) *oauth2.Config {
	c := &oauth2.Config{ClientID: in.cfg.ClientID, ClientSecret: in.cfg.secret, RedirectURL: redirect, Scopes: in.cfg.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.disc.AuthorizationEndpoint, TokenURL: p.disc.TokenEndpoint, AuthStyle: p.authStyle}}
	if in.cfg.key != nil {
		c.ClientSecret, c.Endpoint.AuthStyle = "", oauth2.AuthStyleInParams
	}
	return c
}

// acrValues splits step-up or configured classes into the acr values to
// request; "amr:" entries are methods, judged on the amr claim only.
func acrValues(refs []string) []string {
	var out []string
	for _, r := range refs {
		if !strings.HasPrefix(r, amrPrefix) {
			out = append(out, r)
		}
	}
	return out
}

// amrPrefix marks an authentication method (an amr value) among the
// accepted classes of a step-up rule: "amr:mfa".
const amrPrefix = "amr:"

// startOIDCLogin sends the browser to the provider's authorization
// endpoint.
func (m *Manager) startOIDCLogin(w http.ResponseWriter, r *http.Request, in *idp, returnTo string, opts LoginOptions) error {
	p := in.oidc.prov.Load()
	if p == nil {
		return &Failure{Page: Unavailable, Reason: "metadata", Err: fmt.Errorf("idp %s: %w", in.cfg.Name, errNoMetadata), Routine: true}
	}
	token, err := m.loginToken(r)
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "random", Err: err}
	}
	nonce, err := randomToken()
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "random", Err: err}
	}
	verifier := oauth2.GenerateVerifier()
	if len(returnTo) > maxReturnInState {
		returnTo = "/"
	}
	st := loginState{Token: token, RequestID: nonce, IdP: in.cfg.Name, ReturnTo: returnTo, Expires: m.now().Add(m.cfg.LoginTimeout),
		AuthnContext: strings.Join(opts.AuthnContext, " "), Verifier: verifier}
	sealed, err := m.sealer.seal(m.bindingCookieName(token), st.encode())
	if err != nil {
		return &Failure{Page: Unavailable, Reason: "seal", Err: err}
	}
	params := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	refs := in.cfg.AuthnContext
	if len(opts.AuthnContext) > 0 {
		refs = opts.AuthnContext
	}
	if acr := acrValues(refs); len(acr) > 0 {
		params = append(params, oauth2.SetAuthURLParam("acr_values", strings.Join(acr, " ")))
	}
	switch {
	case in.cfg.ForceAuthn || opts.ForceAuthn:
		params = append(params, oauth2.SetAuthURLParam("prompt", "login"))
	case in.cfg.IsPassive:
		params = append(params, oauth2.SetAuthURLParam("prompt", "none"))
	}
	to := in.oauthConfig(p, m.redirectURI()).AuthCodeURL(token, params...)
	http.SetCookie(w, m.bindingCookie(token, sealed, int(m.cfg.LoginTimeout/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

// OIDCCallback returns the redirection endpoint of the authorization code
// flow: it checks the browser's login state, exchanges the code, verifies
// the ID token, runs login (JIT provisioning), issues the session and
// redirects to the stored return path.
func (m *Manager) OIDCCallback(login LoginFunc) http.Handler {
	return m.serve(func(w http.ResponseWriter, r *http.Request) error { return m.oidcCallback(w, r, login) })
}

// maxCallbackQuery bounds the callback's query: a code, a state, an
// issuer, a session state.
const maxCallbackQuery = 8 << 10

func (m *Manager) oidcCallback(w http.ResponseWriter, r *http.Request, login LoginFunc) error {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	var idpName string
	id, returnTo, f := m.oidcConsume(w, r, &idpName)
	if f != nil {
		ev := []zap.Field{zap.String("reason", f.Reason), zap.String("idp_kind", KindOIDC)}
		if idpName != "" {
			ev = append(ev, zap.String("idp", idpName))
		}
		m.auditEvent(w, r, zap.WarnLevel, "login", "refused", ev...)
		return f
	}
	return m.finishLogin(w, r, login, id, returnTo)
}

// oidcConsume is the callback's checks, cheapest first: the query's size
// and state, the browser's sealed login state (before any network
// request), then the token exchange and the ID token.
func (m *Manager) oidcConsume(w http.ResponseWriter, r *http.Request, idpName *string) (_ Identity, returnTo string, _ *Failure) {
	fail := func(reason string, err error) (Identity, string, *Failure) {
		return Identity{}, returnTo, &Failure{Page: LoginFailed, Reason: reason, Err: err, ReturnTo: returnTo}
	}
	if len(r.URL.RawQuery) > maxCallbackQuery {
		return fail("too_large", fmt.Errorf("callback query of %d bytes", len(r.URL.RawQuery)))
	}
	q := r.URL.Query()
	state := q.Get("state")
	st, ok := m.pendingLogin(w, r, state)
	if !ok {
		return fail("login_state", errors.New("no pending login of this browser matches the callback's state"))
	}
	returnTo, *idpName = st.ReturnTo, st.IdP
	in := m.byName[st.IdP]
	if in == nil || in.oidc == nil {
		return fail("login_state", fmt.Errorf("the login state names idp %q, which is not an OpenID provider", st.IdP))
	}
	if fresh, err := m.claimState(r.Context(), st.Token, st.Expires); err != nil {
		return Identity{}, returnTo, &Failure{Page: Unavailable, Reason: "replay_cache", Err: err, ReturnTo: returnTo}
	} else if !fresh {
		return fail("replay", errors.New("the login state served a callback already"))
	}
	p := in.oidc.prov.Load()
	if p == nil {
		return Identity{}, returnTo, &Failure{Page: Unavailable, Reason: "metadata", Err: errNoMetadata, ReturnTo: returnTo, Routine: true}
	}
	// RFC 9207: a provider that says whom the response is from must say
	// it is this one (a mix-up with another provider).
	if iss := q.Get("iss"); iss != "" && iss != in.cfg.Issuer || iss == "" && p.disc.AuthorizationResponseIssParameter {
		return fail("issuer", fmt.Errorf("the callback's iss %q is not the issuer %q", iss, in.cfg.Issuer))
	}
	if e := q.Get("error"); e != "" {
		return fail("idp_error", fmt.Errorf("the provider answered %s: %s", quoted(e), quoted(q.Get("error_description"))))
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return fail("code", errors.New("the callback carries no usable code"))
	}
	ctx := oidc.ClientContext(r.Context(), in.oidc.client)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(st.Verifier)}
	if in.cfg.key != nil {
		assertion, err := m.clientAssertion(in, p)
		if err != nil {
			return Identity{}, returnTo, &Failure{Page: Unavailable, Reason: "client_assertion", Err: err, ReturnTo: returnTo}
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", assertion))
	}
	tok, err := in.oauthConfig(p, m.redirectURI()).Exchange(ctx, code, opts...)
	if err != nil {
		return fail("token", fmt.Errorf("token exchange: %w", err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fail("id_token", errors.New("the token response holds no id_token"))
	}
	id, err := m.verifyIDToken(ctx, in, p, raw, st)
	if err != nil {
		return fail("id_token", err)
	}
	if in.cfg.UserInfo && p.disc.UserinfoEndpoint != "" {
		if err := m.addUserInfo(ctx, in, p, tok, &id); err != nil {
			return fail("userinfo", err)
		}
	}
	return id, returnTo, nil
}

// verifyIDToken checks an ID token for the login st and returns its
// Identity: go-oidc checks the signature (configured algorithms only),
// iss, aud and exp; then nonce, azp and the audiences, iat, sub, sid and
// the acr this login needs. (at_hash is not checked: in the code flow
// the access token comes from the same TLS response as the ID token, and
// gatehouse uses it only for UserInfo, whose sub must match.)
func (m *Manager) verifyIDToken(ctx context.Context, in *idp, p *oidcProvider, raw string, st loginState) (Identity, error) {
	t, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, err
	}
	var c idClaims
	if err := t.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("id token claims: %w", err)
	}
	c.ACR = usableACR(c.ACR)
	if subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(st.RequestID)) != 1 || st.RequestID == "" {
		return Identity{}, errors.New("id token: the nonce is not this login's")
	}
	if err := checkAZP(c, in.cfg.ClientID); err != nil {
		return Identity{}, err
	}
	now := m.now()
	if t.IssuedAt.IsZero() || t.IssuedAt.After(now.Add(m.cfg.ClockSkew)) {
		return Identity{}, fmt.Errorf("id token: issued at %v, in the future", t.IssuedAt)
	}
	if t.IssuedAt.Before(now.Add(-m.cfg.LoginTimeout - m.cfg.ClockSkew)) {
		return Identity{}, fmt.Errorf("id token: issued at %v, before this login began", t.IssuedAt)
	}
	if t.Subject == "" || len(t.Subject) > 255 {
		return Identity{}, errors.New("id token: sub is empty or longer than 255 characters")
	}
	refs := in.cfg.AuthnContext
	if st.AuthnContext != "" {
		refs = strings.Fields(st.AuthnContext)
	}
	if len(refs) > 0 && !madeWith(refs, c.ACR, c.AMR) {
		return Identity{}, fmt.Errorf("id token: made with acr %q and amr %q; this login needs one of %v", c.ACR, c.AMR, refs)
	}
	if len(c.SID) > maxSessionIndexInCookie {
		return Identity{}, fmt.Errorf("id token: sid of %d bytes, over %d", len(c.SID), maxSessionIndexInCookie)
	}
	attrs, err := claimAttributes(t)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{IdP: in.cfg.Name, EntityID: in.cfg.Issuer, NameID: t.Subject, NameIDFormat: oidcSubjectFormat, SessionIndex: c.SID,
		AuthnContext: authnContextOf(c.ACR, c.AMR, refs), AssertionID: c.JTI, AuthnInstant: t.IssuedAt, Attributes: attrs, IdPKind: KindOIDC}
	if c.AuthTime > 0 {
		id.AuthnInstant = time.Unix(c.AuthTime, 0)
	}
	return id, nil
}

// idClaims are the ID token claims gatehouse checks itself.
type idClaims struct {
	AZP      string   `json:"azp"`
	Audience audience `json:"aud"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	SID      string   `json:"sid"`
	JTI      string   `json:"jti"`
	AuthTime int64    `json:"auth_time"`
}

// audience is aud: one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// checkAZP applies OpenID Connect Core 3.1.3.7: a named authorized party
// must be this client, and a token listing audiences beyond this client
// is refused (gatehouse trusts no other audience).
func checkAZP(c idClaims, clientID string) error {
	if c.AZP != "" && c.AZP != clientID {
		return fmt.Errorf("id token: azp %q is another client", c.AZP)
	}
	if len(c.Audience) > 1 {
		return fmt.Errorf("id token: %d audiences; only this client is trusted", len(c.Audience))
	}
	return nil
}

// usableACR is the acr claim as a class gatehouse records, or "": a value
// that holds a space, or that reads like an amr entry ("amr:mfa"), would
// pass for something else in the session's record.
func usableACR(acr string) string {
	if strings.HasPrefix(acr, amrPrefix) || strings.ContainsFunc(acr, unicode.IsSpace) {
		return ""
	}
	return acr
}

// madeWith reports whether a login made with acr and amr satisfies one of
// refs: an acr value, or "amr:" and a method.
func madeWith(refs []string, acr string, amr []string) bool {
	for _, r := range refs {
		if m, ok := strings.CutPrefix(r, amrPrefix); ok {
			if slices.Contains(amr, m) {
				return true
			}
		} else if r == acr && acr != "" {
			return true
		}
	}
	return false
}

// authnContextOf is the session's record of how a login was made: the
// classes of refs the login met first (so that a step-up's own class is
// always kept), then the acr, then each amr as "amr:<method>",
// space-separated (see Session.MadeWith), as many as fit the cookie's
// bound. A value holding a space is left out.
func authnContextOf(acr string, amr []string, refs []string) string {
	var cand []string
	for _, r := range refs {
		if madeWith([]string{r}, acr, amr) {
			cand = append(cand, r)
		}
	}
	cand = append(cand, acr)
	for _, a := range amr {
		cand = append(cand, amrPrefix+a)
	}
	var parts []string
	n := 0
	for _, p := range cand {
		if p == "" || p == amrPrefix || strings.ContainsAny(p, " \t\r\n") || slices.Contains(parts, p) {
			continue
		}
		if n+len(p)+len(parts) > maxSessionIndexInCookie {
			continue
		}
		parts = append(parts, p)
		n += len(p)
	}
	return strings.Join(parts, " ")
}

// MadeWith reports whether the session's login was made with one of
// accepted: its AuthnContext holds one (for OpenID Connect logins, the
// acr or an "amr:" method).
func (s Session) MadeWith(accepted []string) bool {
	for _, f := range strings.Fields(s.AuthnContext) {
		if slices.Contains(accepted, f) {
			return true
		}
	}
	return false
}

// claimAttributes turns the ID token's claims into attributes, as the
// mapping reads SAML attributes: a string or number is one value, an
// array of them several, an object's members are named with a dot
// (address.country); nested deeper than that, and null, are left out.
func claimAttributes(t *oidc.IDToken) (map[string][]string, error) {
	var all map[string]json.RawMessage
	if err := t.Claims(&all); err != nil {
		return nil, fmt.Errorf("id token claims: %w", err)
	}
	return flattenClaims(all), nil
}

// flattenClaims is claimAttributes over a decoded JSON object.
func flattenClaims(all map[string]json.RawMessage) map[string][]string {
	out := map[string][]string{}
	for name, raw := range all {
		if vals, ok := claimValues(raw); ok {
			out[name] = vals
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			for sub, r := range obj {
				if vals, ok := claimValues(r); ok {
					out[name+"."+sub] = vals
				}
			}
		}
	}
	return out
}

// claimValues reads a scalar or an array of scalars.
func claimValues(raw json.RawMessage) ([]string, bool) {
	if v, ok := scalar(raw); ok {
		return []string{v}, true
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) != nil || arr == nil {
		return nil, false // not an array, or null
	}
	vals := make([]string, 0, len(arr))
	for _, r := range arr {
		v, ok := scalar(r)
		if !ok {
			return nil, false
		}
		vals = append(vals, v)
	}
	return vals, true
}

func scalar(raw json.RawMessage) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strings.TrimSpace(string(raw)), true
	}
	return "", false
}

// addUserInfo reads the UserInfo endpoint and adds the claims the ID
// token lacks. Its sub must be the ID token's (OpenID Connect Core
// 5.3.2): a response about someone else is refused.
func (m *Manager) addUserInfo(ctx context.Context, in *idp, p *oidcProvider, tok *oauth2.Token, id *Identity) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.disc.UserinfoEndpoint, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	tok.SetAuthHeader(req)
	resp, err := in.oidc.client.Do(req)
	if err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("userinfo: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("userinfo: a %q response (signed or encrypted UserInfo is not supported)", ct)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes+1))
	if err != nil || len(b) > maxDiscoveryBytes {
		return fmt.Errorf("userinfo: unreadable or larger than %d bytes", maxDiscoveryBytes)
	}
	return mergeUserInfo(b, id)
}

// mergeUserInfo adds the claims of a UserInfo response that the ID token
// lacks. Its sub must be the ID token's (OpenID Connect Core 5.3.2).
func mergeUserInfo(body []byte, id *Identity) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(body, &all); err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	var sub string
	if json.Unmarshal(all["sub"], &sub) != nil || sub != id.NameID {
		return errors.New("userinfo: its sub is not the ID token's")
	}
	for name, vals := range flattenClaims(all) {
		if _, ok := id.Attributes[name]; !ok {
			id.Attributes[name] = vals
		}
	}
	return nil
}

// clientAssertion is the private_key_jwt assertion for one token
// request (RFC 7523): signed by the client's key, for the token
// endpoint, used once.
func (m *Manager) clientAssertion(in *idp, p *oidcProvider) (string, error) {
	alg := jose.RS256
	if _, ok := in.cfg.key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	} else if _, ok := in.cfg.key.(*rsa.PrivateKey); !ok {
		return "", errors.New("client_key_file: an RSA or EC P-256 key is required")
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if in.cfg.ClientKeyID != "" {
		opts = opts.WithHeader("kid", in.cfg.ClientKeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: crypto.Signer(in.cfg.key)}, opts)
	if err != nil {
		return "", err
	}
	jti, err := randomToken()
	if err != nil {
		return "", err
	}
	now := m.now()
	return jwt.Signed(signer).Claims(jwt.Claims{Issuer: in.cfg.ClientID, Subject: in.cfg.ClientID,
		Audience: jwt.Audience{p.disc.TokenEndpoint}, ID: jti, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
}

// ParseClientKey reads a private_key_jwt key: one PEM block holding an
// RSA key (PKCS #1 or #8) or an EC P-256 key (SEC 1 or PKCS #8).
func ParseClientKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("a %q PEM block, not a private key", b.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("an RSA key shorter than 2048 bits")
		}
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve.Params().Name != "P-256" {
			return nil, errors.New("an EC key on another curve than P-256")
		}
		return k, nil
	}
	return nil, errors.New("an RSA or EC P-256 key is required")
}

// checkOIDC is CheckMetadata for an OpenID provider: its discovery
// document is read and checked, and its keys are read.
func checkOIDC(ctx context.Context, client *http.Client, p IdP) error {
	o, err := newOIDCIdP(p, client)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	data, err := fetchJSON(ctx, o.client, strings.TrimSuffix(p.Issuer, "/")+"/.well-known/openid-configuration", maxDiscoveryBytes)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	var d oidcDiscovery
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if err := d.check(p.Issuer); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if _, err := newJWKSCache(d.JWKSURI, o.client, p.IDTokenAlgs, time.Now).fetch(ctx); err != nil {
		return err
	}
	return nil
}

// ExplainIDToken checks a saved ID token of the OpenID provider idpName
// as its login would have, at the instant at (zero: its iat), against the
// provider's keys (read from its jwks_uri): signature, iss, aud, exp,
// azp. The nonce is the login's alone and is not checked. userinfo, when
// given, is the UserInfo response of the same login; its sub must be the
// token's. It writes nothing.
func (m *Manager) ExplainIDToken(ctx context.Context, raw, userinfo []byte, idpName string, at time.Time) (Identity, time.Time, error) {
	in := m.byName[idpName]
	if in == nil || in.oidc == nil {
		return Identity{}, at, fmt.Errorf("no OpenID provider called %q", idpName)
	}
	token := strings.TrimSpace(string(raw))
	p := in.oidc.prov.Load()
	if p == nil {
		if err := m.loadOIDC(ctx, in); err != nil {
			return Identity{}, at, err
		}
		p = in.oidc.prov.Load()
	}
	payload, err := p.keys.VerifySignature(ctx, token)
	if err != nil {
		return Identity{}, at, fmt.Errorf("signature: %w", err)
	}
	var times struct {
		IssuedAt float64 `json:"iat"`
	}
	if err := json.Unmarshal(payload, &times); err != nil || times.IssuedAt == 0 {
		return Identity{}, at, errors.New("structure: the token has no iat; give the instant to check at")
	}
	if at.IsZero() {
		at = time.Unix(int64(times.IssuedAt), 0)
	}
	v := oidc.NewVerifier(in.cfg.Issuer, p.keys, &oidc.Config{ClientID: in.cfg.ClientID, SupportedSigningAlgs: in.cfg.IDTokenAlgs,
		Now: func() time.Time { return at.Add(-m.cfg.ClockSkew) }})
	t, err := v.Verify(ctx, token)
	if err != nil {
		return Identity{}, at, err
	}
	var c idClaims
	if err := t.Claims(&c); err != nil {
		return Identity{}, at, err
	}
	c.ACR = usableACR(c.ACR)
	if err := checkAZP(c, in.cfg.ClientID); err != nil {
		return Identity{}, at, err
	}
	if t.IssuedAt.After(at.Add(m.cfg.ClockSkew)) {
		return Identity{}, at, fmt.Errorf("id token: issued at %v, after %v", t.IssuedAt, at)
	}
	attrs, err := claimAttributes(t)
	if err != nil {
		return Identity{}, at, err
	}
	id := Identity{IdP: in.cfg.Name, EntityID: in.cfg.Issuer, NameID: t.Subject, NameIDFormat: oidcSubjectFormat, SessionIndex: c.SID,
		AuthnContext: authnContextOf(c.ACR, c.AMR, nil), AssertionID: c.JTI, AuthnInstant: t.IssuedAt, Attributes: attrs, IdPKind: KindOIDC}
	if len(userinfo) > 0 {
		if err := mergeUserInfo(userinfo, &id); err != nil {
			return Identity{}, at, err
		}
	}
	return id, at, nil
}
