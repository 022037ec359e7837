package session

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
)

// Page names a browser-facing page a failure is shown with.
type Page int

const (
	// LoginFailed: the login could not be completed (bad or refused SAML
	// response, expired login state, unusable attributes).
	LoginFailed Page = iota
	// AccessDenied: the user is known but may not sign in (deactivated).
	AccessDenied
	// Unavailable: a dependency is down; try again later.
	Unavailable
)

// Failure is a failed request to one of the SP's endpoints.
type Failure struct {
	Page   Page
	Reason string // short, for logs and metrics: "replay", "audience", ...
	Err    error  // details for the log; never shown to the browser
}

// Choice is an IdP offered on the chooser page.
type Choice struct {
	Name, DisplayName, URL string
	// LastUsed marks the IdP this browser chose last time.
	LastUsed bool
}

// ChooserPage is the IdP chooser: the choices (the last used first), and,
// when there are many IdPs, a search form that posts back to Action.
type ChooserPage struct {
	Choices    []Choice
	Searchable bool
	Query      string // the search, when one was made
	Action     string // the login endpoint
	ReturnTo   string // carried through the search
}

// Pages renders the browser-facing pages of the login flow. The proxy
// package implements it so that every page of gatehouse looks the same.
type Pages interface {
	Problem(w http.ResponseWriter, r *http.Request, f Failure)
	Chooser(w http.ResponseWriter, r *http.Request, page ChooserPage)
	SignedOut(w http.ResponseWriter, r *http.Request)
}

// Identity is a validated login, independent of crewjam/saml's types.
type Identity struct {
	IdP          string // configured name
	EntityID     string
	NameID       string
	NameIDFormat string
	SessionIndex string
	AuthnContext string // the AuthnContextClassRef
	AssertionID  string
	AuthnInstant time.Time
	Unsolicited  bool
	// Attributes holds each attribute's values keyed by attribute Name.
	Attributes map[string][]string
}

// LoginFunc runs after a response is validated and before the session is
// issued; it returns the ID of the provisioned user. Wrap ErrAccessDenied
// or ErrUnavailable to choose the page shown on failure.
type LoginFunc func(ctx context.Context, id Identity) (userID string, err error)

var (
	ErrAccessDenied = errors.New("access denied")
	ErrUnavailable  = errors.New("service unavailable")
)

// Options are the dependencies of a Manager.
type Options struct {
	Logger     *zap.Logger
	Now        func() time.Time
	HTTPClient *http.Client // for metadata URLs
	Replay     ReplayCache
	Pages      Pages
}

// Manager is the SAML service provider for every configured IdP and the
// issuer of session cookies.
type Manager struct {
	cfg      Config
	log      *zap.Logger
	now      func() time.Time
	client   *http.Client
	replay   ReplayCache
	pages    Pages
	sealer   *sealer
	base     *url.URL
	acsURL   url.URL
	metaURL  url.URL
	spKey    crypto.Signer     // signs AuthnRequests and the metadata
	spCert   *x509.Certificate // its certificate
	keys     []spKeyPair       // every SP key, in configured order
	spMeta   spMetadata
	idps     []*idp
	byName   map[string]*idp
	byEntity map[string]*idp
}

type idp struct {
	cfg IdP
	sp  atomic.Pointer[saml.ServiceProvider] // nil until metadata loads
}

// New builds the Manager and loads IdP metadata: files must load; URLs
// that fail now are retried by Run.
func New(ctx context.Context, cfg Config, opts Options) (*Manager, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil || opts.Pages == nil {
		panic("session.New: Logger and Pages are required")
	}
	m := &Manager{cfg: cfg, log: opts.Logger, now: opts.Now, client: opts.HTTPClient,
		replay: opts.Replay, pages: opts.Pages, byName: map[string]*idp{}, byEntity: map[string]*idp{}}
	if m.now == nil {
		m.now = time.Now
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: 15 * time.Second}
	}
	if m.replay == nil {
		m.replay = NewMemoryReplay(m.now)
	}
	var err error
	if m.sealer, err = newSealer(cfg.Cookie.decoded); err != nil {
		return nil, err
	}
	m.base, _ = url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	m.acsURL, m.metaURL = *m.base, *m.base
	m.acsURL.Path, m.metaURL.Path = cfg.Endpoints.ACS, cfg.Endpoints.Metadata
	if m.keys, err = loadSPKeys(cfg); err != nil {
		return nil, err
	}
	for _, k := range m.keys {
		if k.signing {
			m.spKey, m.spCert = k.key, k.cert
			break
		}
	}
	for _, p := range cfg.IdPs {
		if p.DisplayName == "" {
			p.DisplayName = p.Name
		}
		in := &idp{cfg: p}
		m.idps = append(m.idps, in)
		m.byName[p.Name], m.byEntity[p.EntityID] = in, in
		if err := m.load(ctx, in); err != nil {
			if p.MetadataFile != "" {
				return nil, fmt.Errorf("idp %s: %w", p.Name, err)
			}
			m.log.Warn("idp metadata not loaded; will retry", zap.String("idp", p.Name), zap.Error(err))
		}
	}
	return m, nil
}

// spKeyPair is one loaded SP key.
type spKeyPair struct {
	key                 *rsa.PrivateKey
	cert                *x509.Certificate
	signing, encryption bool
}

// loadSPKeys reads sp_key_file/sp_cert_file (both uses) and sp_keys.
func loadSPKeys(cfg Config) ([]spKeyPair, error) {
	all := cfg.Keys
	if cfg.KeyFile != "" {
		all = append([]SPKey{{KeyFile: cfg.KeyFile, CertFile: cfg.CertFile, Use: UseBoth}}, all...)
	}
	var out []spKeyPair
	for _, k := range all {
		pair, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sp key pair %s: %w", k.KeyFile, err)
		}
		rk, ok := pair.PrivateKey.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("sp key pair %s: an RSA key is needed (SAML signing with RSA-SHA256, assertion keys with RSA-OAEP)", k.KeyFile)
		}
		use := cmp.Or(k.Use, UseBoth)
		out = append(out, spKeyPair{key: rk, cert: pair.Leaf, signing: use != UseEncryption, encryption: use != UseSigning})
	}
	return out, nil
}

// decryptionKeys are the SP keys tried on an encrypted assertion.
func (m *Manager) decryptionKeys() []*rsa.PrivateKey {
	var out []*rsa.PrivateKey
	for _, k := range m.keys {
		if k.encryption {
			out = append(out, k.key)
		}
	}
	return out
}

func (m *Manager) load(ctx context.Context, in *idp) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ed, err := loadMetadata(ctx, m.client, in.cfg)
	if err != nil {
		return err
	}
	sp := &saml.ServiceProvider{
		EntityID:          m.cfg.EntityID,
		Key:               m.spKey,
		Certificate:       m.spCert,
		MetadataURL:       m.metaURL,
		AcsURL:            m.acsURL,
		IDPMetadata:       ed,
		AuthnNameIDFormat: saml.UnspecifiedNameIDFormat,
		HTTPClient:        m.client,
	}
	if m.spKey != nil {
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	sp.ValidateAudienceRestriction = m.checkAudience
	in.sp.Store(sp)
	m.log.Info("idp metadata loaded", zap.String("idp", in.cfg.Name), zap.String("entity_id", ed.EntityID))
	return nil
}

// Run retries metadata URLs that have not loaded and refreshes loaded ones
// every refresh interval, until ctx ends. A failed refresh keeps the last
// good metadata.
func (m *Manager) Run(ctx context.Context, refresh time.Duration) {
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		}
		due := time.Since(last) >= refresh
		if due {
			last = time.Now()
		}
		for _, in := range m.idps {
			if in.cfg.MetadataURL == "" || (in.sp.Load() != nil && !due) {
				continue
			}
			if err := m.load(ctx, in); err != nil {
				m.log.Warn("idp metadata refresh failed", zap.String("idp", in.cfg.Name), zap.Error(err))
			}
		}
	}
}

// Ready reports whether every IdP's metadata is loaded.
func (m *Manager) Ready() error {
	for _, in := range m.idps {
		if in.sp.Load() == nil {
			return fmt.Errorf("idp %s: %w", in.cfg.Name, errNoMetadata)
		}
	}
	return nil
}

// CookieName is the session cookie's name; the proxy strips it upstream.
func (m *Manager) CookieName() string { return m.cfg.Cookie.Name }

func (m *Manager) checkAudience(a *saml.Assertion) error {
	if a.Conditions == nil || len(a.Conditions.AudienceRestrictions) == 0 {
		return errors.New("assertion has no AudienceRestriction")
	}
	for _, ar := range a.Conditions.AudienceRestrictions {
		if ar.Audience.Value != m.cfg.EntityID {
			return fmt.Errorf("audience %q is not this SP", ar.Audience.Value)
		}
	}
	return nil
}

// tokenLen is the length of a RelayState token.
const tokenLen = 43

// randomToken returns 32 random bytes, base64url: tokenLen characters,
// within SAML's 80-byte RelayState limit.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// SafeReturn reports whether target is a same-origin relative path that a
// login may return to: it must start with a single "/", contain no
// backslash or control character, carry no scheme or host, and not point
// under prefix.
func SafeReturn(target, prefix string) bool {
	if target == "" || len(target) > 2048 || target[0] != '/' || strings.HasPrefix(target, "//") {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c == '\\' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return false
	}
	return prefix == "" || !strings.HasPrefix(u.Path, prefix)
}

func (m *Manager) safeReturn(target string) string {
	if SafeReturn(target, m.cfg.Endpoints.Prefix) {
		return target
	}
	return "/"
}

func (m *Manager) secure() bool { return !m.cfg.Cookie.Insecure }

func (m *Manager) bindingCookieName(token string) string { return "gatehouse_login_" + token[:10] }
