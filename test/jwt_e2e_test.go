package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// jwksKeys reads a JWKS document the way an upstream would, by hand.
func jwksKeys(t *testing.T, body string) map[string]*ecdsa.PublicKey {
	t.Helper()
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Alg, Use string }
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("jwks: %v: %s", err, body)
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Use != "sig" || k.Kid == "" {
			t.Errorf("jwks key %+v: want an EC P-256 ES256 signing key with a kid", k)
		}
		x, _ := base64.RawURLEncoding.DecodeString(k.X)
		y, _ := base64.RawURLEncoding.DecodeString(k.Y)
		if len(x) != 32 || len(y) != 32 {
			t.Fatalf("jwks key %s: coordinates of %d and %d bytes, want 32", k.Kid, len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("jwks key %s: %v", k.Kid, err)
		}
		out[k.Kid] = pub
	}
	return out
}

// TestSignedIdentity: every proxied request carries an ES256 token that a
// standard JOSE library verifies with the published keys, for the
// upstream as audience; a token is reused for half its lifetime, and a
// client's copy of the header never arrives.
func TestSignedIdentity(t *testing.T) {
	current, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	previous, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := newHarness(t, options{identityKeys: []*ecdsa.PrivateKey{current, previous}})
	code, body := h.get(h.browser(), "/.gatehouse/jwks.json", nil)
	if code != http.StatusOK {
		t.Fatalf("jwks.json: %d", code)
	}
	keys := jwksKeys(t, body)
	if len(keys) != 2 {
		t.Fatalf("jwks has %d keys, want 2 (current and previous)", len(keys))
	}

	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	forged := http.Header{"X-Gatehouse-Identity": {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."}}
	var tokens []string
	for range 2 {
		if code, _ := h.get(c, "/home", forged); code != http.StatusOK {
			t.Fatalf("GET /home: %d", code)
		}
		up := h.upstream.last(t)
		if got := up.Header.Values("X-Gatehouse-Identity"); len(got) != 1 || strings.HasPrefix(got[0], "eyJhbGciOiJub25l") {
			t.Fatalf("upstream identity header = %q: want one token of gatehouse's", got)
		}
		tokens = append(tokens, up.Header.Get("X-Gatehouse-Identity"))
	}

	keyfunc := func(tok *jwt.Token) (any, error) {
		if k, ok := keys[tok.Header["kid"].(string)]; ok {
			return k, nil
		}
		return nil, errors.New("unknown kid")
	}
	parse := func(tok, aud string) (jwt.MapClaims, error) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok, claims, keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(aud),
			jwt.WithIssuer(h.base), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(h.clock.Now))
		return claims, err
	}
	upstream := h.upstream.server.URL
	claims, err := parse(tokens[0], upstream)
	if err != nil {
		t.Fatalf("verify with the published keys: %v", err)
	}
	var userID string
	h.db().QueryRow(`SELECT id FROM gatehouse_users WHERE user_name = 'alice'`).Scan(&userID)
	groups, _ := claims["groups"].([]any)
	if claims["sub"] != userID || claims["email"] != "alice@example.com" || claims["preferred_username"] != "alice" ||
		len(groups) != 2 || !slices.Contains(groups, any("admins")) || !slices.Contains(groups, any("staff")) {
		t.Errorf("claims = %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 60 || int64(iat) != h.clock.Now().Unix() {
		t.Errorf("iat %v exp %v: want a one-minute token issued now", iat, exp)
	}
	// A token is reused for half its lifetime, then replaced.
	if tokens[1] != tokens[0] || claims["jti"] == "" {
		t.Errorf("second request at once: another token (or no jti %v); want the same one reused", claims["jti"])
	}
	h.clock.Advance(31e9)
	if code, _ := h.get(c, "/home", nil); code != http.StatusOK {
		t.Fatal(code)
	}
	third, err := parse(h.upstream.last(t).Header.Get("X-Gatehouse-Identity"), upstream)
	if err != nil || third["jti"] == claims["jti"] || int64(third["iat"].(float64)) != h.clock.Now().Unix() {
		t.Errorf("after half the lifetime: jti %v (first %v), iat %v, err %v: want a new token issued now", third["jti"], claims["jti"], third["iat"], err)
	}
	if _, err := parse(tokens[0], "https://other-app.example.test"); err == nil {
		t.Error("the token verified for another audience")
	}
	parts := strings.Split(tokens[0], ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "alice@", "mallory@", 1))) + "." + parts[2]
	if _, err := parse(tampered, upstream); err == nil {
		t.Error("a tampered token verified")
	}
	h.clock.Advance(30e9)
	if _, err := parse(tokens[0], upstream); err == nil {
		t.Error("the token verified after it expired")
	}
}
