package session

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// The OpenID Connect checks that need no provider. Logins through a real
// one are test/oidc_e2e_test.go's.

func oidcConfig(issuer string) Config {
	c := keyConfig()
	c.Endpoints.OIDCCallback = "/.gatehouse/oidc/callback"
	c.Endpoints.OIDCBackchannelLogout = "/.gatehouse/oidc/backchannel-logout"
	c.Endpoints.OIDCSignedOut = "/.gatehouse/oidc/signed-out"
	c.IdPs = []IdP{{Name: "op", Kind: KindOIDC, OIDC: OIDC{Issuer: issuer, ClientID: "gh", ClientSecret: "${S}"}}}
	c.IdPs[0].SetClientCredentials("secret", nil, nil)
	return c
}

// TestOIDCConfigProblems: an IdP of kind oidc must name its issuer
// (https) and client, authenticate one way, ask for openid, and accept
// only asymmetric signatures; SAML settings on it are refused.
func TestOIDCConfigProblems(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*IdP)
		want   string
	}{
		"sound":            {func(*IdP) {}, ""},
		"no issuer":        {func(p *IdP) { p.Issuer = "" }, "issuer: required"},
		"http issuer":      {func(p *IdP) { p.Issuer, p.EntityID = "http://op.example.test", "" }, "issuer: must be an https URL"},
		"issuer query":     {func(p *IdP) { p.Issuer, p.EntityID = "https://op.example.test/?x=1", "" }, "no query"},
		"no client":        {func(p *IdP) { p.ClientID = "" }, "client_id: required"},
		"two secrets":      {func(p *IdP) { p.ClientSecretFile = "/s" }, "exactly one of client_secret"},
		"no secret":        {func(p *IdP) { p.ClientSecret = "" }, "exactly one of client_secret"},
		"key id alone":     {func(p *IdP) { p.ClientKeyID = "k1" }, "client_key_id: goes with client_key_file"},
		"no openid":        {func(p *IdP) { p.Scopes = []string{"email"} }, "scopes: must include openid"},
		"alg none":         {func(p *IdP) { p.IDTokenAlgs = []string{"none"} }, "none accepts unsigned tokens"},
		"hmac":             {func(p *IdP) { p.IDTokenAlgs = []string{"RS256", "HS256"} }, "HS256 is an HMAC"},
		"unknown alg":      {func(p *IdP) { p.IDTokenAlgs = []string{"RS1"} }, "is not one of"},
		"saml setting":     {func(p *IdP) { p.MetadataURL = "https://x" }, "metadata_url: a SAML setting"},
		"entity id":        {func(p *IdP) { p.EntityID = "https://elsewhere" }, "known by its issuer"},
		"acr with a space": {func(p *IdP) { p.AuthnContext = []string{"a b"} }, "is not an acr value"},
		"bad kind":         {func(p *IdP) { p.Kind = "ws-fed" }, "kind: must be saml or oidc"},
	} {
		t.Run(name, func(t *testing.T) {
			c := oidcConfig("https://op.example.test")
			tc.change(&c.IdPs[0])
			err := c.WithDefaults().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// testOP is the part of an OpenID provider these tests need: discovery
// and keys, and a way to sign tokens. It counts key set reads.
type testOP struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	kid      string
	jwksHits atomic.Int64
}

func newTestOP(t *testing.T) *testOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &testOP{key: key, kid: "k1"}
	mux := http.NewServeMux()
	op.srv = httptest.NewTLSServer(mux)
	t.Cleanup(op.srv.Close)
	iss := op.srv.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/auth", "token_endpoint": iss + "/token",
			"jwks_uri": iss + "/jwks", "end_session_endpoint": iss + "/end", "code_challenge_methods_supported": []string{"S256"},
			"backchannel_logout_supported": true})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		op.jwksHits.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: op.kid, Algorithm: "ES256", Use: "sig"}}})
	})
	return op
}

func (op *testOP) sign(t *testing.T, claims map[string]any, kid string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: op.key}, (&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (op *testOP) manager(t *testing.T) *Manager {
	t.Helper()
	c := oidcConfig(op.srv.URL)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: op.srv.Certificate().Raw})
	c.IdPs[0].SetClientCredentials("secret", nil, cert)
	m, err := New(context.Background(), c, Options{Logger: zap.NewNop(), Pages: nopPages{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return m
}

func postLogout(m *Manager, body, contentType string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "https://sp.example.test/.gatehouse/oidc/backchannel-logout", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	m.ServeBackchannelLogout(w, r)
	return w
}

// TestBackchannelLogoutTokenChecks: the back-channel endpoint ends the
// sessions a logout token names only when the token is one: signed by the
// provider's key with an accepted algorithm, of its issuer, for this
// client, recent, with the logout event, a sid or a sub, a jti seen once
// and no nonce. Everything else is a 400 that revokes nothing.
func TestBackchannelLogoutTokenChecks(t *testing.T) {
	op := newTestOP(t)
	m := op.manager(t)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": op.srv.URL, "aud": "gh", "iat": now.Unix(), "jti": fmt.Sprint("j-", now.UnixNano()),
			"sub": "user-1", "sid": "sid-1", "events": map[string]any{backchannelEvent: map[string]any{}}}
	}
	form := func(tok string) string { return url.Values{"logout_token": {tok}}.Encode() }
	const ct = "application/x-www-form-urlencoded"

	for name, edit := range map[string]func(c map[string]any){
		"wrong aud":       func(c map[string]any) { c["aud"] = "someone-else" },
		"nonce":           func(c map[string]any) { c["nonce"] = "n" },
		"no events":       func(c map[string]any) { delete(c, "events") },
		"event not obj":   func(c map[string]any) { c["events"] = map[string]any{backchannelEvent: "yes"} },
		"other event":     func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} },
		"old":             func(c map[string]any) { c["iat"] = now.Add(-10 * time.Minute).Unix() },
		"future":          func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() },
		"expired":         func(c map[string]any) { c["exp"] = now.Add(-5 * time.Minute).Unix() },
		"no iat":          func(c map[string]any) { delete(c, "iat") },
		"no jti":          func(c map[string]any) { delete(c, "jti") },
		"no sub, no sid":  func(c map[string]any) { delete(c, "sub"); delete(c, "sid") },
		"unknown issuer":  func(c map[string]any) { c["iss"] = "https://evil.example.test" },
		"sid far too big": func(c map[string]any) { c["sid"] = strings.Repeat("s", 500) },
	} {
		c := good()
		edit(c)
		if w := postLogout(m, form(op.sign(t, c, op.kid)), ct); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, w.Code)
		}
	}
	// Not signed by the provider: another key, alg none, a changed payload.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: other}, (&jose.SignerOptions{}).WithHeader("kid", op.kid))
	b, _ := json.Marshal(good())
	jws, _ := s.Sign(b)
	forged, _ := jws.CompactSerialize()
	tok := op.sign(t, good(), op.kid)
	parts := strings.Split(tok, ".")
	none := "eyJhbGciOiJub25lIn0." + parts[1] + "."
	changed := parts[0] + "." + strings.TrimRight(base64url(bytes.Replace(mustDecode(t, parts[1]), []byte("user-1"), []byte("user-2"), 1)), "=") + "." + parts[2]
	for name, raw := range map[string]string{"other key": forged, "alg none": none, "changed payload": changed, "garbage": "a.b.c"} {
		if w := postLogout(m, form(raw), ct); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, w.Code)
		}
	}
	// The request itself.
	if w := postLogout(m, form(tok), "application/json"); w.Code != http.StatusBadRequest {
		t.Errorf("json body: %d", w.Code)
	}
	if w := postLogout(m, form(tok)+"&"+form(tok), ct); w.Code != http.StatusBadRequest {
		t.Errorf("two tokens: %d", w.Code)
	}
	if w := postLogout(m, strings.Repeat("x", 20<<10), ct); w.Code != http.StatusBadRequest {
		t.Errorf("oversized: %d", w.Code)
	}
	if _, ok := m.revocations.RevokedAt(sessionKey("op", "sid-1")); ok {
		t.Fatal("a refused token revoked the session")
	}
	// The good token: 200, the sid's sessions revoked; the same token
	// again: 400.
	if w := postLogout(m, form(tok), ct); w.Code != http.StatusOK {
		t.Fatalf("good token: %d %s", w.Code, w.Body)
	}
	if _, ok := m.revocations.RevokedAt(sessionKey("op", "sid-1")); !ok {
		t.Error("the sid's sessions were not revoked")
	}
	if w := postLogout(m, form(tok), ct); w.Code != http.StatusBadRequest {
		t.Errorf("replayed token: %d, want 400", w.Code)
	}
	// sub alone: every session of the subject.
	c := good()
	delete(c, "sid")
	c["jti"] = "j-sub"
	if w := postLogout(m, form(op.sign(t, c, op.kid)), ct); w.Code != http.StatusOK {
		t.Fatalf("sub-only token: %d", w.Code)
	}
	if _, ok := m.revocations.RevokedAt(subjectKey("op", "user-1")); !ok {
		t.Error("the subject's sessions were not revoked")
	}
}

// TestKeyIDFloodReadsKeysRarely: logout tokens naming made-up key IDs
// (anyone can post them) make gatehouse read the provider's keys at most
// once per jwksMinRefetch, not once per token.
func TestKeyIDFloodReadsKeysRarely(t *testing.T) {
	op := newTestOP(t)
	m := op.manager(t)
	c := map[string]any{"iss": op.srv.URL, "aud": "gh", "iat": time.Now().Unix(), "jti": "x", "sub": "u",
		"events": map[string]any{backchannelEvent: map[string]any{}}}
	before := op.jwksHits.Load()
	for i := range 50 {
		postLogout(m, url.Values{"logout_token": {op.sign(t, c, fmt.Sprint("made-up-", i))}}.Encode(), "application/x-www-form-urlencoded")
	}
	if n := op.jwksHits.Load() - before; n > 1 {
		t.Errorf("50 tokens with unknown key IDs read the keys %d times, want at most 1", n)
	}
}

// TestClaimAttributes: claims become attributes as SAML attributes are:
// strings, numbers and booleans one value, arrays several, an object's
// members dotted; deeper objects and null are left out.
func TestClaimAttributes(t *testing.T) {
	var all map[string]json.RawMessage
	json.Unmarshal([]byte(`{"sub":"s","email":"a@b","groups":["x","y"],"n":42,"ok":true,"nothing":null,
		"address":{"country":"NL","geo":{"lat":1}},"mixed":["a",{"b":1}]}`), &all)
	got := flattenClaims(all)
	want := map[string][]string{"sub": {"s"}, "email": {"a@b"}, "groups": {"x", "y"}, "n": {"42"}, "ok": {"true"}, "address.country": {"NL"}}
	if len(got) != len(want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	for k, v := range want {
		if strings.Join(got[k], "|") != strings.Join(v, "|") {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestMadeWith: a step-up rule's classes are acr values, or "amr:"
// methods; a session records both.
func TestMadeWith(t *testing.T) {
	ctx := authnContextOf("urn:acr:2", []string{"pwd", "mfa", "with space"}, nil)
	if ctx != "urn:acr:2 amr:pwd amr:mfa" {
		t.Errorf("authnContextOf = %q", ctx)
	}
	// TestStepUpClassKeptWhenLong (red team R2): a long acr and many amr
	// values do not crowd out the class a step-up asked for, and the
	// record fits the session cookie's bound.
	long := "http://schemas.openid.net/pape/policies/2007/06/multi-factor-physical"
	amr := []string{"pwd", "otp", "hwk", "sms", "face", "fpt", "geo", "kba", "mfa"}
	got := authnContextOf(long, amr, []string{"amr:mfa"})
	if !strings.HasPrefix(got, "amr:mfa ") || len(got) > maxSessionIndexInCookie {
		t.Errorf("authnContextOf(long) = %q (%d bytes)", got, len(got))
	}
	if s := (Session{AuthnContext: got}); !s.MadeWith([]string{"amr:mfa"}) {
		t.Error("the step-up's class was lost")
	}
	s := Session{AuthnContext: ctx}
	for accepted, want := range map[string]bool{"urn:acr:2": true, "amr:mfa": true, "urn:acr:3": false, "amr:otp": false, "mfa": false} {
		if s.MadeWith([]string{accepted}) != want {
			t.Errorf("MadeWith(%q) = %v", accepted, !want)
		}
	}
	if !madeWith([]string{"amr:mfa"}, "", []string{"mfa"}) || madeWith([]string{"urn:x"}, "", nil) || madeWith([]string{""}, "", nil) {
		t.Error("madeWith")
	}
}

func base64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOIDCDiscoveryLastGoodCopy: a discovery document read once is kept
// in metadata_cache_dir; a later start while the provider is down loads
// that copy, and the IdP is ready.
func TestOIDCDiscoveryLastGoodCopy(t *testing.T) {
	op := newTestOP(t)
	cache := t.TempDir()
	c := oidcConfig(op.srv.URL)
	c.MetadataCacheDir = cache
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: op.srv.Certificate().Raw})
	c.IdPs[0].SetClientCredentials("secret", nil, cert)
	m, err := New(context.Background(), c, Options{Logger: zap.NewNop(), Pages: nopPages{}})
	if err != nil || m.Ready() != nil {
		t.Fatalf("first start: %v / %v", err, m.Ready())
	}
	op.srv.Close()
	m2, err := New(context.Background(), c, Options{Logger: zap.NewNop(), Pages: nopPages{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Ready(); err != nil {
		t.Errorf("start with the provider down and a cached copy: %v", err)
	}
	c.MetadataCacheDir = t.TempDir()
	m3, err := New(context.Background(), c, Options{Logger: zap.NewNop(), Pages: nopPages{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m3.Ready(); err == nil {
		t.Error("ready with the provider down and no copy")
	}
}

// TestOIDCDiscoveryRefused: a discovery document of another issuer, or
// with plain-http endpoints, or without PKCE S256, is not loaded.
func TestOIDCDiscoveryRefused(t *testing.T) {
	good := oidcDiscovery{Issuer: "https://op", AuthorizationEndpoint: "https://op/a", TokenEndpoint: "https://op/t", JWKSURI: "https://op/k"}
	if err := good.check("https://op"); err != nil {
		t.Fatalf("good document: %v", err)
	}
	for name, edit := range map[string]func(*oidcDiscovery){
		"other issuer":   func(d *oidcDiscovery) { d.Issuer = "https://op/" },
		"http token":     func(d *oidcDiscovery) { d.TokenEndpoint = "http://op/t" },
		"http jwks":      func(d *oidcDiscovery) { d.JWKSURI = "http://op/k" },
		"http userinfo":  func(d *oidcDiscovery) { d.UserinfoEndpoint = "http://op/u" },
		"no S256":        func(d *oidcDiscovery) { d.CodeChallengeMethods = []string{"plain"} },
		"relative token": func(d *oidcDiscovery) { d.TokenEndpoint = "/t" },
	} {
		d := good
		edit(&d)
		if err := d.check("https://op"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// TestExplainIDToken: a saved ID token is checked against the provider's
// keys, for this client, at its iat (or the instant asked), and its
// claims become the identity; UserInfo of another sub is refused.
func TestExplainIDToken(t *testing.T) {
	op := newTestOP(t)
	m := op.manager(t)
	iat := time.Now().Add(-time.Hour).Truncate(time.Second)
	claims := map[string]any{"iss": op.srv.URL, "aud": "gh", "sub": "s-1", "iat": iat.Unix(), "exp": iat.Add(5 * time.Minute).Unix(),
		"nonce": "n", "email": "a@example.test", "groups": []string{"g1", "g2"}, "sid": "sid-9"}
	tok := op.sign(t, claims, op.kid)
	id, at, err := m.ExplainIDToken(context.Background(), []byte(tok+"\n"), nil, "op", time.Time{})
	if err != nil || !at.Equal(iat) || id.NameID != "s-1" || id.SessionIndex != "sid-9" || strings.Join(id.Attributes["groups"], ",") != "g1,g2" {
		t.Fatalf("explain: %+v at %v: %v", id, at, err)
	}
	if _, _, err := m.ExplainIDToken(context.Background(), []byte(tok), nil, "op", time.Now()); err == nil {
		t.Error("an expired token explained as valid now")
	}
	if _, _, err := m.ExplainIDToken(context.Background(), []byte(tok), []byte(`{"sub":"s-2","email":"x"}`), "op", time.Time{}); err == nil {
		t.Error("UserInfo of another sub accepted")
	}
	id, _, err = m.ExplainIDToken(context.Background(), []byte(tok), []byte(`{"sub":"s-1","email":"other","phone_number":"+1"}`), "op", time.Time{})
	if err != nil || id.Attributes["email"][0] != "a@example.test" || id.Attributes["phone_number"][0] != "+1" {
		t.Errorf("UserInfo supplement: %v %v", id.Attributes, err)
	}
	claims["aud"] = "someone-else"
	if _, _, err := m.ExplainIDToken(context.Background(), []byte(op.sign(t, claims, op.kid)), nil, "op", time.Time{}); err == nil {
		t.Error("a token for another client explained as valid")
	}
}

// flakyRevocations fails its first Revoke.
type flakyRevocations struct {
	Revocations
	failed atomic.Bool
}

func (f *flakyRevocations) Revoke(ctx context.Context, key string, at, until time.Time) error {
	if f.failed.CompareAndSwap(false, true) {
		return fmt.Errorf("redis down")
	}
	return f.Revocations.Revoke(ctx, key, at, until)
}

// TestBackchannelLogoutRetriedAfterFailure (red team R2): a logout token
// whose revocation could not be recorded (503) is taken when the
// provider sends it again, not refused as a replay; a replay after that
// is refused, and a session made after the token was issued outlives it.
func TestBackchannelLogoutRetriedAfterFailure(t *testing.T) {
	op := newTestOP(t)
	m := op.manager(t)
	m.revocations = &flakyRevocations{Revocations: m.revocations}
	now := time.Now()
	tok := op.sign(t, map[string]any{"iss": op.srv.URL, "aud": "gh", "iat": now.Add(-time.Minute).Unix(), "jti": "retry-1",
		"sub": "user-r", "events": map[string]any{backchannelEvent: map[string]any{}}}, op.kid)
	body := url.Values{"logout_token": {tok}}.Encode()
	const ct = "application/x-www-form-urlencoded"
	if w := postLogout(m, body, ct); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("first delivery with the store down: %d, want 503", w.Code)
	}
	if w := postLogout(m, body, ct); w.Code != http.StatusOK {
		t.Fatalf("the provider's retry: %d, want 200", w.Code)
	}
	if w := postLogout(m, body, ct); w.Code != http.StatusBadRequest {
		t.Errorf("a replay: %d, want 400", w.Code)
	}
	old := Session{ID: "a", UserID: "u", IdP: "op", NameID: "user-r", Issued: now.Add(-2 * time.Hour)}
	fresh := Session{ID: "b", UserID: "u", IdP: "op", NameID: "user-r", Issued: now.Add(time.Hour)}
	if !m.revoked(old) || m.revoked(fresh) {
		t.Errorf("revoked: the session before the token %v, one made after it %v", m.revoked(old), m.revoked(fresh))
	}
}

// TestKeyReadSurvivesAHangUp (red team R2): a request that hangs up while
// the provider's keys are being read does not leave the cache empty or
// its reads blocked; and a token with a known key ID is verified at once
// while another request waits on a slow read.
func TestKeyReadSurvivesAHangUp(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			time.Sleep(600 * time.Millisecond)
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	defer srv.Close()
	sign := func(kid string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		jws, _ := s.Sign([]byte(`{"x":1}`))
		raw, _ := jws.CompactSerialize()
		return raw
	}
	c := newJWKSCache(srv.URL, srv.Client(), []string{"ES256"}, time.Now)
	slow.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	c.VerifySignature(ctx, sign("k1")) // hangs up during the first read
	cancel()
	time.Sleep(700 * time.Millisecond) // the read finishes anyway
	if _, err := c.VerifySignature(context.Background(), sign("k1")); err != nil {
		t.Fatalf("after a hang-up during the first read: %v", err)
	}
	// A made-up key ID starts a slow read; a known one does not wait for it.
	c.fetched = time.Time{}
	go c.VerifySignature(context.Background(), sign("made-up"))
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, err := c.VerifySignature(context.Background(), sign("k1")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("a token with a known key waited %v for another's read", d)
	}
}

// TestIdentityKindIsNotFromTheIdP (red team R2): a SAML response naming
// gatehouse's OpenID subject format is still a SAML login.
func TestIdentityKindIsNotFromTheIdP(t *testing.T) {
	if k := (Identity{NameIDFormat: oidcSubjectFormat}).Kind(); k != KindSAML {
		t.Errorf("Kind = %s", k)
	}
	if k := (Identity{IdPKind: KindOIDC}).Kind(); k != KindOIDC {
		t.Errorf("Kind = %s", k)
	}
}

// TestIDTokenAudiences (red team R2): an ID token for this client alone
// is taken; one that also lists another audience, or names another
// authorized party, is refused.
func TestIDTokenAudiences(t *testing.T) {
	for _, tc := range []struct {
		c    idClaims
		want bool
	}{
		{idClaims{Audience: audience{"gh"}}, true},
		{idClaims{Audience: audience{"gh"}, AZP: "gh"}, true},
		{idClaims{Audience: audience{"gh", "other"}, AZP: "gh"}, false},
		{idClaims{Audience: audience{"gh", "other"}}, false},
		{idClaims{Audience: audience{"gh"}, AZP: "other"}, false},
	} {
		if err := checkAZP(tc.c, "gh"); (err == nil) != tc.want {
			t.Errorf("%+v: %v", tc.c, err)
		}
	}
}

// TestLogoutTokensOutOfOrder (red team R3): a logout token delivered late
// (older than one already taken), or replayed, never brings back a
// session that the newer token ended.
func TestLogoutTokensOutOfOrder(t *testing.T) {
	op := newTestOP(t)
	m := op.manager(t)
	now := time.Now()
	tok := func(jti string, iat time.Time) string {
		return url.Values{"logout_token": {op.sign(t, map[string]any{"iss": op.srv.URL, "aud": "gh", "iat": iat.Unix(), "jti": jti,
			"sub": "alice", "events": map[string]any{backchannelEvent: map[string]any{}}}, op.kid)}}.Encode()
	}
	const ct = "application/x-www-form-urlencoded"
	newer, older := tok("new", now), tok("old", now.Add(-4*time.Minute))
	s := Session{ID: "x", UserID: "u", IdP: "op", NameID: "alice", Issued: now.Add(-time.Minute)}
	if w := postLogout(m, newer, ct); w.Code != http.StatusOK || !m.revoked(s) {
		t.Fatalf("the newer token: %d, revoked %v", w.Code, m.revoked(s))
	}
	if w := postLogout(m, older, ct); w.Code != http.StatusOK {
		t.Fatalf("the older token, late: %d", w.Code)
	}
	postLogout(m, older, ct) // a replay
	if !m.revoked(s) {
		t.Error("a late or replayed older token brought the session back")
	}
	r := NewMemoryRevocations(time.Now)
	r.Revoke(context.Background(), "k", now, now.Add(time.Hour))
	r.Revoke(context.Background(), "k", now.Add(-time.Hour), now.Add(time.Minute))
	if at, ok := r.RevokedAt("k"); !ok || !at.Equal(now) {
		t.Errorf("revoked again earlier: at %v %v, want the later instant kept", at, ok)
	}
}

// TestWithdrawnKeyDroppedAtRefresh (red team R3): a key the provider has
// withdrawn from its key set is no longer trusted after the next
// discovery refresh, even when no token names an unknown key.
func TestWithdrawnKeyDroppedAtRefresh(t *testing.T) {
	op := newTestOP(t)
	m := op.manager(t)
	c := map[string]any{"iss": op.srv.URL, "aud": "gh", "iat": time.Now().Unix(), "sub": "u",
		"events": map[string]any{backchannelEvent: map[string]any{}}}
	c["jti"] = "before"
	if w := postLogout(m, url.Values{"logout_token": {op.sign(t, c, op.kid)}}.Encode(), "application/x-www-form-urlencoded"); w.Code != http.StatusOK {
		t.Fatalf("with the key published: %d", w.Code)
	}
	// The provider withdraws k1: its key set now holds another key only.
	old := op.key
	op.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	op.kid = "k2"
	m.now = func() time.Time { return time.Now().Add(time.Minute) } // past the least refetch interval
	if err := m.loadOIDC(context.Background(), m.byName["op"]); err != nil {
		t.Fatal(err)
	}
	op.key, op.kid = old, "k1"
	c["jti"] = "after"
	if w := postLogout(m, url.Values{"logout_token": {op.sign(t, c, "k1")}}.Encode(), "application/x-www-form-urlencoded"); w.Code != http.StatusBadRequest {
		t.Errorf("signed with the withdrawn key after a refresh: %d, want 400", w.Code)
	}
}

// TestACRThatLooksLikeAnAMR (red team R3): an acr value that reads like
// an amr entry, or holds a space, is no class: it cannot meet a rule
// asking for a method.
func TestACRThatLooksLikeAnAMR(t *testing.T) {
	for _, acr := range []string{"amr:mfa", "a b", "x\tamr:mfa"} {
		if got := usableACR(acr); got != "" {
			t.Errorf("usableACR(%q) = %q", acr, got)
		}
		s := Session{AuthnContext: authnContextOf(usableACR(acr), []string{"pwd"}, nil)}
		if s.MadeWith([]string{"amr:mfa"}) {
			t.Errorf("acr %q met amr:mfa", acr)
		}
	}
	if usableACR("urn:acr:2") != "urn:acr:2" {
		t.Error("a plain acr was dropped")
	}
}
