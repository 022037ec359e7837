// Command samlsp is the peer SP that BenchmarkPeers (test/peers_bench_test.go)
// measures gatehouse against: crewjam/saml's samlsp middleware protecting a
// page that answers 1 KiB, with its session cookie and its request-tracker
// cookie signed with HS256 rather than samlsp's default RS256 (about 1 ms a
// login), so that the comparison is of the SAML work, not of the JWT key.
// It links no gatehouse code.
//
// It serves /saml/acs and /saml/metadata, /debug/mallocs (the process's
// runtime.MemStats Mallocs, for allocations per login) and every other path
// behind RequireAccount.
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/golang-jwt/jwt/v4"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	base := flag.String("url", "", "the SP's public base URL (its ACS is URL/saml/acs)")
	metadata := flag.String("idp-metadata", "", "the IdP's metadata file")
	flag.Parse()
	if err := run(*listen, *base, *metadata); err != nil {
		fmt.Fprintln(os.Stderr, "samlsp:", err)
		os.Exit(1)
	}
}

func run(listen, base, metadataFile string) error {
	root, err := url.Parse(base)
	if err != nil || root.Host == "" {
		return fmt.Errorf("-url %q: not an absolute URL", base)
	}
	raw, err := os.ReadFile(metadataFile)
	if err != nil {
		return err
	}
	idp, err := samlsp.ParseMetadata(raw)
	if err != nil {
		return fmt.Errorf("idp metadata: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	m, err := samlsp.New(samlsp.Options{URL: *root, IDPMetadata: idp})
	if err != nil {
		return err
	}
	audience := root.String()
	m.Session = samlsp.CookieSessionProvider{
		Name: "token", Domain: root.Host, MaxAge: time.Hour, HTTPOnly: true,
		Codec: sessionCodec{key: secret, audience: audience, maxAge: time.Hour},
	}
	m.RequestTracker = samlsp.CookieRequestTracker{
		ServiceProvider: &m.ServiceProvider, NamePrefix: "saml_", MaxAge: saml.MaxIssueDelay,
		Codec: trackedRequestCodec{key: secret, audience: audience, maxAge: saml.MaxIssueDelay},
	}
	// samlsp's default error handler logs the whole response; the reason
	// is enough here.
	m.OnError = func(w http.ResponseWriter, _ *http.Request, err error) {
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		log.Printf("refused: %v", err)
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
	}

	page := []byte(strings.Repeat("x", 1024))
	mux := http.NewServeMux()
	mux.Handle("/saml/", m)
	mux.HandleFunc("GET /debug/mallocs", func(w http.ResponseWriter, _ *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "%d\n", ms.Mallocs)
	})
	mux.Handle("/", m.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(page)
	})))

	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() { <-stop; srv.Close() }()
	log.Printf("serving %s on %s", base, l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// sessionCodec is samlsp.JWTSessionCodec with an HMAC key: the same claims,
// the same checks on decode.
type sessionCodec struct {
	key      []byte
	audience string
	maxAge   time.Duration
}

func (c sessionCodec) New(a *saml.Assertion) (samlsp.Session, error) {
	return samlsp.JWTSessionCodec{Audience: c.audience, Issuer: c.audience, MaxAge: c.maxAge}.New(a)
}

func (c sessionCodec) Encode(s samlsp.Session) (string, error) {
	claims, ok := s.(samlsp.JWTSessionClaims)
	if !ok {
		return "", fmt.Errorf("session of type %T", s)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.key)
}

func (c sessionCodec) Decode(signed string) (samlsp.Session, error) {
	var claims samlsp.JWTSessionClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
	if _, err := p.ParseWithClaims(signed, &claims, func(*jwt.Token) (any, error) { return c.key, nil }); err != nil {
		return nil, err
	}
	if !claims.VerifyAudience(c.audience, true) || !claims.VerifyIssuer(c.audience, true) || !claims.SAMLSession {
		return nil, errors.New("not a session of this SP")
	}
	return claims, nil
}

// trackedRequestCodec is samlsp.JWTTrackedRequestCodec with an HMAC key.
type trackedRequestCodec struct {
	key      []byte
	audience string
	maxAge   time.Duration
}

func (c trackedRequestCodec) Encode(v samlsp.TrackedRequest) (string, error) {
	now := saml.TimeNow()
	claims := samlsp.JWTTrackedRequestClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Audience: jwt.ClaimStrings{c.audience}, Issuer: c.audience, Subject: v.Index,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(c.maxAge)),
		},
		TrackedRequest:   v,
		SAMLAuthnRequest: true,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.key)
}

func (c trackedRequestCodec) Decode(signed string) (*samlsp.TrackedRequest, error) {
	var claims samlsp.JWTTrackedRequestClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
	if _, err := p.ParseWithClaims(signed, &claims, func(*jwt.Token) (any, error) { return c.key, nil }); err != nil {
		return nil, err
	}
	if !claims.VerifyAudience(c.audience, true) || !claims.VerifyIssuer(c.audience, true) || !claims.SAMLAuthnRequest {
		return nil, errors.New("not a login of this SP")
	}
	claims.Index = claims.Subject
	return &claims.TrackedRequest, nil
}
