package main

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"github.com/redis/go-redis/v9"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/provision/sqldir"
	"gatehouse/proxy"
	"gatehouse/scim"
	"gatehouse/session"
)

// configVersion is the only config file version this build reads.
const configVersion = 1

// maxConfigBytes bounds the config file; anything larger is a mistake.
const maxConfigBytes = 1 << 20

// File is the configuration file. Its session and proxy parts are inlined
// at the top level; every other package owns its own section.
type File struct {
	Version int `yaml:"version"`
	// Listen is the address to serve on; default ":8080".
	Listen string    `yaml:"listen"`
	TLS    TLSConfig `yaml:"tls"`
	Log    LogConfig `yaml:"log"`

	Session session.Config `yaml:",inline"`
	Proxy   proxy.Config   `yaml:",inline"`

	IdPs []IdPConfig `yaml:"idps"`
	// Federations admit allowlisted IdPs from a federation's aggregate
	// metadata; each entity becomes an IdP with the federation's settings.
	Federations []FederationConfig `yaml:"federations"`
	// AdminListen serves /metrics, /healthz and /readyz on a separate
	// address; off when empty.
	AdminListen string `yaml:"admin_listen"`
	// AdminPprof serves Go's profiles (net/http/pprof) under
	// /debug/pprof/ on admin_listen; off by default.
	AdminPprof bool `yaml:"admin_pprof"`
	// ReleaseStartupPages gives the kernel back the pages of the binary
	// that only starting up ran, once serving starts (Linux); default
	// true.
	ReleaseStartupPages *bool `yaml:"release_startup_pages"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM;
	// default 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is how long, on SIGTERM, gatehouse goes on serving
	// with /readyz answering 503 before it stops accepting connections,
	// so that load balancers take it out first; default 0.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// MetadataRefresh is how often metadata URLs are re-read; default 24h.
	MetadataRefresh time.Duration `yaml:"metadata_refresh"`
	Store           StoreConfig   `yaml:"store"`
	// SCIM enables the SCIM 2.0 endpoint under the reserved prefix.
	SCIM *SCIMConfig `yaml:"scim"`
	// State chooses where replicas share state; default: this process's
	// memory (one instance).
	State StateConfig `yaml:"state"`
	// Pages names the application on gatehouse's own pages (chooser,
	// sign-out and error pages): app_name, logo_url, support_contact.
	Pages proxy.PagesConfig `yaml:"pages"`

	// identityKeys are signed_identity.key_files, read by resolveSecrets.
	identityKeys []*ecdsa.PrivateKey
	// followOns are the problems of validate that only repeat one
	// resolveSecrets reported at its key ("no cookie key" after each key
	// failed): prepareEnv drops them.
	followOns []error
}

// SCIMConfig is the scim section: the package's settings plus where the
// bearer tokens come from.
type SCIMConfig struct {
	scim.Config `yaml:",inline"`
	// Tokens are ${ENV} references; a token written in the file is
	// refused (use token_sha256 to keep only a digest there).
	Tokens []string `yaml:"tokens"`
	// TokenFiles hold one token each (a Kubernetes secret mount).
	TokenFiles []string `yaml:"token_files"`
}

// LogConfig selects the log encoding and level.
type LogConfig struct {
	Format string `yaml:"format"` // json (default) or console
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	// Access turns the access log (logger "access", one line per request)
	// on or off; default on. Like the audit events (logger "audit"), it is
	// written at info whatever Level says.
	Access *bool `yaml:"access"`
	// AccessFlushInterval buffers the access log's lines and writes them
	// at least this often (and at shutdown), in one write of many lines;
	// default 1s, 0 writes each line as it is made. Audit events and
	// every other line are never buffered.
	AccessFlushInterval *time.Duration `yaml:"access_flush_interval"`
}

// accessFlush is the access log's flush interval (0: unbuffered).
func (c LogConfig) accessFlush() time.Duration {
	if c.AccessFlushInterval == nil {
		return time.Second
	}
	return *c.AccessFlushInterval
}

// accessLog reports whether the access log is on (the default).
func (c LogConfig) accessLog() bool { return c.Access == nil || *c.Access }

// IdPConfig is one IdP connection: its SAML side and its JIT rules.
type IdPConfig struct {
	session.IdP `yaml:",inline"`
	Mapping     provision.Mapping `yaml:"mapping"`
	// ContinueOnStoreError lets logins through unprovisioned, with
	// identity headers from the assertion, while the store is down.
	ContinueOnStoreError bool `yaml:"continue_on_store_error"`

	federation bool // expanded from a federation (validated there)
}

// FederationConfig is a federation's aggregate metadata and the entity
// IDs of the IdPs admitted from it. The IdPs are named <name>-1, <name>-2
// ... in the order listed and shown with the organisation name their
// metadata gives.
type FederationConfig struct {
	Name                 string            `yaml:"name"`
	MetadataURL          string            `yaml:"metadata_url"`
	MetadataSigningCerts []string          `yaml:"metadata_signing_certs"`
	MetadataUnsigned     bool              `yaml:"metadata_unsigned"`
	EntityIDs            []string          `yaml:"entity_ids"`
	AllowIdPInitiated    bool              `yaml:"allow_idp_initiated"`
	Mapping              provision.Mapping `yaml:"mapping"`
}

var federationName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,23}$`)

// expandFederations appends an IdP per admitted entity.
func (f *File) expandFederations() {
	f.IdPs = slices.DeleteFunc(f.IdPs, func(p IdPConfig) bool { return p.federation })
	for _, fed := range f.Federations {
		for i, id := range fed.EntityIDs {
			f.IdPs = append(f.IdPs, IdPConfig{IdP: session.IdP{Name: fmt.Sprintf("%s-%d", fed.Name, i+1), EntityID: id,
				MetadataURL: fed.MetadataURL, MetadataSigningCerts: fed.MetadataSigningCerts, MetadataUnsigned: fed.MetadataUnsigned,
				AllowIdPInitiated: fed.AllowIdPInitiated}, Mapping: fed.Mapping, federation: true})
		}
	}
}

func (f *File) validateFederations() []error {
	var errs []error
	for i, fed := range f.Federations {
		key := fmt.Sprintf("federations[%d]", i)
		if !federationName.MatchString(fed.Name) {
			errs = append(errs, fmt.Errorf("%s.name: must match %s", key, federationName))
		}
		if u, err := url.Parse(fed.MetadataURL); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.metadata_url: must be an https URL", key))
		}
		if len(fed.MetadataSigningCerts) == 0 && !fed.MetadataUnsigned {
			errs = append(errs, fmt.Errorf("%s.metadata_signing_certs: required (the federation's metadata signing certificate), or set metadata_unsigned: true", key))
		}
		if len(fed.EntityIDs) == 0 {
			errs = append(errs, fmt.Errorf("%s.entity_ids: list the IdPs admitted from the federation", key))
		}
		for _, e := range flatten(fed.Mapping.Validate()) {
			errs = append(errs, fmt.Errorf("%s.mapping.%w", key, e))
		}
		if f.SCIM != nil && fed.Mapping.LinkBy == "" {
			errs = append(errs, fmt.Errorf("%s.mapping.link_by: set it (user_name, external_id or none) when SCIM serves several IdPs", key))
		}
	}
	return errs
}

// StateConfig is the shared state of several replicas.
type StateConfig struct {
	Redis *RedisConfig `yaml:"redis"`
	// Dir keeps a single instance's state across restarts (the revocations
	// of logged-out sessions) when Redis is not used. Default: the SQLite
	// database's directory, else metadata_cache_dir; with neither, state
	// is kept in memory only.
	Dir string `yaml:"dir"`
	// ReplayCacheMaxBytes bounds this process's replay cache (the IDs of
	// accepted assertions and used login states, each kept until it
	// expires) when Redis is not used; default 16 MiB, about 150,000
	// entries of 112 bytes. When it is full, new logins get the 503 page
	// until entries expire: an unexpired entry is never forgotten early.
	ReplayCacheMaxBytes int64 `yaml:"replay_cache_max_bytes"`
}

// stateDir is where a single instance keeps its state: state.dir, else
// next to the SQLite database, else in metadata_cache_dir; "" with Redis
// (which holds it) or when none is set.
func (f *File) stateDir() string {
	switch {
	case f.State.Redis != nil:
		return ""
	case f.State.Dir != "":
		return f.State.Dir
	case f.Store.SQLite != nil && f.Store.SQLite.Path != "" && !strings.HasPrefix(f.Store.SQLite.Path, ":") && !strings.HasPrefix(f.Store.SQLite.Path, "file:"):
		return filepath.Dir(f.Store.SQLite.Path)
	}
	return f.Session.MetadataCacheDir
}

// RedisConfig locates Redis: url is a ${ENV} reference (the URL can hold a
// password) or url_file names a file holding it: redis://[user:password@]
// host:port/db, rediss:// for TLS.
type RedisConfig struct {
	URL       string `yaml:"url"`
	URLFile   string `yaml:"url_file"`
	KeyPrefix string `yaml:"key_prefix"`

	options *redis.Options // parsed by resolveSecrets
}

// StoreConfig chooses the user store. Exactly one backend is set.
type StoreConfig struct {
	SQLite    *sqldir.Config  `yaml:"sqlite"`
	Postgres  *sqldir.Config  `yaml:"postgres"`
	SQLServer *sqldir.Config  `yaml:"sqlserver"`
	LDAP      *ldapdir.Config `yaml:"ldap"`
}

// sql lists the configured SQL backends by their section names.
func (s StoreConfig) sql() map[string]*sqldir.Config {
	out := map[string]*sqldir.Config{}
	for name, c := range map[string]*sqldir.Config{sqldir.SQLite: s.SQLite, sqldir.Postgres: s.Postgres, sqldir.SQLServer: s.SQLServer} {
		if c != nil {
			out[name] = c
		}
	}
	return out
}

// decodeConfig reads one YAML document strictly: unknown keys, values of
// the wrong type, duplicate keys, a second document and a wrong version
// are errors (the structural checks of parseConfig, without validation).
func decodeConfig(r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	f, rep := parseConfig("config", data)
	rep.sort()
	if err := rep.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// loadConfig is decodeConfig on a file.
func loadConfig(path string) (*File, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	f, rep := parseConfig(path, data)
	rep.sort()
	if err := rep.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// withDefaults fills defaults and composes the per-package configs.
func (f *File) withDefaults() {
	if f.Listen == "" {
		f.Listen = ":8080"
	}
	if f.Log.Format == "" {
		f.Log.Format = "json"
	}
	if f.Log.Level == "" {
		f.Log.Level = "info"
	}
	if f.MetadataRefresh == 0 {
		f.MetadataRefresh = 24 * time.Hour
	}
	if f.ShutdownTimeout == 0 {
		f.ShutdownTimeout = 20 * time.Second
	}
	if f.TLS.ACME != nil {
		f.TLS.ACME.withDefaults(f.TLS.RedirectListen)
	}
	if si := f.Proxy.SignedIdentity; si != nil && si.Issuer == "" {
		si.Issuer = f.Session.BaseURL
	}
	f.Proxy.BaseURL = f.Session.BaseURL // host pinning and X-Forwarded-Host/-Proto
	f.Proxy = f.Proxy.WithDefaults()
	f.Session.Endpoints = proxy.Endpoints(f.Proxy.Prefix)
	f.expandFederations()
	f.Session.IdPs = f.Session.IdPs[:0]
	for _, p := range f.IdPs {
		f.Session.IdPs = append(f.Session.IdPs, p.IdP)
	}
	f.Session.StateDir = f.stateDir()
	f.Session = f.Session.WithDefaults()
	if f.Store.LDAP != nil {
		*f.Store.LDAP = f.Store.LDAP.WithDefaults()
	}
	for name, c := range f.Store.sql() {
		c.Dialect = name
		*c = c.WithDefaults()
	}
	if f.SCIM != nil {
		f.SCIM.Config = f.SCIM.Config.WithDefaults()
	}
}

// validate checks everything a config can be checked for without network
// I/O, and returns every problem with its key path.
func (f *File) validate() []error {
	var errs []error
	add := func(prefix string, err error) {
		for _, e := range flatten(err) {
			errs = append(errs, fmt.Errorf("%s%w", prefix, e))
		}
	}
	add("", f.Session.Validate())
	errs = append(errs, f.Proxy.Problems()...)
	add("pages.", f.Pages.Validate())
	idpNames := make([]string, 0, len(f.IdPs))
	for _, p := range f.IdPs {
		idpNames = append(idpNames, p.Name)
	}
	add("", f.Proxy.CheckIdPNames(idpNames))
	errs = append(errs, f.TLS.validate()...)
	if f.Log.Format != "json" && f.Log.Format != "console" {
		errs = append(errs, fmt.Errorf("log.format: must be json or console, got %q", f.Log.Format))
	}
	if _, err := zapcore.ParseLevel(f.Log.Level); err != nil {
		errs = append(errs, fmt.Errorf("log.level: %w", err))
	}
	if d := f.Log.accessFlush(); d < 0 || d > time.Minute {
		errs = append(errs, fmt.Errorf("log.access_flush_interval: between 0s and 1m, got %s", d))
	}
	if f.ShutdownDelay < 0 || f.ShutdownDelay > 5*time.Minute {
		errs = append(errs, errors.New("shutdown_delay: between 0 and 5m"))
	}
	if f.ShutdownTimeout < time.Second || f.ShutdownTimeout > 10*time.Minute {
		errs = append(errs, errors.New("shutdown_timeout: between 1s and 10m"))
	}
	if f.AdminPprof && f.AdminListen == "" {
		errs = append(errs, errors.New("admin_pprof: needs admin_listen (the profiles are served there only)"))
	}
	if f.AdminListen != "" && f.AdminListen == f.Listen {
		errs = append(errs, errors.New("admin_listen: must differ from listen"))
	}
	if f.MetadataRefresh < time.Minute {
		errs = append(errs, errors.New("metadata_refresh: at least 1m"))
	}
	if b := f.State.ReplayCacheMaxBytes; b != 0 && (b < 1<<20 || b > 1<<30) {
		errs = append(errs, errors.New("state.replay_cache_max_bytes: between 1048576 (1 MiB) and 1073741824 (1 GiB)"))
	} else if b != 0 && f.State.Redis != nil {
		errs = append(errs, errors.New("state.replay_cache_max_bytes: not used with state.redis (Redis holds the replay cache; bound it with Redis's maxmemory)"))
	}
	errs = append(errs, f.validateFederations()...)
	errs = append(errs, f.checkGroupPrefixes()...)
	for i, p := range f.IdPs {
		if p.federation {
			continue
		}
		add(fmt.Sprintf("idps[%d].mapping.", i), p.Mapping.Validate())
		if sep := f.Proxy.Headers.GroupSeparator; sep != "" && strings.Contains(p.Mapping.GroupPrefix, sep) {
			errs = append(errs, fmt.Errorf("idps[%d].mapping.group_prefix: contains the group separator %q: no group of this IdP could be sent upstream", i, sep))
		} else if strings.ContainsAny(p.Mapping.GroupPrefix, proxy.GroupListSpecials) {
			errs = append(errs, fmt.Errorf("idps[%d].mapping.group_prefix: contains one of %s, which header list readers take for syntax: no group of this IdP could be sent upstream", i, proxy.GroupListSpecials))
		}
		// With several IdPs, a user SCIM created could be claimed by a
		// login from any of them: each must say how it links.
		if f.SCIM != nil && len(f.IdPs) > 1 && p.Mapping.LinkBy == "" {
			errs = append(errs, fmt.Errorf("idps[%d].mapping.link_by: set it (user_name, external_id or none) when SCIM serves several IdPs", i))
		}
	}
	if f.SCIM != nil {
		add("scim.", f.SCIM.Config.Validate())
	}
	backends := slices.Sorted(maps.Keys(f.Store.sql()))
	if f.Store.LDAP != nil {
		backends = append(backends, "ldap")
	}
	switch {
	case len(backends) > 1:
		errs = append(errs, fmt.Errorf("store: choose one backend, not %s", strings.Join(backends, " and ")))
	case f.Store.LDAP != nil:
		for _, e := range f.Store.LDAP.Problems() {
			errs = append(errs, fmt.Errorf("store.ldap.%w", e))
		}
		errs = append(errs, f.checkLDAPFields()...)
	case len(backends) == 1:
		c := f.Store.sql()[backends[0]]
		errs = append(errs, storeProblems(backends[0], c.Problems())...)
		if c.Mapped != nil {
			errs = append(errs, f.checkMappedFields(backends[0], c.Mapped)...)
			if f.SCIM != nil {
				errs = append(errs, fmt.Errorf("scim: the store maps an application's tables (store.%s.mapped), which SCIM cannot serve yet; use gatehouse's own tables or turn SCIM off", backends[0]))
			}
		}
	default:
		errs = append(errs, errors.New("store: choose a backend, e.g. store.sqlite.path, store.postgres.dsn or store.ldap.url"))
	}
	for i, p := range f.IdPs {
		if p.MetadataFile != "" {
			if _, err := os.Stat(p.MetadataFile); err != nil {
				errs = append(errs, fmt.Errorf("idps[%d].metadata_file: %w", i, err))
			}
		}
	}
	// Files read at start by tls and ldapdir (the serving key pair, a CA
	// bundle): only their presence is checked here. The secret files
	// resolveSecrets reads (the SP key pairs among them) are reported
	// there.
	files := map[string]string{"tls.cert_file": f.TLS.CertFile, "tls.key_file": f.TLS.KeyFile}
	if l := f.Store.LDAP; l != nil {
		files["store.ldap.ca_file"] = l.CAFile
	}
	for key, path := range files {
		if path != "" {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	return errs
}

// checkLDAPFields reports extra fields that an IdP mapping fills but the
// directory has no attribute for: their values would be dropped.
func (f *File) checkLDAPFields() []error {
	var errs []error
	for i, p := range f.IdPs {
		for name := range p.Mapping.Extra {
			if _, ok := f.Store.LDAP.Attributes[name]; !ok {
				errs = append(errs, fmt.Errorf("idps[%d].mapping.extra.%s: store.ldap.attributes maps no LDAP attribute for it", i, name))
			}
		}
	}
	// SCIM refuses at start an extension attribute whose field the
	// directory cannot keep: say so here, so that check and serve agree.
	if f.SCIM != nil {
		for name, field := range f.SCIM.Extension.Attributes {
			_, mapped := f.Store.LDAP.Attributes[field]
			if !mapped && !strings.Contains(f.Store.LDAP.RDN, "{"+field+"}") {
				errs = append(errs, fmt.Errorf("scim.extension.attributes.%s: the store has no place for field %q: store.ldap.attributes maps no LDAP attribute for it", name, field))
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// checkMappedFields reports fields that an IdP mapping fills but the
// application's table has no column for: their values would be dropped.
func (f *File) checkMappedFields(backend string, m *sqldir.MappedConfig) []error {
	var errs []error
	for i, p := range f.IdPs {
		for name := range p.Mapping.Extra {
			if _, ok := m.Users.Columns[name]; !ok {
				errs = append(errs, fmt.Errorf("idps[%d].mapping.extra.%s: store.%s.mapped.users.columns maps no column for it", i, name, backend))
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// storeProblems places the problems of a SQL store (from Problems or
// Check) under its section, store.<name>, at their keys.
func storeProblems(name string, ps []sqldir.Problem) []error {
	out := make([]error, 0, len(ps))
	for _, p := range ps {
		key := "store." + name
		if p.Key != "" {
			key += "." + p.Key
		}
		out = append(out, fmt.Errorf("%s: %w", key, p.Err))
	}
	return out
}

// flatten undoes errors.Join so that each problem gets its own line and
// prefix: the one place that splits a package's joined Validate error
// (packages whose config has Problems need none).
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// policies builds the proxy's per-IdP JIT rules; reserved names the
// fields SCIM owns.
func (f *File) policies(reserved []string) map[string]proxy.IdPPolicy {
	out := make(map[string]proxy.IdPPolicy, len(f.IdPs))
	for _, p := range f.IdPs {
		out[p.Name] = proxy.IdPPolicy{Mapping: p.Mapping, ContinueOnStoreError: p.ContinueOnStoreError, Reserved: reserved}
	}
	return out
}

// prepare runs the whole check: defaults, secrets, validation. getenv
// cannot tell an unset variable from an empty one: both are "not set".
func (f *File) prepare(getenv func(string) string) error {
	return errors.Join(f.prepareEnv(func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	})...)
}

// prepareEnv is prepare with the environment read by os.LookupEnv's
// rules, returning each problem.
func (f *File) prepareEnv(lookupEnv func(string) (string, bool)) []error {
	f.withDefaults()
	f.followOns = nil
	errs := f.resolveSecrets(lookupEnv)
	for _, e := range f.validate() {
		if !slices.ContainsFunc(f.followOns, func(t error) bool { return errors.Is(e, t) }) {
			errs = append(errs, e)
		}
	}
	return errs
}
