package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/net/http/httpguts"

	"gatehouse/provision"
)

// SignedIdentityConfig turns on a signed JWT (ES256) describing the user
// on every proxied request, so that the upstream can check who is asking
// instead of trusting plain headers. The public keys are served at
// <prefix>jwks.json.
type SignedIdentityConfig struct {
	// Header carries the token; default X-Gatehouse-Identity. A client's
	// copy is always removed.
	Header string `yaml:"header"`
	// KeyFiles are PEM files of P-256 private keys (SEC 1 or PKCS #8).
	// The first signs; all are published, so a new key can be prepended
	// while the old one is still trusted. cmd reads them.
	KeyFiles []string `yaml:"key_files"`
	// Issuer is the iss claim; default the external base URL.
	Issuer string `yaml:"issuer"`
	// Audience is the aud claim; default the upstream URL.
	Audience string `yaml:"audience"`
	// Lifetime is exp - iat; default 1m.
	Lifetime time.Duration `yaml:"lifetime"`
}

func (c *SignedIdentityConfig) withDefaults(upstream string) {
	if c.Header == "" {
		c.Header = "X-Gatehouse-Identity"
	}
	if c.Audience == "" {
		c.Audience = upstream
	}
	if c.Lifetime == 0 {
		c.Lifetime = time.Minute
	}
}

// problems is every problem of the section, keyed within it.
func (c *SignedIdentityConfig) problems() []error {
	var errs []error
	if !httpguts.ValidHeaderFieldName(c.Header) {
		errs = append(errs, fmt.Errorf("header: %q is not a valid header name", c.Header))
	}
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer: required (cmd sets the base URL)"))
	}
	if len(c.KeyFiles) == 0 {
		errs = append(errs, errors.New("key_files: at least one P-256 private key (openssl ecparam -name prime256v1 -genkey -noout)"))
	}
	if c.Lifetime < 10*time.Second || c.Lifetime > time.Hour {
		errs = append(errs, errors.New("lifetime: between 10s and 1h"))
	}
	return errs
}

// ParseIdentityKey reads a P-256 private key from PEM (SEC 1 "EC PRIVATE
// KEY" or PKCS #8 "PRIVATE KEY").
func ParseIdentityKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 (prime256v1) key: ES256 needs one")
	}
	return ec, nil
}

// signer makes the identity tokens.
type signer struct {
	header   string
	issuer   string
	audience string
	lifetime time.Duration
	jose     jose.Signer
	jwks     []byte
}

func newSigner(c SignedIdentityConfig, keys []*ecdsa.PrivateKey) (*signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("signed_identity: no keys loaded")
	}
	set := jose.JSONWebKeySet{}
	var kid string
	for i, k := range keys {
		jwk := jose.JSONWebKey{Key: k.Public(), Algorithm: string(jose.ES256), Use: "sig"}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("signed_identity: key %d: %w", i, err)
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
		if i == 0 {
			kid = jwk.KeyID
		}
		set.Keys = append(set.Keys, jwk)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: keys[0], KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("signed_identity: %w", err)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("signed_identity: %w", err)
	}
	return &signer{header: textproto.CanonicalMIMEHeaderKey(c.Header), issuer: c.Issuer, audience: c.Audience,
		lifetime: c.Lifetime, jose: js, jwks: jwks}, nil
}

// claims are the token's contents.
type claims struct {
	Issuer            string   `json:"iss"`
	Audience          string   `json:"aud"`
	Subject           string   `json:"sub"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Name              string   `json:"name,omitempty"`
	Email             string   `json:"email,omitempty"`
	Groups            []string `json:"groups"`
	IssuedAt          int64    `json:"iat"`
	NotBefore         int64    `json:"nbf"`
	Expiry            int64    `json:"exp"`
	ID                string   `json:"jti"`
}

// sign makes a token; each has its own jti.
func (s *signer) sign(u *provision.User, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	payload, err := json.Marshal(claims{Issuer: s.issuer, Audience: s.audience, Subject: u.ID, PreferredUsername: u.UserName,
		Name: u.DisplayName, Email: u.Email, Groups: groups, IssuedAt: now.Unix(), NotBefore: now.Unix(),
		Expiry: now.Add(s.lifetime).Unix(), ID: base64.RawURLEncoding.EncodeToString(jti[:])})
	if err != nil {
		return "", err
	}
	obj, err := s.jose.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// signedToken is a token with the time it stops being reused.
type signedToken struct {
	value   string
	renewAt time.Time
}

// tokenFor returns the identity's token, signing a new one when there is
// none or the cached one has used half its lifetime: an ECDSA signature
// per request would cost more than the rest of the request path. The
// identity is replaced when the user's record is read again, and with it
// the token.
func (s *signer) tokenFor(id *identity, now time.Time) (string, error) {
	if t := id.token.Load(); t != nil && now.Before(t.renewAt) {
		return t.value, nil
	}
	v, err := s.sign(&id.user, now)
	if err != nil {
		return "", err
	}
	id.token.Store(&signedToken{value: v, renewAt: now.Add(s.lifetime / 2)})
	return v, nil
}

// serveJWKS publishes the public keys.
func (s *signer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.jwks)
}
