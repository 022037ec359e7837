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
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"go.uber.org/zap"
)

// Choice is an IdP offered on the chooser page.
type Choice struct {
	Name, DisplayName, URL string
	// LastUsed marks the IdP this browser chose last time.
	LastUsed bool
	// Unavailable marks an IdP whose metadata is not loaded (or has
	// expired): a login through it cannot start now.
	Unavailable bool
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
	// ConfirmLogout asks the user to confirm signing out, with a form
	// that posts to action (a GET never signs out).
	ConfirmLogout(w http.ResponseWriter, r *http.Request, action string)
	// AutoPost sends the browser on with an HTML form that posts fields to
	// action (the HTTP-POST binding).
	AutoPost(w http.ResponseWriter, r *http.Request, action string, fields map[string]string)
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
	// IdPKind is KindOIDC for an OpenID Connect login; empty for SAML
	// (see Kind).
	IdPKind string
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
	// Revocations record sessions ended by logout; default in memory.
	Revocations Revocations
	Pages       Pages
	// Audit receives the audit events (logouts, single logouts, SAML
	// responses refused at the ACS); default
	// Logger.Named("audit").
	Audit *zap.Logger
	// ClientAddr is the client address written in audit events (the
	// caller's, through its trusted proxies); default the host of
	// r.RemoteAddr.
	ClientAddr func(*http.Request) string
	// RequestID is the request's ID written in audit events; default the
	// response's X-Request-Id header, if set by then.
	RequestID func(*http.Request) string
}

// Manager is the SAML service provider for every configured IdP and the
// issuer of session cookies.
type Manager struct {
	cfg         Config
	log         *zap.Logger
	audit       *zap.Logger
	clientAddr  func(*http.Request) string // nil: RemoteAddr's host
	requestID   func(*http.Request) string // nil: the X-Request-Id response header
	now         func() time.Time
	client      *http.Client
	replay      ReplayCache
	pages       Pages
	sealer      *sealer
	opened      *sessionCache // opened session cookies; nil: none (CacheSessions)
	base        *url.URL
	acsURL      url.URL
	metaURL     url.URL
	sloURL      url.URL
	revocations Revocations
	spKey       crypto.Signer     // signs AuthnRequests and the metadata
	spCert      *x509.Certificate // its certificate
	keys        []spKeyPair       // every SP key, in configured order
	spMeta      spMetadata
	refresh     time.Duration // metadata refresh interval (Run's)
	reload      chan struct{}
	idps        []*idp
	byName      map[string]*idp
	byEntity    map[string]*idp
	// anyUnsolicited: some IdP may start logins, so a response without
	// login state must be read to learn its issuer.
	anyUnsolicited bool
}

type idp struct {
	cfg   IdP
	oidc  *oidcIdP                             // kind oidc; nil for SAML
	certs []*x509.Certificate                  // metadata_signing_certs
	sp    atomic.Pointer[saml.ServiceProvider] // nil until metadata loads
	org   atomic.Pointer[string]               // the display name the metadata gives
	// signing are the signing certificates of the loaded metadata, parsed
	// once when it loads.
	signing atomic.Pointer[[]*x509.Certificate]

	// Refresh schedule, used by Run's goroutine only.
	next       time.Time // when to read the metadata again
	validUntil time.Time // zero: none declared

	// status is the outcome of the last load attempts, for readiness and
	// metrics (MetadataStates); nil before the first attempt.
	status atomic.Pointer[metadataStatus]
}

// signingCerts are the IdP's signing certificates from its loaded
// metadata; none before it loads.
func (in *idp) signingCerts() []*x509.Certificate {
	if c := in.signing.Load(); c != nil && in.sp.Load() != nil {
		return *c
	}
	return nil
}

// displayName is the configured display name, else the organisation's
// from the metadata, else the name.
func (in *idp) displayName() string {
	if in.cfg.DisplayName != "" {
		return in.cfg.DisplayName
	}
	if o := in.org.Load(); o != nil && *o != "" {
		return *o
	}
	return in.cfg.Name
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
	m := &Manager{cfg: cfg, log: opts.Logger, now: opts.Now, client: opts.HTTPClient, refresh: 24 * time.Hour,
		replay: opts.Replay, pages: opts.Pages, byName: map[string]*idp{}, byEntity: map[string]*idp{},
		reload: make(chan struct{}, 1), audit: opts.Audit, clientAddr: opts.ClientAddr, requestID: opts.RequestID}
	if m.audit == nil {
		m.audit = opts.Logger.Named("audit")
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.client == nil {
		m.client = &http.Client{Timeout: 15 * time.Second}
	}
	if m.replay == nil {
		m.replay = NewMemoryReplay(m.now, 0)
	}
	var err error
	if m.revocations = opts.Revocations; m.revocations == nil {
		if m.revocations, err = openRevocations(cfg.StateDir, m.now); err != nil {
			return nil, err
		}
	}
	if m.sealer, err = newSealer(cfg.Cookie.decoded, cfg.EntityID); err != nil {
		return nil, err
	}
	m.base, _ = url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	m.acsURL, m.metaURL = *m.base, *m.base
	m.acsURL.Path, m.metaURL.Path = cfg.Endpoints.ACS, cfg.Endpoints.Metadata
	m.sloURL = *m.base
	m.sloURL.Path = cfg.Endpoints.SLO
	if m.keys, err = spKeys(cfg); err != nil {
		return nil, err
	}
	for _, k := range m.keys {
		if k.signing {
			m.spKey, m.spCert = k.key, k.cert
			break
		}
	}
	memo := map[string][]byte{} // one fetch per URL: an aggregate serves several IdPs
	for _, p := range cfg.IdPs {
		in := &idp{cfg: p}
		if in.certs, err = loadCerts(p.MetadataSigningCerts); err != nil {
			return nil, fmt.Errorf("idp %s: metadata_signing_certs: %w", p.Name, err)
		}
		if p.Kind == KindOIDC {
			if in.oidc, err = newOIDCIdP(p, m.client); err != nil {
				return nil, fmt.Errorf("idp %s: %w", p.Name, err)
			}
		}
		m.idps = append(m.idps, in)
		m.byName[p.Name], m.byEntity[p.EntityID] = in, in
		m.anyUnsolicited = m.anyUnsolicited || p.AllowIdPInitiated
		if err := m.load(ctx, in, memo); err != nil {
			if p.MetadataFile != "" {
				return nil, fmt.Errorf("idp %s: %w", p.Name, err)
			}
			m.log.Warn("idp metadata not loaded; will retry", zap.String("idp", p.Name), zap.Error(err))
		}
	}
	return m, nil
}

// openRevocations keeps revocations in dir's RevocationFile, or in memory
// only when dir is empty.
func openRevocations(dir string, now func() time.Time) (Revocations, error) {
	if dir == "" {
		return NewMemoryRevocations(now), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return OpenRevocationFile(filepath.Join(dir, RevocationFile), now)
}

// spKeyPair is one loaded SP key.
type spKeyPair struct {
	key                 *rsa.PrivateKey
	cert                *x509.Certificate
	signing, encryption bool
}

// spKeys are the SP key pairs the caller loaded (Config.LoadKeyPairs):
// sp_key_file/sp_cert_file (both uses), then sp_keys. A key named by its
// files but not loaded is refused: session reads no key file.
func spKeys(cfg Config) ([]spKeyPair, error) {
	type named struct {
		key  string
		pair *tls.Certificate
		use  string
	}
	var all []named
	switch {
	case cfg.KeyFile != "":
		all = append(all, named{"sp_key_file", cfg.KeyPair, UseBoth})
	case cfg.KeyPair != nil:
		return nil, errors.New("sp_key_file: a loaded key pair without sp_key_file and sp_cert_file")
	}
	for i, k := range cfg.Keys {
		all = append(all, named{fmt.Sprintf("sp_keys[%d]", i), k.Pair, k.Use})
	}
	var out []spKeyPair
	for _, k := range all {
		if k.pair == nil {
			return nil, fmt.Errorf("%s: the key pair is not loaded (the caller reads the files with Config.LoadKeyPairs; session reads no key file)", k.key)
		}
		rk, ok := k.pair.PrivateKey.(*rsa.PrivateKey)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: %w", k.key, errNotRSA)
		case k.pair.Leaf == nil:
			return nil, fmt.Errorf("%s: the key pair has no parsed certificate (Leaf)", k.key)
		case !rk.PublicKey.Equal(k.pair.Leaf.PublicKey):
			return nil, fmt.Errorf("%s: the private key does not match the certificate", k.key)
		}
		use := cmp.Or(k.use, UseBoth)
		out = append(out, spKeyPair{key: rk, cert: k.pair.Leaf, signing: use != UseEncryption, encryption: use != UseSigning})
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

// Ready reports whether every IdP's metadata is loaded.
func (m *Manager) Ready() error {
	for _, in := range m.idps {
		if !in.loaded() {
			return fmt.Errorf("idp %s: %w", in.cfg.Name, errNoMetadata)
		}
	}
	return nil
}

// loaded reports whether the IdP's metadata (SAML) or discovery document
// (OpenID Connect) is loaded.
func (in *idp) loaded() bool {
	if in.oidc != nil {
		return in.oidc.prov.Load() != nil
	}
	return in.sp.Load() != nil
}

// CookieName is the session cookie's name; the proxy strips it upstream.
func (m *Manager) CookieName() string { return m.cfg.Cookie.Name }

func (m *Manager) checkAudience(a *saml.Assertion) error {
	if a.Conditions == nil || len(a.Conditions.AudienceRestrictions) == 0 {
		return errors.New("assertion has no AudienceRestriction")
	}
	for _, ar := range a.Conditions.AudienceRestrictions {
		if ar.Audience.Value != m.cfg.EntityID {
			return fmt.Errorf("audience %s is not this SP", quoted(ar.Audience.Value))
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

// SafeReturn reports whether target is a path a login may return to (see
// CanonicalReturn).
func SafeReturn(target, prefix string) bool {
	_, ok := CanonicalReturn(target, prefix)
	return ok
}

// CanonicalReturn returns the canonical form of a return path, or false
// when target may not be returned to. It must be a same-origin path
// starting with a single "/" (not "//", which names another host), of
// printable ASCII, without a backslash,
// and without a percent-encoded slash, backslash, dot or percent sign
// (the spellings that read differently to different parsers). Its dot
// segments and repeated slashes are resolved, and it must not point under
// the reserved prefix however spelled: compared without case and without
// ";parameters" in its segments.
func CanonicalReturn(target, prefix string) (string, bool) {
	if target == "" || len(target) > 2048 || target[0] != '/' || strings.HasPrefix(target, "//") {
		return "", false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c == '\\' || c <= 0x20 || c >= 0x7f {
			return "", false
		}
	}
	p, rest := target, ""
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		p, rest = target[:i], target[i:]
	}
	lower := strings.ToLower(p)
	for _, enc := range []string{"%2f", "%5c", "%2e", "%25"} {
		if strings.Contains(lower, enc) {
			return "", false
		}
	}
	if _, err := url.PathUnescape(p); err != nil {
		return "", false
	}
	canon := cleanPath(p)
	if underPrefix(canon, prefix) {
		return "", false
	}
	return canon + rest, true
}

// cleanPath resolves dot segments and repeated slashes, keeping a
// trailing slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// underPrefix reports whether the canonical path p is the reserved prefix
// or under it, ignoring case and segment parameters.
func underPrefix(p, prefix string) bool {
	base := strings.ToLower(strings.TrimSuffix(prefix, "/"))
	if base == "" {
		return false
	}
	segs := strings.Split(strings.ToLower(p), "/")
	for i, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		segs[i] = s
	}
	bare := cleanPath(strings.Join(segs, "/"))
	return bare == base || strings.HasPrefix(bare, base+"/")
}

func (m *Manager) safeReturn(target string) string {
	if canon, ok := CanonicalReturn(target, m.cfg.Endpoints.Prefix); ok {
		return canon
	}
	return "/"
}

func (m *Manager) secure() bool { return !m.cfg.Cookie.Insecure }
