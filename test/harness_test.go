package test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/proxy"
	"gatehouse/scim"
	"gatehouse/session"
	"gatehouse/test/oidcop"
)

// t0 is the fixed time every harness starts at; golden responses were
// issued at it.
var t0 = time.Date(2027, 1, 1, 10, 0, 0, 0, time.UTC)

// goldenBase is the SP origin the golden responses were issued for.
const goldenBase = "https://sp.example.test"

// options vary a harness.
type options struct {
	base                 string // SP origin; "" starts an HTTP server and uses its URL
	allowIdPInitiated    bool
	continueOnStoreError bool
	publicPaths          []string
	mapping              *provision.Mapping
	partner              bool            // a second IdP, "partner", signing with the other key
	store                provision.Store // default: SQLite in a temp dir
	scim                 bool            // serve SCIM with scimToken
	authorization        []proxy.Rule
	identityKeys         []*ecdsa.PrivateKey // turn on signed_identity
	spKeys               []session.SPKey     // SP key pairs (encryption, rollover)
	signMetadata         bool
	corp                 func(*session.IdP) // adjusts the corp IdP's settings
	idpSLO               []string           // SLO bindings the corp IdP's metadata offers
	realTime             bool               // start the clock at the real time instead of t0
	warningsOnly         bool               // keep only warnings and errors from the logs (long runs)
	// accessLog, when set, gets the access log as serve writes it (JSON
	// lines at info); nil: into the observed logs; io.Discard with
	// accessOff unset is what a benchmark of the default wants.
	accessLog        io.Writer
	accessOff        bool                // log.access: false
	attributeService string              // the corp IdP's SOAP AttributeService
	httpClient       *http.Client        // the SP's client for metadata and attribute queries
	state            *session.RedisState // shared replay cache and revocations
	stateDir         string              // session state directory (revocations kept across restarts)
	entityID         string              // the SP entity ID; default derives from base
	dbPath           string              // an existing SQLite file to open (a restart)
	storeTimeout     time.Duration       // the SQLite store's bound on one operation; default its own
	proxy            func(*proxy.Config) // adjusts the proxy's settings

	sp func(*session.Config) // adjusts the SP's settings

	// oidc starts an OpenID provider for the harness's origin (once the
	// origin is known) and adds the IdP "op" of kind oidc at it, as the
	// client oidcClientID; oidcIdP adjusts its settings.
	oidc    func(t testing.TB, base string) *oidcop.Provider
	oidcIdP func(*session.IdP)
}

// The harness's client at its OpenID provider (options.oidc).
const (
	oidcClientID     = "gatehouse-harness"
	oidcClientSecret = "harness-client-secret-0123456789abcdef"
)

// oidcMapping maps an OpenID provider's standard claims.
func oidcMapping() provision.Mapping {
	return provision.Mapping{UserName: "preferred_username", Email: "email", DisplayName: "name", Groups: "groups"}
}

// scimToken is the SCIM bearer token of harnesses with options.scim.
const scimToken = "harness-scim-token-0123456789abcdef0123"

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// harness is gatehouse wired as `serve` wires it, on a fake clock, in
// front of a recording upstream.
type harness struct {
	t        testing.TB
	clock    *clockwork.FakeClock
	base     string
	dbPath   string
	store    provision.Store
	sqlite   *sqldir.Store
	sessions *session.Manager
	proxy    *proxy.Proxy
	server   *httptest.Server // nil when base was given
	upstream *recorder
	idp      signer
	logs     *observer.ObservedLogs
	pages    *proxy.Pages     // OnProblem counts refusals, as cmd's metrics do
	op       *oidcop.Provider // options.oidc
	seq      atomic.Int64     // message IDs; logins run from several goroutines

	// samlAudit holds the session package's audit events, from a core of
	// its own at info level, as serve wires it: warningsOnly (log.level:
	// warn) does not silence them.
	samlAudit *observer.ObservedLogs
}

// recorder is the upstream: it remembers every request it gets.
type recorder struct {
	mu       sync.Mutex
	requests []*http.Request
	server   *httptest.Server
	handler  http.HandlerFunc // optional override
	discard  bool             // keep nothing (benchmarks)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if !r.discard {
		r.requests = append(r.requests, req.Clone(context.Background()))
	}
	h := r.handler
	r.mu.Unlock()
	if h != nil {
		h(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "upstream %s %s user=%s", req.Method, req.URL.Path, req.Header.Get("X-Forwarded-User"))
}

func (r *recorder) all() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.requests...)
}

func (r *recorder) last(t testing.TB) *http.Request {
	t.Helper()
	all := r.all()
	if len(all) == 0 {
		t.Fatal("upstream got no request")
	}
	return all[len(all)-1]
}

func defaultMapping() provision.Mapping {
	return provision.Mapping{UserName: attrUID, Email: attrMail, DisplayName: attrDisplayName, GivenName: attrGivenName,
		FamilyName: attrSurname, Groups: attrGroups, Extra: map[string]string{"employee_id": attrEmployeeID}}
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	start := t0
	if o.realTime {
		start = time.Now()
	}
	h := &harness{t: t, clock: clockwork.NewFakeClockAt(start), idp: loadSigner(t, "idp"), upstream: &recorder{}}
	saml.TimeNow = h.clock.Now
	saml.Clock = dsig.NewFakeClock(h.clock)
	t.Cleanup(func() { saml.TimeNow = func() time.Time { return time.Now().UTC() }; saml.Clock = nil })

	h.upstream.server = httptest.NewServer(h.upstream)
	t.Cleanup(h.upstream.server.Close)

	dir := t.TempDir()
	h.store = o.store
	if h.store == nil {
		h.dbPath = filepath.Join(dir, "gatehouse.db")
		if o.dbPath != "" {
			h.dbPath = o.dbPath
		}
		st, err := sqldir.Open(context.Background(), sqldir.Config{Path: h.dbPath, Timeout: o.storeTimeout}, sqldir.WithClock(h.clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		h.sqlite, h.store = st, st
		t.Cleanup(func() { st.Close() })
	}

	h.base = o.base
	if h.base != "" {
		// Golden mode: crewjam draws AuthnRequest IDs from saml.RandReader;
		// zeros make every request ID goldenRequestID, which the golden
		// responses answer.
		saml.RandReader = zeroReader{}
		t.Cleanup(func() { saml.RandReader = rand.Reader })
	} else {
		h.server = httptest.NewUnstartedServer(nil)
		h.server.Start()
		t.Cleanup(h.server.Close)
		h.base = h.server.URL
	}
	level := zap.DebugLevel
	if o.warningsOnly {
		level = zap.WarnLevel
	}
	core, logs := observer.New(level)
	h.logs = logs
	logger := zap.New(core)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range logs.All() {
				t.Logf("log: %s %s %s %v", e.Level, e.LoggerName, e.Message, e.ContextMap())
			}
		}
	})

	mapping := defaultMapping()
	if o.mapping != nil {
		mapping = *o.mapping
	}
	pcfg := proxy.Config{Upstream: h.upstream.server.URL, BaseURL: h.base, PublicPaths: o.publicPaths, Authorization: o.authorization}
	// Benchmarks and soak runs log in thousands of times from one address;
	// the rate limit's own tests turn it back on.
	pcfg.RateLimit.Disabled = true
	if o.proxy != nil {
		o.proxy(&pcfg)
	}
	if o.identityKeys != nil {
		pcfg.SignedIdentity = &proxy.SignedIdentityConfig{Issuer: h.base, KeyFiles: []string{"(given to the harness)"}}
	}
	pcfg = pcfg.WithDefaults()
	if err := pcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	scfg := session.Config{
		BaseURL: h.base,
		Cookie:  session.CookieConfig{Insecure: strings.HasPrefix(h.base, "http:")},
		IdPs: []session.IdP{{Name: "corp", EntityID: idpEntityID, MetadataFile: writeMetadata(t, dir, "corp", idpEntityID, idpSSO, h.idp, o.idpSLO...),
			AllowIdPInitiated: o.allowIdPInitiated}},
		Endpoints: proxy.Endpoints(pcfg.Prefix),
		Keys:      o.spKeys,
		StateDir:  o.stateDir, EntityID: o.entityID,
	}
	if o.signMetadata {
		scfg.SignMetadata = &o.signMetadata
	}
	if o.corp != nil {
		o.corp(&scfg.IdPs[0])
	}
	if o.attributeService != "" {
		addAttributeAuthority(t, scfg.IdPs[0].MetadataFile, o.attributeService, h.idp)
	}
	var sc *scim.Server
	var reserved []string
	if o.scim {
		var err error
		mount := strings.TrimSuffix(pcfg.Prefix+proxy.PathSCIM, "/")
		sc, err = scim.NewServer(scim.Config{Tokens: []string{scimToken}}, h.store, scim.Options{BaseURL: h.base + mount, Mount: mount,
			Logger: logger.Named("scim"), OnUserChange: func(id string) { h.proxy.Forget(id) },
			RequestID: proxy.RequestID})
		if err != nil {
			t.Fatal(err)
		}
		reserved = sc.OwnedFields()
	}
	policies := map[string]proxy.IdPPolicy{"corp": {Mapping: mapping, ContinueOnStoreError: o.continueOnStoreError, Reserved: reserved}}
	if o.partner {
		scfg.IdPs = append(scfg.IdPs, session.IdP{Name: "partner", DisplayName: "Partner Org", EntityID: partnerEntityID,
			MetadataFile: writeMetadata(t, dir, "partner", partnerEntityID, partnerSSO, loadSigner(t, "other"))})
		policies["partner"] = proxy.IdPPolicy{Mapping: mapping}
	}
	if o.oidc != nil {
		h.op = o.oidc(t, h.base)
		op := session.IdP{Name: "op", DisplayName: "OpenID partner", Kind: session.KindOIDC,
			OIDC: session.OIDC{Issuer: h.op.Issuer, ClientID: oidcClientID, ClientSecret: "${GATEHOUSE_TEST_OIDC_SECRET}",
				Scopes: []string{"openid", "email", "profile", "groups"}}}
		ca, err := os.ReadFile(h.op.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		op.SetClientCredentials(oidcClientSecret, nil, ca)
		if o.oidcIdP != nil {
			o.oidcIdP(&op)
		}
		scfg.IdPs = append(scfg.IdPs, op)
		policies["op"] = proxy.IdPPolicy{Mapping: oidcMapping(), Reserved: reserved}
	}
	scfg.Cookie.SetKeys([][]byte{bytes.Repeat([]byte{7}, session.KeyLen)})
	pages := proxy.NewPages(logger.Named("pages"))
	h.pages = pages
	var err error
	auditCore, auditLogs := observer.New(zap.InfoLevel)
	h.samlAudit = auditLogs
	sopts := session.Options{Logger: logger.Named("saml"), Now: h.clock.Now, HTTPClient: o.httpClient, Pages: pages,
		Audit:      zap.New(auditCore).Named("audit"),
		ClientAddr: func(r *http.Request) string { return proxy.ClientIP(r.Context()).String() },
		RequestID:  func(r *http.Request) string { return proxy.RequestID(r.Context()) }}
	if o.sp != nil {
		o.sp(&scfg)
	}
	if o.state != nil {
		sopts.Replay, sopts.Revocations = o.state, o.state
	}
	// As cmd does: the SP key files are read outside session.New.
	if errs := scfg.LoadKeyPairs(os.ReadFile); len(errs) > 0 {
		t.Fatal(errs)
	}
	h.sessions, err = session.New(context.Background(), scfg, sopts)
	if err != nil {
		t.Fatal(err)
	}
	popts := proxy.Options{Logger: logger.Named("proxy"), Sessions: h.sessions, Store: h.store, Pages: pages,
		Now: h.clock.Now, IdPs: policies, IdentityKeys: o.identityKeys, TunnelCheck: 50 * time.Millisecond}
	if sc != nil {
		popts.SCIM = sc
	}
	switch {
	case o.accessOff:
		popts.Access = zap.NewNop()
	case o.accessLog != nil:
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		popts.Access = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.Lock(zapcore.AddSync(o.accessLog)), zap.InfoLevel)).Named("access")
	}
	h.proxy, err = proxy.New(pcfg, popts)
	if err != nil {
		t.Fatal(err)
	}
	if h.server != nil {
		h.server.Config.Handler = h.proxy
	}
	return h
}

func (h *harness) acsURL() string      { return h.base + proxy.DefaultPrefix + proxy.PathACS }
func (h *harness) metadataURL() string { return h.base + proxy.DefaultPrefix + proxy.PathMetadata }

// person is a user as the IdP asserts them.
type person struct {
	nameID, uid, mail, display, given, family, employeeID string
	groups                                                []string
}

var alice = person{nameID: "a7f3c9e1-0001", uid: "alice", mail: "alice@example.com", display: "Alice Archer",
	given: "Alice", family: "Archer", employeeID: "E1001", groups: []string{"staff", "admins"}}

func (p person) attrs() []attr {
	var out []attr
	add := func(name string, vals ...string) {
		if len(vals) > 0 && vals[0] != "" {
			out = append(out, attr{name, vals})
		}
	}
	add(attrUID, p.uid)
	add(attrMail, p.mail)
	add(attrDisplayName, p.display)
	add(attrGivenName, p.given)
	add(attrSurname, p.family)
	add(attrEmployeeID, p.employeeID)
	add(attrGroups, p.groups...)
	return out
}

// spec returns a valid response spec for p answering requestID.
func (h *harness) spec(p person, requestID string) spec {
	n := h.seq.Add(1)
	return spec{now: h.clock.Now(), issuer: idpEntityID, inResponseTo: requestID, destination: h.acsURL(), recipient: h.acsURL(),
		audience: h.metadataURL(), nameID: p.nameID, nameIDFormat: fmtPersist, attrs: p.attrs(),
		responseID: fmt.Sprintf("_resp%04d", n), assertionID: fmt.Sprintf("_assert%04d", n), sessionIndex: fmt.Sprintf("_sess%04d", n)}
}

// signedResponse builds the usual shape: signed assertion in an unsigned
// response.
func (h *harness) signedResponse(s spec) []byte {
	resp, a := respond(s)
	return serialize(assemble(resp, sign(h.t, a, h.idp)))
}

// browser is an HTTP client with a cookie jar that stops at redirects to
// the IdP, as a test cannot follow them.
func (h *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), h.base) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// startLogin requests path as a browser and returns the AuthnRequest ID
// and the RelayState from the redirect to the IdP.
func (h *harness) startLogin(c *http.Client, path string) (requestID, relay string) {
	h.t.Helper()
	req, relay := h.authnRequest(c, path)
	return req.SelectAttrValue("ID", ""), relay
}

// authnRequest requests path as a browser and returns the AuthnRequest
// element and the RelayState of the redirect to the IdP.
func (h *harness) authnRequest(c *http.Client, path string) (*etree.Element, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), idpSSO) {
		h.t.Fatalf("GET %s: want a redirect to the IdP, got %d %q", path, resp.StatusCode, loc)
	}
	return decodeRedirectRequest(h.t, loc), loc.Query().Get("RelayState")
}

// decodeRedirectRequest is the SAMLRequest of an HTTP-Redirect binding URL.
func decodeRedirectRequest(t testing.TB, loc *url.URL) *etree.Element {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	xmlReq, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xmlReq); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

// post sends a SAML response to the ACS and returns the final response
// after redirects.
func (h *harness) post(c *http.Client, doc []byte, relay string) *http.Response {
	h.t.Helper()
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	req, _ := http.NewRequest(http.MethodPost, h.acsURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// login runs a whole SP-initiated login of p, starting at path, with
// optional changes to the response, and returns the final response.
func (h *harness) login(c *http.Client, path string, p person, change ...func(*spec)) *http.Response {
	h.t.Helper()
	id, relay := h.startLogin(c, path)
	s := h.spec(p, id)
	for _, f := range change {
		f(&s)
	}
	return h.post(c, h.signedResponse(s), relay)
}

// get performs a browser GET with extra headers and returns status and body.
func (h *harness) get(c *http.Client, path string, header http.Header) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// db opens the SQLite file read-only, for assertions on what was written.
func (h *harness) db() *sql.DB {
	h.t.Helper()
	db, err := sql.Open("sqlite", "file:"+h.dbPath+"?mode=ro")
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { db.Close() })
	return db
}

func (h *harness) count(query string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.db().QueryRow(query, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// auditEvents returns the logged login events.
func (h *harness) auditEvents() []map[string]any {
	var out []map[string]any
	for _, e := range h.logs.FilterLoggerName("proxy.audit").All() {
		out = append(out, e.ContextMap())
	}
	return out
}
