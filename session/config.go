package session

import (
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config configures the service provider and its sessions.
type Config struct {
	// BaseURL is the external origin users reach gatehouse at, e.g.
	// https://app.example.com. The ACS URL and the default entity ID derive
	// from it.
	BaseURL string `yaml:"base_url"`
	// EntityID is the SP's SAML entity ID; default: the metadata URL.
	EntityID string `yaml:"sp_entity_id"`
	// KeyFile and CertFile hold the SP's PEM key pair. Optional: with them
	// the SP metadata publishes the certificate and AuthnRequests are
	// signed (RSA-SHA256).
	KeyFile  string `yaml:"sp_key_file"`
	CertFile string `yaml:"sp_cert_file"`
	// KeyPair is that pair, loaded by the caller (LoadKeyPairs): New
	// reads no file, and refuses a KeyFile without it.
	KeyPair *tls.Certificate `yaml:"-"`
	// Keys are further SP key pairs, for rollover: the metadata publishes
	// every certificate; the first signing key (sp_key_file, else the
	// first here) signs, and every encryption key is tried on an
	// encrypted assertion.
	Keys []SPKey `yaml:"sp_keys"`
	// SignMetadata signs the SP metadata with the signing key (enveloped
	// XML signature). Default: signed when there is a signing key; false
	// publishes it unsigned; true without a signing key is an error.
	SignMetadata *bool `yaml:"sign_metadata"`
	// MetadataValidFor, when set, gives the SP metadata a validUntil this
	// long after it is served (and a cacheDuration of a quarter of it, at
	// most a day). Default none: a copy an IdP saved never expires.
	MetadataValidFor time.Duration `yaml:"sp_metadata_valid_for"`
	// ClockSkew tolerated against the IdP's clock; at most 3m.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// LoginTimeout bounds the time from the redirect to the IdP to the
	// response coming back.
	LoginTimeout time.Duration `yaml:"login_timeout"`
	Cookie       CookieConfig  `yaml:"cookie"`
	// MetadataCacheDir keeps the last good copy of each metadata URL, used
	// when the URL fails at start.
	MetadataCacheDir string `yaml:"metadata_cache_dir"`
	// StateDir keeps what a single instance must not forget across a
	// restart: the revocations of logged-out sessions. Composed by the
	// caller (state.dir); empty keeps them in memory only. Not used when
	// Options.Revocations is given (Redis).
	StateDir string `yaml:"-"`
	IdPs     []IdP  `yaml:"-"` // composed by the caller with per-IdP settings of other packages

	// Endpoints are the absolute paths the handlers are mounted at; the
	// caller fills them from its one table of reserved paths.
	Endpoints Endpoints `yaml:"-"`
}

// Endpoints are the paths of the SP's handlers.
type Endpoints struct {
	// Prefix is the reserved prefix they share; a login never returns
	// under it.
	Prefix                            string
	Metadata, ACS, Login, Logout, SLO string
	// OpenID Connect: the redirection endpoint, the back-channel logout
	// endpoint, and where the provider returns the browser after an
	// RP-initiated logout.
	OIDCCallback, OIDCBackchannelLogout, OIDCSignedOut string
}

// SPKey is one SP key pair (PEM files; RSA).
type SPKey struct {
	KeyFile  string `yaml:"key_file"`
	CertFile string `yaml:"cert_file"`
	// Pair is the pair the files hold, loaded by the caller
	// (Config.LoadKeyPairs): New reads no file.
	Pair *tls.Certificate `yaml:"-"`
	// Use is signing, encryption, or both (the default).
	Use string `yaml:"use"`
}

// Key uses.
const (
	UseSigning    = "signing"
	UseEncryption = "encryption"
	UseBoth       = "both"
)

// CookieConfig configures the session cookie.
type CookieConfig struct {
	// Name of the session cookie. Default "__Host-gatehouse", or
	// "gatehouse" when Insecure.
	Name string `yaml:"name"`
	// Keys are base64-encoded 32-byte keys; write "${ENV_NAME}" to read one
	// from the environment. The first seals, all open.
	Keys []string `yaml:"keys"`
	// KeyFiles are files holding one base64 key each, appended to Keys.
	KeyFiles []string `yaml:"key_files"`
	// Insecure drops the Secure attribute, for plain-http demos only.
	Insecure bool `yaml:"insecure"`
	// IdleTimeout ends a session not used for this long; default 1h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxAge ends a session this long after login, used or not; default 12h.
	MaxAge time.Duration `yaml:"max_age"`

	// decoded holds the resolved keys (set by the caller after reading
	// files and the environment).
	decoded [][]byte
}

// ErrNoCookieKey is the problem Validate reports when no cookie key was
// set (SetKeys): the caller may drop it when it already reported why each
// configured key could not be read.
var ErrNoCookieKey = errors.New("at least one key is required")

// SetKeys sets the decoded cookie keys.
func (c *CookieConfig) SetKeys(keys [][]byte) { c.decoded = keys }

// IdP is one identity provider connection.
type IdP struct {
	// Name is a short identifier used in URLs and the session cookie.
	Name string `yaml:"name"`
	// DisplayName is shown on the chooser page; default Name.
	DisplayName string `yaml:"display_name"`
	// EntityID is the IdP's entity ID; it must match its metadata.
	EntityID string `yaml:"entity_id"`
	// MetadataFile or MetadataURL (https) locate the IdP's metadata.
	MetadataFile string `yaml:"metadata_file"`
	MetadataURL  string `yaml:"metadata_url"`
	// MetadataSigningCerts are PEM files of the certificates one of which
	// must have signed the metadata (several during a rollover). Required
	// with metadata_url unless MetadataUnsigned.
	MetadataSigningCerts []string `yaml:"metadata_signing_certs"`
	// MetadataUnsigned trusts a metadata URL on its TLS certificate alone.
	MetadataUnsigned bool `yaml:"metadata_unsigned"`
	// AllowIdPInitiated accepts unsolicited responses from this IdP.
	AllowIdPInitiated bool `yaml:"allow_idp_initiated"`
	// RequireEncryption refuses assertions that are not encrypted.
	RequireEncryption bool `yaml:"require_encrypted_assertions"`
	// AllowRSA15 accepts assertion keys transported with RSA PKCS #1 v1.5,
	// which is open to padding-oracle attacks; refused by default.
	AllowRSA15 bool `yaml:"allow_rsa1_5"`
	// AllowCBC accepts assertions encrypted with AES-CBC. An assertion in
	// an unsigned Response is decrypted before its signature is checked,
	// and CBC is open to padding-oracle attacks there; refused by default
	// (AES-GCM is always accepted).
	AllowCBC bool `yaml:"allow_cbc"`
	// AuthnContext lists the authentication context classes accepted from
	// this IdP: the first is requested in every AuthnRequest (with
	// AuthnContextComparison), and an assertion whose
	// AuthnContextClassRef is not listed is refused.
	AuthnContext           []string `yaml:"authn_context"`
	AuthnContextComparison string   `yaml:"authn_context_comparison"`
	// AttributeQuery asks the IdP's attribute authority (its metadata's
	// AttributeService, SOAP binding) for more of the subject's attributes
	// after each login, before JIT; AttributeQueryNames limits the query to
	// these attribute names. Attributes the assertion already carries win.
	AttributeQuery      bool     `yaml:"attribute_query"`
	AttributeQueryNames []string `yaml:"attribute_query_attributes"`
	// NoSingleLogout keeps gatehouse's logout local even when the IdP's
	// metadata has a SingleLogoutService.
	NoSingleLogout bool `yaml:"no_single_logout"`
	// NameIDFormat is requested in every AuthnRequest to this IdP
	// (NameIDPolicy Format, AllowCreate="true"): a URN, or one of the
	// aliases persistent, transient, emailAddress, unspecified. Default:
	// none requested (the IdP chooses).
	NameIDFormat string `yaml:"name_id_format"`
	// ForceAuthn asks the IdP to authenticate the user afresh; IsPassive
	// asks it not to interact with the user (a login it cannot complete
	// silently fails).
	ForceAuthn bool `yaml:"force_authn"`
	IsPassive  bool `yaml:"is_passive"`

	// Kind is saml (the default) or oidc: an OpenID Connect provider,
	// reached by the authorization code flow with PKCE. Its entity_id is
	// its issuer; authn_context lists the acr values requested and
	// accepted; force_authn and is_passive become prompt=login and
	// prompt=none.
	Kind string `yaml:"kind"`
	OIDC `yaml:",inline"`
}

// IdP kinds.
const (
	KindSAML = "saml"
	KindOIDC = "oidc"
)

// OIDC is the OpenID Connect side of an IdP of kind oidc.
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// from Issuer + /.well-known/openid-configuration and must name the
	// same issuer.
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecret (a ${NAME} reference) or ClientSecretFile authenticate
	// gatehouse at the token endpoint (client_secret_basic, or
	// client_secret_post where the provider takes only that);
	// ClientKeyFile instead holds a PEM private key (RSA or EC P-256)
	// for private_key_jwt, with ClientKeyID its key ID at the provider.
	// The caller resolves them (SetClientCredentials): New reads no file.
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientKeyFile    string `yaml:"client_key_file"`
	ClientKeyID      string `yaml:"client_key_id"`
	// Scopes requested; default openid, email, profile. openid is always
	// sent.
	Scopes []string `yaml:"scopes"`
	// UserInfo reads the UserInfo endpoint after the token exchange, for
	// claims the ID token lacks; the ID token's claims win.
	UserInfo bool `yaml:"userinfo"`
	// IDTokenAlgs are the signature algorithms accepted on ID tokens
	// and logout tokens; default RS256, PS256 and ES256. none and the
	// HMAC algorithms are refused.
	IDTokenAlgs []string `yaml:"id_token_signing_algs"`
	// IssuerCAFile is a PEM bundle of the CAs of the provider's TLS
	// certificate, for a provider with a private CA; default the system
	// roots.
	IssuerCAFile string `yaml:"issuer_ca_file"`

	secret string        // resolved client secret
	key    crypto.Signer // resolved private_key_jwt key
	caPEM  []byte        // resolved IssuerCAFile
}

// SetClientCredentials hands the IdP its resolved client secret, or its
// private_key_jwt key, and its issuer CA bundle (read by the caller).
func (o *OIDC) SetClientCredentials(secret string, key crypto.Signer, caPEM []byte) {
	o.secret, o.key, o.caPEM = secret, key, caPEM
}

// oidcAlgs are the signature algorithms an ID token may be accepted
// with.
var oidcAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// defaultOIDCAlgs is the default of id_token_signing_algs.
var defaultOIDCAlgs = []string{"RS256", "PS256", "ES256"}

// LoginOptions strengthen one login beyond its IdP's settings, for a path
// that needs more (a step-up).
type LoginOptions struct {
	// AuthnContext replaces the IdP's accepted classes for this login.
	AuthnContext []string
	ForceAuthn   bool
}

var idpName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

const maxClockSkew = 3 * time.Minute // crewjam/saml's own outer bound

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.ClockSkew == 0 {
		c.ClockSkew = 90 * time.Second
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = 10 * time.Minute
	}
	if c.Cookie.IdleTimeout == 0 {
		c.Cookie.IdleTimeout = time.Hour
	}
	if c.Cookie.MaxAge == 0 {
		c.Cookie.MaxAge = 12 * time.Hour
	}
	if c.Cookie.Name == "" {
		c.Cookie.Name = "__Host-gatehouse"
		if c.Cookie.Insecure {
			c.Cookie.Name = "gatehouse"
		}
	}
	for i, p := range c.IdPs {
		if p.Kind == KindOIDC {
			if c.IdPs[i].EntityID == "" {
				c.IdPs[i].EntityID = p.Issuer
			}
			if len(p.Scopes) == 0 {
				c.IdPs[i].Scopes = []string{"openid", "email", "profile"}
			}
			if len(p.IDTokenAlgs) == 0 {
				c.IdPs[i].IDTokenAlgs = defaultOIDCAlgs
			}
		}
	}
	if c.EntityID == "" && c.BaseURL != "" {
		c.EntityID = strings.TrimSuffix(c.BaseURL, "/") + c.Endpoints.Metadata
	}
	return c
}

// Validate checks the configuration (after WithDefaults); every problem
// names its key. It does no I/O.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		add("base_url: must be an origin such as https://app.example.com, got %q", c.BaseURL)
	} else if u.Scheme == "http" && !c.Cookie.Insecure {
		add("base_url: plain http needs cookie.insecure: true (demo only)")
	}
	if (c.KeyFile == "") != (c.CertFile == "") {
		add("sp_key_file: sp_key_file and sp_cert_file go together")
	}
	for i, k := range c.Keys {
		if k.KeyFile == "" || k.CertFile == "" {
			add("sp_keys[%d]: key_file and cert_file are both required", i)
		}
		if k.Use != "" && k.Use != UseSigning && k.Use != UseEncryption && k.Use != UseBoth {
			add("sp_keys[%d].use: %q is not signing, encryption or both", i, k.Use)
		}
	}
	if c.SignMetadata != nil && *c.SignMetadata && !c.hasSigningKey() {
		add("sign_metadata: needs a signing key (sp_key_file or sp_keys)")
	}
	if v := c.MetadataValidFor; v != 0 && (v < time.Hour || v > maxMetadataValidFor) {
		add("sp_metadata_valid_for: must be between 1h and %s, or unset for no validUntil", maxMetadataValidFor)
	}
	for i, p := range c.IdPs {
		if p.AttributeQuery && c.KeyFile == "" && !slices.ContainsFunc(c.Keys, func(k SPKey) bool { return k.Use != UseEncryption }) {
			add("idps[%d].attribute_query: needs an SP signing key (sp_key_file or sp_keys): attribute queries are signed", i)
		}
		if p.RequireEncryption && c.KeyFile == "" && !slices.ContainsFunc(c.Keys, func(k SPKey) bool { return k.Use != UseSigning }) {
			add("idps[%d].require_encrypted_assertions: needs an SP encryption key (sp_key_file or sp_keys)", i)
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > maxClockSkew {
		add("clock_skew: must be between 0 and %s", maxClockSkew)
	}
	if c.LoginTimeout < time.Minute || c.LoginTimeout > time.Hour {
		add("login_timeout: must be between 1m and 1h")
	}
	ck := c.Cookie
	if ck.IdleTimeout < time.Minute {
		add("cookie.idle_timeout: at least 1m")
	}
	if ck.MaxAge < ck.IdleTimeout {
		add("cookie.max_age: must not be shorter than idle_timeout")
	}
	if !validCookieName(ck.Name) {
		add("cookie.name: %q is not a valid cookie name", ck.Name)
	}
	if strings.HasPrefix(ck.Name, "__Host-") && ck.Insecure {
		add("cookie.name: a __Host- cookie needs Secure; drop cookie.insecure or rename")
	}
	if len(ck.decoded) == 0 {
		add("cookie.keys: %w (base64 of %d random bytes)", ErrNoCookieKey, KeyLen)
	}
	for i, k := range ck.decoded {
		if len(k) != KeyLen {
			add("cookie.keys[%d]: decodes to %d bytes, want %d", i, len(k), KeyLen)
		}
	}
	if len(c.IdPs) == 0 {
		add("idps: at least one identity provider is required")
	}
	names, entities := map[string]bool{}, map[string]bool{}
	for i, p := range c.IdPs {
		if p.Kind == KindOIDC {
			errs = append(errs, p.oidcProblems(i, c.BaseURL)...)
		} else if p.Kind != "" && p.Kind != KindSAML {
			add("idps[%d].kind: must be saml or oidc, got %q", i, p.Kind)
		}
		if !idpName.MatchString(p.Name) {
			add("idps[%d].name: must match %s", i, idpName)
		} else if names[p.Name] {
			add("idps[%d].name: %q is used twice", i, p.Name)
		}
		names[p.Name] = true
		if p.EntityID == "" && p.Kind != KindOIDC {
			add("idps[%d].entity_id: required", i)
		} else if entities[p.EntityID] {
			add("idps[%d].entity_id: %q is used twice", i, p.EntityID)
		}
		entities[p.EntityID] = true
		switch p.AuthnContextComparison {
		case "", "exact", "minimum", "maximum", "better":
		default:
			add("idps[%d].authn_context_comparison: %q is not exact, minimum, maximum or better", i, p.AuthnContextComparison)
		}
		for j, ref := range p.AuthnContext {
			if ref == "" || strings.ContainsAny(ref, " \t\r\n<>&\"") {
				add("idps[%d].authn_context[%d]: %q is not a class reference URI", i, j, ref)
			}
		}
		if p.NameIDFormat != "" && nameIDFormatURN(p.NameIDFormat) == "" {
			add("idps[%d].name_id_format: %q is not a URN (urn:...) or one of persistent, transient, emailAddress, unspecified", i, p.NameIDFormat)
		}
		if p.IsPassive && p.ForceAuthn {
			add("idps[%d]: force_authn and is_passive contradict each other", i)
		}
		switch {
		case p.Kind == KindOIDC:
		case (p.MetadataFile == "") == (p.MetadataURL == ""):
			add("idps[%d]: exactly one of metadata_file and metadata_url is required", i)
		case p.MetadataURL != "":
			if u, err := url.Parse(p.MetadataURL); err != nil || u.Scheme != "https" || u.Host == "" {
				add("idps[%d].metadata_url: must be an https URL", i)
			}
			if len(p.MetadataSigningCerts) == 0 && !p.MetadataUnsigned {
				add("idps[%d].metadata_signing_certs: required with metadata_url (the certificate the metadata is signed with), or set metadata_unsigned: true to trust the URL's TLS certificate alone", i)
			}
		}
	}
	return errors.Join(errs...)
}

// oidcProblems are the problems of an IdP of kind oidc (after
// WithDefaults), each naming its key.
func (p IdP) oidcProblems(i int, baseURL string) []error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("idps[%d]."+format, append([]any{i}, a...)...))
	}
	u, err := url.Parse(p.Issuer)
	switch {
	case p.Issuer == "":
		add("issuer: required for kind oidc")
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		add("issuer: must be an https URL with no query or fragment, got %q", p.Issuer)
	case u.Scheme == "http" && strings.HasPrefix(baseURL, "http:"):
		// A plain-http demo talks to a plain-http provider.
	case u.Scheme != "https":
		add("issuer: must be an https URL, got %q", p.Issuer)
	}
	if p.EntityID != p.Issuer {
		add("entity_id: an OpenID provider is known by its issuer; leave entity_id unset")
	}
	if p.ClientID == "" {
		add("client_id: required for kind oidc")
	}
	n := 0
	for _, v := range []string{p.ClientSecret, p.ClientSecretFile, p.ClientKeyFile} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		add("client_secret: set exactly one of client_secret (a ${NAME} reference), client_secret_file and client_key_file (private_key_jwt)")
	}
	if p.ClientKeyID != "" && p.ClientKeyFile == "" {
		add("client_key_id: goes with client_key_file")
	}
	if !slices.Contains(p.Scopes, "openid") {
		add("scopes: must include openid")
	}
	for j, s := range p.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r >= 0x7f }) {
			add("scopes[%d]: %q is not a scope token", j, s)
		}
	}
	for j, a := range p.IDTokenAlgs {
		switch {
		case strings.EqualFold(a, "none"):
			add("id_token_signing_algs[%d]: none accepts unsigned tokens: refused", j)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			add("id_token_signing_algs[%d]: %s is an HMAC with the client secret, which anyone holding the secret can forge: refused", j, a)
		case !slices.Contains(oidcAlgs, a):
			add("id_token_signing_algs[%d]: %q is not one of %s", j, a, strings.Join(oidcAlgs, ", "))
		}
	}
	for j, ref := range p.AuthnContext {
		if ref == "" || strings.ContainsAny(ref, " \t\r\n\"") {
			add("authn_context[%d]: %q is not an acr value", j, ref)
		}
	}
	for key, set := range map[string]bool{"metadata_file": p.MetadataFile != "", "metadata_url": p.MetadataURL != "",
		"metadata_signing_certs": len(p.MetadataSigningCerts) > 0, "metadata_unsigned": p.MetadataUnsigned,
		"allow_idp_initiated": p.AllowIdPInitiated, "require_encrypted_assertions": p.RequireEncryption, "allow_rsa1_5": p.AllowRSA15,
		"allow_cbc": p.AllowCBC, "authn_context_comparison": p.AuthnContextComparison != "", "attribute_query": p.AttributeQuery,
		"attribute_query_attributes": len(p.AttributeQueryNames) > 0, "name_id_format": p.NameIDFormat != ""} {
		if set {
			add("%s: a SAML setting; this IdP is of kind oidc", key)
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

func validCookieName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return true
}

// maxMetadataValidFor bounds sp_metadata_valid_for: ten years.
const maxMetadataValidFor = 10 * 365 * 24 * time.Hour

// hasSigningKey reports whether some SP key may sign.
func (c Config) hasSigningKey() bool {
	return c.KeyFile != "" || slices.ContainsFunc(c.Keys, func(k SPKey) bool { return k.Use != UseEncryption })
}

// nameIDFormats are the short names name_id_format accepts.
var nameIDFormats = map[string]string{
	"persistent":   "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"transient":    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
	"emailaddress": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
	"unspecified":  "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}

// nameIDFormatURN is the URN a name_id_format names (an alias, in any
// case, or a URN as written), or "" when it names none.
func nameIDFormatURN(f string) string {
	if u, ok := nameIDFormats[strings.ToLower(f)]; ok {
		return u
	}
	if len(f) < 5 || len(f) > 256 || !strings.EqualFold(f[:4], "urn:") {
		return ""
	}
	for _, r := range f {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`<>&"'`, r) {
			return ""
		}
	}
	return f
}
