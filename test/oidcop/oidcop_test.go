package oidcop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"gatehouse/test/oidcop"
)

const (
	clientID     = "gatehouse-rp"
	clientSecret = "rp-secret-0123456789abcdef0123456789"
	redirectURI  = "http://127.0.0.1:1/callback" // never contacted: Authorize stops before it
	postLogout   = "http://127.0.0.1:1/signed-out"
	mfa          = "urn:gatehouse:test:mfa"
)

// start runs an OP with one confidential client (and one ES256 client)
// and two accounts; bcl is the client's back-channel logout URI.
func start(t *testing.T, bcl string) *oidcop.Provider {
	t.Helper()
	return oidcop.Start(t, oidcop.Config{
		Clients: []oidcop.Client{
			{ID: clientID, Secret: clientSecret, RedirectURIs: []string{redirectURI},
				PostLogoutRedirectURIs: []string{postLogout}, BackchannelLogoutURI: bcl},
			{ID: "es-rp", Secret: clientSecret, RedirectURIs: []string{redirectURI},
				AuthMethod: "client_secret_post", IDTokenAlg: "ES256", BackchannelLogoutURI: bcl},
			{ID: "nosid-rp", Secret: clientSecret, RedirectURIs: []string{redirectURI}},
		},
		Accounts: []oidcop.Account{
			{Sub: "alice", Claims: map[string]any{"email": "alice@example.test", "email_verified": true,
				"name": "Alice Example", "groups": []string{"staff", "admins"}},
				ACRs: []string{oidcop.DefaultACR, mfa}, AMR: []string{"pwd", "mfa"}},
			{Sub: "bob", Claims: map[string]any{"email": "bob@example.test", "name": "Bob"}, AMR: []string{"pwd"}},
		},
	})
}

// rp is a minimal relying party built from the OP's discovery document.
type rp struct {
	p        *oidcop.Provider
	ctx      context.Context
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	op       *oidc.Provider
}

func newRP(t *testing.T, p *oidcop.Provider, id string) *rp {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), p.HTTPClient())
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	cfg := oauth2.Config{ClientID: id, ClientSecret: clientSecret, RedirectURL: redirectURI,
		Endpoint: op.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile", "groups"}}
	if id == "es-rp" {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	v := op.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: []string{"RS256", "ES256"}})
	return &rp{p: p, ctx: ctx, oauth: cfg, verifier: v, op: op}
}

// login is one code flow with PKCE, state and nonce as sub; it returns
// the code and what the RP must remember.
type pending struct {
	code, state, nonce, verifier string
	callback                     *url.URL
}

func (r *rp) authorize(t *testing.T, browser *http.Client, sub string, extra ...oauth2.AuthCodeOption) pending {
	t.Helper()
	pd := pending{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pd.verifier), oidc.Nonce(pd.nonce)}, extra...)
	cb := r.p.Authorize(t, browser, sub, r.oauth.AuthCodeURL(pd.state, opts...))
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	pd.callback = u
	if !strings.HasPrefix(cb, redirectURI+"?") {
		t.Fatalf("callback %s, want the redirect_uri", cb)
	}
	if e := u.Query().Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, u.Query().Get("error_description"))
	}
	if got := u.Query().Get("state"); got != pd.state {
		t.Fatalf("state %q, want %q", got, pd.state)
	}
	pd.code = u.Query().Get("code")
	return pd
}

func (r *rp) exchange(t *testing.T, pd pending) (*oauth2.Token, *oidc.IDToken, string) {
	t.Helper()
	tok, err := r.oauth.Exchange(r.ctx, pd.code, oauth2.VerifierOption(pd.verifier))
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	if idt.Nonce != pd.nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, pd.nonce)
	}
	return tok, idt, raw
}

type idClaims struct {
	Sub      string   `json:"sub"`
	Nonce    string   `json:"nonce"`
	SID      string   `json:"sid"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Groups   []string `json:"groups"`
	AuthTime int64    `json:"auth_time"`
	AZP      *string  `json:"azp"`
}

func TestDiscoveryOverTLS(t *testing.T) {
	p := start(t, "")
	t.Logf("OP started in %v", p.StartTime)
	if !strings.HasPrefix(p.Issuer, "https://127.0.0.1:") {
		t.Fatalf("issuer %s, want https on the loopback", p.Issuer)
	}
	resp, err := p.HTTPClient().Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer                  string   `json:"issuer"`
		TokenEndpoint           string   `json:"token_endpoint"`
		CodeChallengeMethods    []string `json:"code_challenge_methods_supported"`
		ScopesSupported         []string `json:"scopes_supported"`
		EndSessionEndpoint      string   `json:"end_session_endpoint"`
		BackchannelLogout       bool     `json:"backchannel_logout_supported"`
		BackchannelLogoutSID    bool     `json:"backchannel_logout_session_supported"`
		IDTokenAlgs             []string `json:"id_token_signing_alg_values_supported"`
		ClaimsParameterSupport  bool     `json:"claims_parameter_supported"`
		AuthorizationIssParamOK bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != p.Issuer || doc.TokenEndpoint != p.Issuer+"/token" || doc.EndSessionEndpoint != p.Issuer+"/session/end" {
		t.Fatalf("discovery names %s, %s, %s; want them under %s", doc.Issuer, doc.TokenEndpoint, doc.EndSessionEndpoint, p.Issuer)
	}
	if !slices.Equal(doc.CodeChallengeMethods, []string{"S256"}) || !doc.BackchannelLogout || !doc.BackchannelLogoutSID {
		t.Fatalf("discovery: PKCE %v, back-channel logout %v/%v", doc.CodeChallengeMethods, doc.BackchannelLogout, doc.BackchannelLogoutSID)
	}
	if !slices.Contains(doc.ScopesSupported, "groups") || !slices.Contains(doc.IDTokenAlgs, "ES256") {
		t.Fatalf("discovery: scopes %v, algs %v", doc.ScopesSupported, doc.IDTokenAlgs)
	}
	// CAFile holds the CA; a client without it refuses the front.
	pem, err := os.ReadFile(p.CAFile)
	if err != nil || !strings.Contains(string(pem), "BEGIN CERTIFICATE") {
		t.Fatalf("CAFile: %v", err)
	}
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	if _, err := plain.Get(p.Issuer + "/.well-known/openid-configuration"); err == nil {
		t.Fatal("a client without the test CA trusted the front")
	}
}

func TestCodeFlowPKCE(t *testing.T) {
	l, srv := newLogoutRP(t)
	p := start(t, srv.URL)
	r := newRP(t, p, clientID)
	pd := r.authorize(t, p.HTTPClient(), "alice", oauth2.SetAuthURLParam("acr_values", "urn:other "+mfa))
	if iss := pd.callback.Query().Get("iss"); iss != p.Issuer {
		t.Fatalf("callback iss %q, want %q", iss, p.Issuer)
	}
	tok, idt, raw := r.exchange(t, pd)
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Sub != "alice" || c.SID == "" || c.ACR != mfa || !slices.Equal(c.AMR, []string{"pwd", "mfa"}) ||
		c.Email != "alice@example.test" || c.Name != "Alice Example" || !slices.Equal(c.Groups, []string{"staff", "admins"}) || c.AuthTime == 0 {
		t.Fatalf("ID token claims %+v", c)
	}
	header, payload, _, err := oidcop.JWTParts(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ID token header %v, payload %v", header, payload)
	// UserInfo has the same claims.
	ui, err := r.op.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var uc idClaims
	if err := ui.Claims(&uc); err != nil {
		t.Fatal(err)
	}
	if uc.Sub != "alice" || uc.Email != "alice@example.test" || !slices.Equal(uc.Groups, []string{"staff", "admins"}) {
		t.Fatalf("UserInfo %+v", uc)
	}

	// Without acr_values, the account's first ACR; bob has none, so the default.
	pd = r.authorize(t, p.HTTPClient(), "bob")
	_, idt, _ = r.exchange(t, pd)
	c = idClaims{}
	idt.Claims(&c)
	if c.Sub != "bob" || c.ACR != oidcop.DefaultACR || !slices.Equal(c.AMR, []string{"pwd"}) || c.Groups != nil || c.SID == "" {
		t.Fatalf("bob's ID token claims %+v", c)
	}

	// One browser: alice's session answers a second request for alice;
	// a login_hint naming bob logs bob in instead.
	browser := p.HTTPClient()
	_, idt, _ = r.exchange(t, r.authorize(t, browser, "alice"))
	var a1, a2, b idClaims
	idt.Claims(&a1)
	_, idt, _ = r.exchange(t, r.authorize(t, browser, "alice"))
	idt.Claims(&a2)
	_, idt, _ = r.exchange(t, r.authorize(t, browser, "bob"))
	idt.Claims(&b)
	if a1.Sub != "alice" || a2.SID != a1.SID || b.Sub != "bob" || b.SID == a1.SID {
		t.Fatalf("one browser: alice %+v, again %+v, then bob %+v", a1, a2, b)
	}
	// Switching accounts ended alice's session at the OP, which told the
	// RP by back-channel logout.
	checkLogoutToken(t, r, l.next(t), "alice", a1.SID)

	// oidc-provider puts sid in ID tokens only for clients that registered
	// a backchannel_logout_uri (with backchannel_logout_session_required).
	r = newRP(t, p, "nosid-rp")
	_, idt, _ = r.exchange(t, r.authorize(t, nil, "alice"))
	c = idClaims{}
	idt.Claims(&c)
	if c.Sub != "alice" || c.SID != "" {
		t.Fatalf("a client without back-channel logout: %+v", c)
	}
}

// TestPKCERequired: an authorization request without a code challenge,
// or with the plain method, is refused with an error at the redirect_uri.
func TestPKCERequired(t *testing.T) {
	p := start(t, "")
	r := newRP(t, p, clientID)
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"none":  nil,
		"plain": {oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
	} {
		cb, err := url.Parse(p.Authorize(t, nil, "alice", r.oauth.AuthCodeURL("st", opts...)))
		if err != nil {
			t.Fatal(err)
		}
		if cb.Query().Get("error") != "invalid_request" || cb.Query().Get("code") != "" {
			t.Fatalf("%s: callback %s, want invalid_request", name, cb)
		}
	}
	// An unknown login_hint is an access_denied at the redirect_uri.
	cb, _ := url.Parse(p.Authorize(t, nil, "mallory", r.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))))
	if cb.Query().Get("error") != "access_denied" {
		t.Fatalf("unknown account: callback %s, want access_denied", cb)
	}
}

func TestES256Client(t *testing.T) {
	p := start(t, "")
	r := newRP(t, p, "es-rp")
	_, _, raw := r.exchange(t, r.authorize(t, nil, "alice"))
	h, _, _, err := oidcop.JWTParts(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "ES256" {
		t.Fatalf("ID token header %v, want ES256", h)
	}
}

// TestCodeReplayRefused: a code is good once; the second exchange is
// invalid_grant.
func TestCodeReplayRefused(t *testing.T) {
	p := start(t, "")
	r := newRP(t, p, clientID)
	pd := r.authorize(t, nil, "alice")
	r.exchange(t, pd)
	_, err := r.oauth.Exchange(r.ctx, pd.code, oauth2.VerifierOption(pd.verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("replayed code: %v, want invalid_grant", err)
	}
	// A wrong verifier is refused too.
	pd = r.authorize(t, nil, "alice")
	_, err = r.oauth.Exchange(r.ctx, pd.code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("wrong code_verifier: %v, want invalid_grant", err)
	}
}

func jwksKids(t *testing.T, p *oidcop.Provider) []string {
	t.Helper()
	resp, err := p.HTTPClient().Get(p.Issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatalf("the JWKS publishes a private key %s", k.Kid)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	h, _, _, err := oidcop.JWTParts(raw)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := h["kid"].(string)
	return kid
}

func TestRotateKeys(t *testing.T) {
	_, srv := newLogoutRP(t)
	p := start(t, srv.URL)
	r := newRP(t, p, clientID)
	_, _, raw := r.exchange(t, r.authorize(t, nil, "alice"))
	old := kidOf(t, raw)
	if kids := jwksKids(t, p); len(kids) != 2 || !slices.Contains(kids, old) {
		t.Fatalf("JWKS %v, want 2 keys with %s", kids, old)
	}
	// A code issued before the rotation is still good after it: the
	// rebuilt provider keeps the storage.
	browser := p.HTTPClient()
	before := r.authorize(t, browser, "alice")

	kids := p.RotateKeys(t, false)
	if kids["RS256"] == "" || kids["RS256"] == old || kids["ES256"] == "" {
		t.Fatalf("rotation gave %v", kids)
	}
	_, idt, raw := r.exchange(t, before)
	if got := kidOf(t, raw); got != kids["RS256"] {
		t.Fatalf("after rotation the ID token has kid %s, want %s", got, kids["RS256"])
	}
	var first idClaims
	idt.Claims(&first)
	if got := jwksKids(t, p); len(got) != 4 || !slices.Contains(got, old) || !slices.Contains(got, kids["RS256"]) {
		t.Fatalf("JWKS after rotation %v, want old %s and new %s", got, old, kids["RS256"])
	}
	// The browser's session at the OP survives too: a second login by
	// the same browser is answered from the same session (same sid).
	_, idt, _ = r.exchange(t, r.authorize(t, browser, "alice"))
	var c idClaims
	idt.Claims(&c)
	if c.Sub != "alice" || c.SID == "" || c.SID != first.SID {
		t.Fatalf("after rotation sid %q, before %q", c.SID, first.SID)
	}

	kids2 := p.RotateKeys(t, true)
	got := jwksKids(t, p)
	if len(got) != 2 || !slices.Contains(got, kids2["RS256"]) || !slices.Contains(got, kids2["ES256"]) {
		t.Fatalf("JWKS after rotation with drop %v, want only %v", got, kids2)
	}
	_, _, raw = r.exchange(t, r.authorize(t, nil, "alice"))
	if kidOf(t, raw) != kids2["RS256"] {
		t.Fatalf("kid %s, want %s", kidOf(t, raw), kids2["RS256"])
	}
}

// logoutRP receives back-channel logout tokens.
type logoutRP struct {
	mu     sync.Mutex
	tokens []string
	got    chan struct{}
}

func newLogoutRP(t *testing.T) (*logoutRP, *httptest.Server) {
	l := &logoutRP{got: make(chan struct{}, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		l.tokens = append(l.tokens, r.PostForm.Get("logout_token"))
		l.mu.Unlock()
		l.got <- struct{}{}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return l, srv
}

func (l *logoutRP) next(t *testing.T) string {
	t.Helper()
	select {
	case <-l.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no logout token arrived")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tokens[len(l.tokens)-1]
}

type logoutClaims struct {
	Iss    string                     `json:"iss"`
	Aud    any                        `json:"aud"`
	Sub    string                     `json:"sub"`
	SID    string                     `json:"sid"`
	Events map[string]json.RawMessage `json:"events"`
	JTI    string                     `json:"jti"`
	IAT    int64                      `json:"iat"`
	EXP    int64                      `json:"exp"`
	Nonce  *string                    `json:"nonce"`
}

const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

func checkLogoutToken(t *testing.T, r *rp, raw, sub, sid string) logoutClaims {
	t.Helper()
	// The logout token is signed like the client's ID tokens; go-oidc's
	// verifier checks its signature, issuer, audience and expiry.
	tok, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		t.Fatalf("logout token does not verify: %v", err)
	}
	var c logoutClaims
	if err := tok.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Sub != sub || c.SID != sid || c.JTI == "" || c.Nonce != nil {
		t.Fatalf("logout token %+v, want sub %s sid %s", c, sub, sid)
	}
	if ev, ok := c.Events[logoutEvent]; !ok || string(ev) != "{}" {
		t.Fatalf("logout token events %v", c.Events)
	}
	h, _, _, _ := oidcop.JWTParts(raw)
	if h["typ"] != "logout+jwt" {
		t.Fatalf("logout token header %v", h)
	}
	return c
}

func TestBackchannelLogout(t *testing.T) {
	l, srv := newLogoutRP(t)
	p := start(t, srv.URL+"/backchannel")
	r := newRP(t, p, clientID)
	browser := p.HTTPClient()
	_, idt, raw := r.exchange(t, r.authorize(t, browser, "alice"))
	var c idClaims
	idt.Claims(&c)
	if c.SID == "" {
		t.Fatal("no sid in the ID token")
	}

	p.BackchannelLogout(t, clientID, "alice", c.SID)
	lc := checkLogoutToken(t, r, l.next(t), "alice", c.SID)
	t.Logf("logout token: iat %d exp %d (exp-iat %ds), aud %v", lc.IAT, lc.EXP, lc.EXP-lc.IAT, lc.Aud)
	if lc.EXP-lc.IAT != 120 {
		t.Fatalf("logout token lives %ds, oidc-provider says 120", lc.EXP-lc.IAT)
	}

	// RP-initiated logout through the browser sends one too and ends at
	// the post_logout_redirect_uri.
	q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {postLogout}, "state": {"bye"}}
	end := p.Logout(t, browser, p.Issuer+"/session/end?"+q.Encode())
	if end != postLogout+"?state=bye" {
		t.Fatalf("logout ended at %s", end)
	}
	checkLogoutToken(t, r, l.next(t), "alice", c.SID)

	// An RP that refuses the token is reported.
	if err := p.SendBackchannelLogout(clientID, "alice", "no-such"); err != nil {
		t.Fatalf("a 200 from the RP reported as %v", err)
	}
	l.next(t)
	if err := p.SendBackchannelLogout("no-such-client", "alice", c.SID); err == nil {
		t.Fatal("a logout for an unknown client succeeded")
	}
}

func TestTamper(t *testing.T) {
	p := start(t, "")
	r := newRP(t, p, clientID)

	// A changed payload with the original signature fails verification.
	p.TamperIDToken(func(_, payload map[string]any) { payload["nonce"] = "other" }, true)
	pd := r.authorize(t, nil, "alice")
	tok, err := r.oauth.Exchange(r.ctx, pd.code, oauth2.VerifierOption(pd.verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw := tok.Extra("id_token").(string)
	_, payload, _, _ := oidcop.JWTParts(raw)
	if payload["nonce"] != "other" {
		t.Fatalf("tampered payload %v", payload)
	}
	if _, err := r.verifier.Verify(r.ctx, raw); err == nil {
		t.Fatal("a tampered ID token verified")
	}

	// alg none.
	p.TamperIDToken(func(h, _ map[string]any) { h["alg"] = "none"; delete(h, "kid") }, false)
	pd = r.authorize(t, nil, "alice")
	tok, err = r.oauth.Exchange(r.ctx, pd.code, oauth2.VerifierOption(pd.verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw = tok.Extra("id_token").(string)
	if h, _, sig, _ := oidcop.JWTParts(raw); h["alg"] != "none" || sig != "" {
		t.Fatalf("alg none: header %v signature %q", h, sig)
	}
	if _, err := r.verifier.Verify(r.ctx, raw); err == nil {
		t.Fatal("an unsigned ID token verified")
	}

	// Any response: the JWKS, with its header.
	p.Tamper(func(req *http.Request, status int, header http.Header, body []byte) []byte {
		if req.URL.Path == "/jwks" {
			header.Set("X-Tampered", "yes")
			return []byte(`{"keys":[]}`)
		}
		return body
	})
	resp, err := p.HTTPClient().Get(p.Issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"keys":[]}` || resp.Header.Get("X-Tampered") != "yes" {
		t.Fatalf("tampered JWKS %s %v", body, resp.Header)
	}

	// Tamper(nil) ends it.
	p.Tamper(nil)
	if kids := jwksKids(t, p); len(kids) != 2 {
		t.Fatalf("JWKS after Tamper(nil): %v", kids)
	}
	r.exchange(t, r.authorize(t, nil, "alice"))
}

func TestEditJWT(t *testing.T) {
	tok := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc2NTAwMDAwMH0.c2ln"
	out, err := oidcop.EditJWT(tok, func(h, p map[string]any) { p["sub"] = "bob" }, true)
	if err != nil {
		t.Fatal(err)
	}
	h, p, sig, err := oidcop.JWTParts(out)
	if err != nil || p["sub"] != "bob" || p["exp"] != json.Number("1765000000") || h["kid"] != "k1" || sig != "c2ln" {
		t.Fatalf("edited: %v %v %q %v", h, p, sig, err)
	}
	none, err := oidcop.AlgNone(tok)
	if err != nil || !strings.HasSuffix(none, ".") {
		t.Fatalf("alg none: %q %v", none, err)
	}
	if _, _, _, err := oidcop.JWTParts("a.b"); err == nil {
		t.Fatal("a two-part token parsed")
	}
}

// TestMissingNodeIsAnError: without node the harness reports what to
// install; it does not skip.
func TestMissingNodeIsAnError(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	p, err := oidcop.New(t.TempDir(), oidcop.Config{})
	if err == nil {
		p.Stop()
		t.Fatal("the OP started without node on PATH")
	}
	if !strings.Contains(err.Error(), "make test-deps") {
		t.Fatalf("error %q does not say to run make test-deps", err)
	}
}

// TestPrivateKeyJWT: a client that authenticates with a signed assertion
// (private_key_jwt) and its registered public key; an assertion signed by
// another key is invalid_client.
func TestPrivateKeyJWT(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "rp-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := oidcop.Start(t, oidcop.Config{
		Clients:  []oidcop.Client{{ID: "pkjwt-rp", RedirectURIs: []string{redirectURI}, AuthMethod: "private_key_jwt", JWKS: pub}},
		Accounts: []oidcop.Account{{Sub: "carol", Claims: map[string]any{"email": "carol@example.test"}}},
	})
	r := newRP(t, p, "pkjwt-rp")
	token := func(signer *ecdsa.PrivateKey, pd pending) (int, map[string]any) {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "rp-1"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		assertion, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "pkjwt-rp", Subject: "pkjwt-rp",
			Audience: jwt.Audience{p.Issuer + "/token"}, ID: oauth2.GenerateVerifier(),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := p.HTTPClient().PostForm(p.Issuer+"/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {pd.code}, "redirect_uri": {redirectURI},
			"code_verifier": {pd.verifier}, "client_id": {"pkjwt-rp"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := token(other, r.authorize(t, nil, "carol"))
	if status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Fatalf("assertion signed by another key: %d %v", status, out)
	}
	pd := r.authorize(t, nil, "carol")
	status, out = token(key, pd)
	if status != http.StatusOK {
		t.Fatalf("token endpoint: %d %v", status, out)
	}
	raw, _ := out["id_token"].(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil || idt.Subject != "carol" || idt.Nonce != pd.nonce {
		t.Fatalf("ID token %v: %v", idt, err)
	}
}

// TestDefaultAccount: an authorization request without login_hint (as
// from an RP that sends none) logs in Config.DefaultAccount; a hint still
// names the account; without a default such a request is access_denied,
// and a default that is no account is a config error.
func TestDefaultAccount(t *testing.T) {
	accounts := []oidcop.Account{{Sub: "alice"}, {Sub: "bob"}}
	clients := []oidcop.Client{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{redirectURI}}}
	p := oidcop.Start(t, oidcop.Config{Clients: clients, Accounts: accounts, DefaultAccount: "bob"})
	r := newRP(t, p, clientID)
	_, idt, _ := r.exchange(t, r.authorize(t, nil, ""))
	if idt.Subject != "bob" {
		t.Fatalf("without login_hint: sub %q, want the default account bob", idt.Subject)
	}
	if _, idt, _ = r.exchange(t, r.authorize(t, nil, "alice")); idt.Subject != "alice" {
		t.Fatalf("login_hint=alice: sub %q", idt.Subject)
	}

	p = oidcop.Start(t, oidcop.Config{Clients: clients, Accounts: accounts})
	r = newRP(t, p, clientID)
	cb, _ := url.Parse(p.Authorize(t, nil, "", r.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))))
	if cb.Query().Get("error") != "access_denied" || cb.Query().Get("code") != "" {
		t.Fatalf("no login_hint and no default account: callback %s, want access_denied", cb)
	}

	if p, err := oidcop.New(t.TempDir(), oidcop.Config{Clients: clients, Accounts: accounts, DefaultAccount: "carol"}); err == nil {
		p.Stop()
		t.Fatal("the OP started with a default account that is no account")
	}
}
