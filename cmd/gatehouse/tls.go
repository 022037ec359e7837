package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// TLSConfig serves HTTPS: from a certificate file pair, or with
// certificates obtained and renewed automatically over ACME. Without either
// gatehouse speaks plain HTTP (behind a TLS-terminating load balancer or
// ingress, the sidecar case).
type TLSConfig struct {
	CertFile string      `yaml:"cert_file"`
	KeyFile  string      `yaml:"key_file"`
	ACME     *ACMEConfig `yaml:"acme"`
	// RedirectListen serves plain HTTP on a second address: a permanent
	// redirect to base_url, and ACME's HTTP-01 challenge.
	RedirectListen string `yaml:"redirect_listen"`
}

// ACMEConfig obtains certificates from an ACME CA with certmagic.
type ACMEConfig struct {
	Domains []string `yaml:"domains"`
	Email   string   `yaml:"email"`
	// CA is the ACME directory URL; default Let's Encrypt's.
	CA string `yaml:"ca"`
	// CARootFile holds the PEM roots to trust for the CA's own HTTPS (a
	// private CA); default the system's.
	CARootFile string `yaml:"ca_root_file"`
	// Challenges: http-01 (needs redirect_listen reachable on port 80)
	// and tls-alpn-01 (on listen, reachable on port 443); default
	// tls-alpn-01, and http-01 too when redirect_listen is set.
	Challenges []string `yaml:"challenges"`
	// StorageDir keeps certificates and ACME accounts; default
	// /var/lib/gatehouse/acme. With state.redis, Redis keeps them instead,
	// so replicas share them and only one solves each challenge.
	StorageDir string `yaml:"storage_dir"`
	// RenewCheckInterval is how often certificates are checked for
	// renewal; default 10m.
	RenewCheckInterval time.Duration `yaml:"renew_check_interval"`
}

func (t *TLSConfig) validate() []error {
	var errs []error
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	a := t.ACME
	if a == nil {
		return errs
	}
	if t.CertFile != "" {
		errs = append(errs, errors.New("tls.acme: choose ACME or cert_file/key_file, not both"))
	}
	if len(a.Domains) == 0 {
		errs = append(errs, errors.New("tls.acme.domains: at least one domain"))
	}
	for i, d := range a.Domains {
		if d == "" || strings.ContainsAny(d, "/:*@ ") {
			errs = append(errs, fmt.Errorf("tls.acme.domains[%d]: %q is not a host name", i, d))
		}
	}
	if a.CA != "" {
		if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, errors.New("tls.acme.ca: must be an https directory URL"))
		}
	}
	for _, c := range a.Challenges {
		if c != "http-01" && c != "tls-alpn-01" {
			errs = append(errs, fmt.Errorf("tls.acme.challenges: %q is not http-01 or tls-alpn-01", c))
		}
	}
	if slices.Contains(a.Challenges, "http-01") && t.RedirectListen == "" {
		errs = append(errs, errors.New("tls.acme.challenges: http-01 needs tls.redirect_listen"))
	}
	if a.RenewCheckInterval < 0 {
		errs = append(errs, errors.New("tls.acme.renew_check_interval: must not be negative"))
	}
	return errs
}

func (a *ACMEConfig) withDefaults(redirect string) {
	if len(a.Challenges) == 0 {
		a.Challenges = []string{"tls-alpn-01"}
		if redirect != "" {
			a.Challenges = append(a.Challenges, "http-01")
		}
	}
	if a.StorageDir == "" {
		a.StorageDir = "/var/lib/gatehouse/acme"
	}
	if a.RenewCheckInterval == 0 {
		a.RenewCheckInterval = certmagic.DefaultRenewCheckInterval
	}
}

// modernTLS is gatehouse's TLS floor: TLS 1.2 with forward-secret AEAD
// suites only, TLS 1.3 preferred (Go's own order).
func modernTLS(c *tls.Config) *tls.Config {
	c.MinVersion = tls.VersionTLS12
	c.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
	}
	return c
}

// certFiles serves a certificate file pair and picks up replaced files
// (a renewal, a Kubernetes Secret update) without a restart: it checks the
// files' modification times every checkEvery, and on reload (SIGHUP).
// A pair that fails to load keeps the one in use.
type certFiles struct {
	certFile, keyFile string
	log               *zap.Logger
	// checkEvery is how often watch looks at the files; newCertFiles sets
	// certCheckEvery, and a test may shorten it before watch starts.
	checkEvery time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time // the newer of the two files' at the last load
}

// certCheckEvery is how often a certificate file pair is checked for
// replacement.
const certCheckEvery = time.Minute

func newCertFiles(certFile, keyFile string, log *zap.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log, checkEvery: certCheckEvery}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return c, nil
}

// load reads the pair; it changes nothing when that fails.
func (c *certFiles) load() error {
	mod := c.filesModTime()
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cert, c.modTime = &pair, mod
	c.mu.Unlock()
	return nil
}

func (c *certFiles) filesModTime() time.Time {
	var newest time.Time
	for _, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest
}

// reload loads the pair again, logging the outcome.
func (c *certFiles) reload() {
	if err := c.load(); err != nil {
		c.log.Error("tls: reloading the certificate files failed; keeping the loaded certificate", zap.Error(err))
		return
	}
	c.log.Info("tls: certificate files loaded", zap.String("cert_file", c.certFile))
}

// watch reloads the pair when its files change, until ctx ends.
func (c *certFiles) watch(ctx context.Context) {
	every := c.checkEvery
	if every <= 0 {
		every = certCheckEvery
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.mu.Lock()
			last := c.modTime
			c.mu.Unlock()
			if !c.filesModTime().Equal(last) {
				c.reload()
			}
		}
	}
}

func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// acme sets up certmagic: its TLS config for the HTTPS listener, a handler
// wrapper that answers HTTP-01 challenges, and a readiness check that
// every domain has a certificate.
type acme struct {
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer
	tls    *tls.Config
	cache  *certmagic.Cache
}

func newACME(ctx context.Context, f *File, storage certmagic.Storage, logger *zap.Logger) (*acme, error) {
	a := f.TLS.ACME
	var roots *x509.CertPool
	if a.CARootFile != "" {
		b, err := os.ReadFile(a.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_root_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, errors.New("tls.acme.ca_root_file: no PEM certificate")
		}
	}
	out := &acme{}
	out.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return out.cfg, nil },
		RenewCheckInterval: a.RenewCheckInterval,
		Logger:             logger,
	})
	out.cfg = certmagic.New(out.cache, certmagic.Config{Storage: storage, Logger: logger})
	issuer := certmagic.ACMEIssuer{CA: a.CA, Email: a.Email, Agreed: true, TrustedRoots: roots, Logger: logger,
		DisableHTTPChallenge:    !slices.Contains(a.Challenges, "http-01"),
		DisableTLSALPNChallenge: !slices.Contains(a.Challenges, "tls-alpn-01")}
	if issuer.CA == "" {
		issuer.CA = certmagic.LetsEncryptProductionCA
	}
	// The challenges are answered by gatehouse's own listeners: its HTTPS
	// listener (TLS-ALPN-01, through the TLS config) and the redirect
	// listener (HTTP-01, through HTTPChallengeHandler). certmagic only
	// needs their ports.
	if p := port(f.Listen); p != "" {
		issuer.AltTLSALPNPort, _ = strconv.Atoi(p)
	}
	if p := port(f.TLS.RedirectListen); p != "" {
		issuer.AltHTTPPort, _ = strconv.Atoi(p)
	}
	out.issuer = certmagic.NewACMEIssuer(out.cfg, issuer)
	out.cfg.Issuers = []certmagic.Issuer{out.issuer}
	if err := out.cfg.ManageAsync(ctx, a.Domains); err != nil {
		out.cache.Stop()
		return nil, fmt.Errorf("tls.acme: %w", err)
	}
	out.tls = modernTLS(out.cfg.TLSConfig())
	out.tls.NextProtos = append([]string{"h2", "http/1.1"}, out.tls.NextProtos...)
	return out, nil
}

// ready reports whether every domain has a certificate in the cache.
func (a *acme) ready(domains []string) error {
	for _, d := range domains {
		if len(a.cache.AllMatchingCertificates(d)) == 0 {
			return fmt.Errorf("no certificate for %s yet", d)
		}
	}
	return nil
}

func port(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}

// redirectHandler sends plain-HTTP requests to base_url (never to the
// Host they name), keeping the path and query.
func redirectHandler(baseURL string) http.Handler {
	base := strings.TrimSuffix(baseURL, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, base+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// notAfter is when the certificate in use expires (for the
// gatehouse_certificate_expiry_timestamp_seconds metric).
func (c *certFiles) notAfter() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return leafNotAfter(c.cert)
}

// notAfter is when the soonest-expiring certificate for domains expires;
// zero while none has been obtained.
func (a *acme) notAfter(domains []string) time.Time {
	var soonest time.Time
	for _, d := range domains {
		for _, c := range a.cache.AllMatchingCertificates(d) {
			if t := leafNotAfter(&c.Certificate); !t.IsZero() && (soonest.IsZero() || t.Before(soonest)) {
				soonest = t
			}
		}
	}
	return soonest
}

// leafNotAfter is the expiry of a certificate chain's leaf; zero when
// there is none.
func leafNotAfter(c *tls.Certificate) time.Time {
	if c == nil {
		return time.Time{}
	}
	if c.Leaf != nil {
		return c.Leaf.NotAfter
	}
	if len(c.Certificate) == 0 {
		return time.Time{}
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return time.Time{}
	}
	return leaf.NotAfter
}
