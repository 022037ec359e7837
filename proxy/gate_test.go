package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/session"
)

// The gate's unit tests run the whole ServeHTTP with a fake store, a
// recording transport in place of the upstream and a session.Manager
// whose cookies are minted with its own Touch (which seals whatever
// session it is given): no SAML, no network.

const (
	gateBase     = "https://app.example.test"
	gateIdPSSO   = "https://idp.example.test/sso"
	gateIdPID    = "https://idp.example.test/metadata"
	gateUpstream = "http://upstream.test"
)

// testClock is a settable clock shared by the session manager and the
// proxy.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// upstreamRecorder stands in for the upstream: it records each request
// the proxy sends and answers 200.
type upstreamRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (u *upstreamRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	u.mu.Lock()
	u.reqs = append(u.reqs, r.Clone(context.Background()))
	u.mu.Unlock()
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("upstream")), Request: r}, nil
}

func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// last returns the last request the upstream received.
func (u *upstreamRecorder) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

type gate struct {
	t        testing.TB
	p        *Proxy
	store    *fakeStore
	sessions *session.Manager
	clock    *testClock
	upstream *upstreamRecorder
}

var (
	idpCertOnce sync.Once
	idpCertDER  []byte
)

// idpCert is a self-signed certificate for the test IdP's metadata (it
// signs nothing here: no response is ever posted).
func idpCert(t testing.TB) []byte {
	idpCertOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.example.test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		idpCertDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
	})
	return idpCertDER
}

// newGate builds a Proxy over a fake store holding users; edit changes
// the proxy's configuration before New.
func newGate(t testing.TB, edit func(*Config), users ...provision.User) *gate {
	t.Helper()
	return newGateOver(t, nil, edit, users...)
}

// newGateOver is newGate with the upstream reached over transport (nil:
// the recorder).
func newGateOver(t testing.TB, transport http.RoundTripper, edit func(*Config), users ...provision.User) *gate {
	t.Helper()
	g := &gate{t: t, store: newFakeStore(users...), clock: &testClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
		upstream: &upstreamRecorder{}}
	md := fmt.Sprintf(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID=%q>
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location=%q/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`, gateIdPID, base64.StdEncoding.EncodeToString(idpCert(t)), gateIdPSSO)
	mdFile := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(mdFile, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop()
	pages := NewPages(log)
	scfg := session.Config{BaseURL: gateBase, Endpoints: Endpoints(DefaultPrefix),
		IdPs: []session.IdP{{Name: "corp", EntityID: gateIdPID, MetadataFile: mdFile}}}
	scfg.Cookie.SetKeys([][]byte{make([]byte, session.KeyLen)})
	var err error
	g.sessions, err = session.New(context.Background(), scfg, session.Options{Logger: log, Now: g.clock.Now, Pages: pages})
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	cfg := Config{Upstream: gateUpstream, BaseURL: gateBase}
	if edit != nil {
		edit(&cfg)
	}
	if transport == nil {
		transport = g.upstream
	}
	g.p, err = New(cfg, Options{Logger: log, Sessions: g.sessions, Store: g.store, Pages: pages,
		Transport: transport, Now: g.clock.Now, Access: zap.NewNop()})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	return g
}

// cookie mints a session cookie for userID from the IdP "corp".
func (g *gate) cookie(userID string) *http.Cookie {
	return g.cookieWith(session.Session{UserID: userID})
}

// cookieWith mints a session cookie for s (IdP "corp" unless set): Touch
// seals and sets any session whose last use is old enough.
func (g *gate) cookieWith(s session.Session) *http.Cookie {
	g.t.Helper()
	now := g.clock.Now()
	if s.ID == "" {
		s.ID = "sess-" + s.UserID
	}
	if s.IdP == "" {
		s.IdP = "corp"
	}
	s.Issued, s.LastSeen = now.Add(-5*time.Minute), now.Add(-5*time.Minute)
	w := httptest.NewRecorder()
	g.sessions.Touch(w, s)
	for _, c := range w.Result().Cookies() {
		if c.Name == g.sessions.CookieName() {
			return c
		}
	}
	g.t.Fatal("Touch set no session cookie")
	return nil
}

// do sends one request through the proxy; cookie may be nil. Header
// names in h are set as given (not canonicalised).
func (g *gate) do(method, target string, cookie *http.Cookie, h http.Header) *httptest.ResponseRecorder {
	g.t.Helper()
	r := httptest.NewRequest(method, gateBase+target, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	g.p.ServeHTTP(w, r)
	return w
}

var (
	browser = http.Header{"Accept": {"text/html,application/xhtml+xml"}}
	api     = http.Header{"Accept": {"application/json"}}
)

func alice() provision.User {
	return provision.User{ID: "u-alice", UserName: "alice", Email: "alice@example.test", DisplayName: "Alice Liddell",
		GivenName: "Alice", FamilyName: "Liddell", Groups: []string{"admins", "staff"}, Active: true,
		Extra: map[string]string{"department": "R&D"}}
}

// wantLoginRedirect checks that w sends the browser to the IdP.
func wantLoginRedirect(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusFound {
		t.Fatalf("status %d, want 302 to the IdP; body %q", w.Code, w.Body.String())
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != gateIdPSSO || loc.Query().Get("SAMLRequest") == "" {
		t.Fatalf("Location %q, want an AuthnRequest to %s", w.Header().Get("Location"), gateIdPSSO)
	}
}

// TestGateAnonymous: a request without a usable session never reaches
// the upstream nor the store; a browser's GET or HEAD is sent to the IdP,
// anything else gets 401.
func TestGateAnonymous(t *testing.T) {
	g := newGate(t, nil, alice())
	garbage := &http.Cookie{Name: g.sessions.CookieName(), Value: "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
	for _, tc := range []struct {
		name, method string
		cookie       *http.Cookie
		h            http.Header
		login        bool
		status       int
	}{
		{"BrowserGET", "GET", nil, browser, true, 0},
		{"BrowserHEAD", "HEAD", nil, browser, true, 0},
		{"APIGET", "GET", nil, api, false, http.StatusUnauthorized},
		{"NoAccept", "GET", nil, nil, false, http.StatusUnauthorized},
		{"BrowserPOST", "POST", nil, browser, false, http.StatusUnauthorized},
		{"BrowserDELETE", "DELETE", nil, browser, false, http.StatusUnauthorized},
		{"GarbageCookie", "GET", garbage, browser, true, 0},
		{"GarbageCookieAPI", "GET", garbage, api, false, http.StatusUnauthorized},
		{"EmptyCookie", "GET", &http.Cookie{Name: g.sessions.CookieName(), Value: ""}, api, false, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads, sent := g.store.readCount(), g.upstream.count()
			w := g.do(tc.method, "/reports/q?x=1", tc.cookie, tc.h)
			if tc.login {
				wantLoginRedirect(t, w)
			} else if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if g.upstream.count() != sent {
				t.Error("an anonymous request reached the upstream")
			}
			if g.store.readCount() != reads {
				t.Error("an anonymous request read the store")
			}
		})
	}
}

// TestGateSessionOfAnotherDeployment: a cookie sealed under another
// cookie key does not open: the request is anonymous.
func TestGateSessionOfAnotherDeployment(t *testing.T) {
	g := newGate(t, nil, alice())
	scfg := session.Config{BaseURL: gateBase, Endpoints: Endpoints(DefaultPrefix),
		IdPs: []session.IdP{{Name: "corp", EntityID: gateIdPID, MetadataURL: "https://idp.example.test/md", MetadataUnsigned: true}}}
	key := make([]byte, session.KeyLen)
	key[0] = 1
	scfg.Cookie.SetKeys([][]byte{key})
	foreign, err := session.New(context.Background(), scfg, session.Options{Logger: zap.NewNop(), Now: g.clock.Now, Pages: NewPages(zap.NewNop()),
		HTTPClient: &http.Client{Transport: failingTransport{}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	now := g.clock.Now()
	foreign.Touch(rec, session.Session{ID: "s", UserID: "u-alice", IdP: "corp", Issued: now.Add(-time.Hour), LastSeen: now.Add(-time.Hour)})
	c := rec.Result().Cookies()[0]
	if w := g.do("GET", "/", c, api); w.Code != http.StatusUnauthorized || g.upstream.count() != 0 || g.store.readCount() != 0 {
		t.Errorf("status %d, upstream %d, store reads %d; want 401 and neither reached", w.Code, g.upstream.count(), g.store.readCount())
	}
}

// failingTransport fails every request without touching the network.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in unit tests")
}

// TestGateActiveUserForwarded: a valid session of an active user is
// forwarded with the identity headers from the store's record; the
// session cookie never reaches the upstream; the store is read with a
// deadline.
func TestGateActiveUserForwarded(t *testing.T) {
	g := newGate(t, nil, alice())
	c := g.cookie("u-alice")
	h := http.Header{"Accept": {"application/json"}, "Cookie": {"theme=dark; JSESSIONID=42"}}
	w := g.do("GET", "/reports/q?x=1", c, h)
	if w.Code != http.StatusOK || w.Body.String() != "upstream" {
		t.Fatalf("status %d body %q, want the upstream's 200", w.Code, w.Body.String())
	}
	got := g.upstream.last(t)
	if got.URL.Path != "/reports/q" || got.URL.RawQuery != "x=1" || got.URL.Host != "upstream.test" {
		t.Errorf("upstream got %s", got.URL)
	}
	for name, want := range map[string]string{
		"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.test", "X-Forwarded-Groups": "admins,staff",
		"X-Forwarded-Preferred-Username": "alice", "X-Forwarded-Display-Name": "Alice Liddell",
	} {
		if v := got.Header[name]; len(v) != 1 || v[0] != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if ck := got.Header.Values("Cookie"); len(ck) != 1 || strings.Contains(ck[0], c.Name) || !strings.Contains(ck[0], "theme=dark") || !strings.Contains(ck[0], "JSESSIONID=42") {
		t.Errorf("upstream Cookie = %q: the session cookie must go, the application's stay", ck)
	}
	if g.store.readCount() != 1 || g.store.noDeadline != 0 {
		t.Errorf("store reads %d (%d without a deadline), want 1 with a deadline", g.store.readCount(), g.store.noDeadline)
	}
}

// TestGateRefusals: what a valid session gets when its user is
// deactivated, deleted, or the store fails with nothing cached. None
// reaches the upstream.
func TestGateRefusals(t *testing.T) {
	deactivated := alice()
	deactivated.Active = false
	for _, tc := range []struct {
		name   string
		users  []provision.User
		err    error
		h      http.Header
		status int // 0: a new login at the IdP
		title  string
	}{
		{"DeactivatedBrowser", []provision.User{deactivated}, nil, browser, http.StatusForbidden, "Account deactivated"},
		{"DeactivatedAPI", []provision.User{deactivated}, nil, api, http.StatusForbidden, ""},
		{"DeletedBrowser", nil, nil, browser, 0, ""},
		{"DeletedAPI", nil, nil, api, http.StatusUnauthorized, ""},
		{"StoreDownBrowser", []provision.User{alice()}, errors.New("dial tcp: connection refused"), browser, http.StatusServiceUnavailable, "Temporarily unavailable"},
		{"StoreDownAPI", []provision.User{alice()}, errors.New("dial tcp: connection refused"), api, http.StatusServiceUnavailable, ""},
		{"StoreTimeout", []provision.User{alice()}, context.DeadlineExceeded, api, http.StatusServiceUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t, nil, tc.users...)
			g.store.fail(tc.err)
			w := g.do("GET", "/reports/q", g.cookie("u-alice"), tc.h)
			if tc.status == 0 {
				wantLoginRedirect(t, w)
			} else if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if tc.title != "" && !strings.Contains(w.Body.String(), tc.title) {
				t.Errorf("page does not say %q:\n%s", tc.title, w.Body.String())
			}
			if strings.Contains(w.Body.String(), "connection refused") {
				t.Error("the store's error text reached the browser")
			}
			if g.upstream.count() != 0 {
				t.Error("the request reached the upstream")
			}
		})
	}
}

// TestGateIdentityCache: the steady-state request reads nothing from the
// store; an entry is read again after user_cache_ttl or after Forget; a
// store outage serves the last good record (retried 5s later, not on
// every request) but never revives a user the store last called
// deactivated or deleted.
func TestGateIdentityCache(t *testing.T) {
	ttl := 10 * time.Second
	withTTL := func(c *Config) { c.UserCacheTTL = ttl }
	down := errors.New("store down")

	t.Run("WarmServesWithoutReading", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		for i := range 5 {
			if w := g.do("GET", "/", c, api); w.Code != http.StatusOK {
				t.Fatalf("request %d: status %d", i, w.Code)
			}
		}
		if n := g.store.readCount(); n != 1 {
			t.Errorf("store read %d times for 5 requests within the TTL, want 1", n)
		}
	})

	t.Run("ChangeSeenAfterTTL", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		changed := alice()
		changed.Groups = []string{"staff"}
		g.store.put(changed)
		g.do("GET", "/", c, api)
		if v := g.upstream.last(t).Header.Get("X-Forwarded-Groups"); v != "admins,staff" {
			t.Errorf("within the TTL: groups %q, want the cached admins,staff", v)
		}
		g.clock.advance(ttl)
		g.do("GET", "/", c, api)
		if v := g.upstream.last(t).Header.Get("X-Forwarded-Groups"); v != "staff" {
			t.Errorf("after the TTL: groups %q, want staff", v)
		}
	})

	t.Run("DeactivatedSeenAfterTTL", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		g.store.SetActive(context.Background(), "u-alice", false)
		g.clock.advance(ttl)
		if w := g.do("GET", "/", c, api); w.Code != http.StatusForbidden {
			t.Errorf("status %d after the TTL, want 403", w.Code)
		}
	})

	t.Run("ForgetSeenAtOnce", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		g.store.SetActive(context.Background(), "u-alice", false)
		g.p.Forget("u-alice")
		if w := g.do("GET", "/", c, api); w.Code != http.StatusForbidden {
			t.Errorf("status %d right after Forget, want 403", w.Code)
		}
		g.store.remove("u-alice")
		g.p.Forget("u-alice")
		if w := g.do("GET", "/", c, api); w.Code != http.StatusUnauthorized {
			t.Errorf("status %d after delete and Forget, want 401", w.Code)
		}
	})

	t.Run("OutageServesStaleWithRetry", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		g.store.fail(down)
		g.clock.advance(ttl)
		w := g.do("GET", "/", c, api)
		if w.Code != http.StatusOK || g.upstream.last(t).Header.Get("X-Forwarded-User") != "alice" {
			t.Fatalf("status %d during an outage with a cached record, want 200 as alice", w.Code)
		}
		reads := g.store.readCount()
		g.clock.advance(time.Second)
		g.do("GET", "/", c, api)
		if g.store.readCount() != reads {
			t.Error("the store was read again within 5s of a failed read")
		}
		g.clock.advance(5 * time.Second)
		g.do("GET", "/", c, api)
		if g.store.readCount() != reads+1 {
			t.Errorf("store reads %d, want %d: the read is retried after 5s", g.store.readCount(), reads+1)
		}
	})

	t.Run("ForgetDuringOutageServesNothingStale", func(t *testing.T) {
		// SCIM deactivated the user (its write succeeded), told the
		// cache, and the store then failed: the last good record is gone.
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		g.store.SetActive(context.Background(), "u-alice", false)
		g.p.Forget("u-alice")
		g.store.fail(down)
		if w := g.do("GET", "/", c, api); w.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", w.Code)
		}
		if g.upstream.count() != 1 {
			t.Errorf("upstream received %d requests, want only the first", g.upstream.count())
		}
	})

	t.Run("ForgetRacingAFailedReadServesNothingStale", func(t *testing.T) {
		// The cached record is past its TTL; while the store is read
		// again, SCIM deactivates the user and tells the cache, and the
		// read then fails: the old record must be neither served nor put
		// back (red team R2, finding 2).
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		g.clock.advance(ttl)
		g.store.duringRead = func(id string) {
			g.store.duringRead = nil
			g.store.SetActive(context.Background(), id, false)
			g.p.Forget(id)
			g.store.fail(down)
		}
		if w := g.do("GET", "/", c, api); w.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", w.Code)
		}
		if w := g.do("GET", "/", c, api); w.Code != http.StatusServiceUnavailable {
			t.Errorf("next request: status %d, want 503 (nothing stale cached)", w.Code)
		}
		if g.upstream.count() != 1 {
			t.Errorf("upstream received %d requests, want only the first", g.upstream.count())
		}
	})

	t.Run("OutageAfterDeactivationStaysRefused", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		g.store.SetActive(context.Background(), "u-alice", false)
		g.clock.advance(ttl)
		g.do("GET", "/", c, api) // reads the deactivation
		g.store.fail(down)
		for range 2 {
			g.clock.advance(ttl)
			if w := g.do("GET", "/", c, api); w.Code != http.StatusForbidden {
				t.Fatalf("status %d during an outage after deactivation, want 403", w.Code)
			}
		}
		if g.upstream.count() != 1 {
			t.Errorf("upstream received %d requests, want only the first", g.upstream.count())
		}
	})

	t.Run("OutageAfterDeletionIsUnavailable", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		c := g.cookie("u-alice")
		g.do("GET", "/", c, api)
		g.store.remove("u-alice")
		g.clock.advance(ttl)
		if w := g.do("GET", "/", c, api); w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for a deleted user, want 401", w.Code)
		}
		g.store.fail(down)
		if w := g.do("GET", "/", c, api); w.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d during an outage after deletion, want 503 (no stale record)", w.Code)
		}
		if g.upstream.count() != 1 {
			t.Errorf("upstream received %d requests, want only the first", g.upstream.count())
		}
	})

	t.Run("ColdOutage", func(t *testing.T) {
		g := newGate(t, withTTL, alice())
		g.store.fail(down)
		c := g.cookie("u-alice")
		for range 2 {
			if w := g.do("GET", "/", c, api); w.Code != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", w.Code)
			}
		}
		if g.store.readCount() != 2 {
			t.Errorf("store reads %d, want 2: a failure is not cached", g.store.readCount())
		}
	})

	t.Run("OtherUsersUnaffected", func(t *testing.T) {
		bob := provision.User{ID: "u-bob", UserName: "bob", Active: true}
		g := newGate(t, withTTL, alice(), bob)
		ca, cb := g.cookie("u-alice"), g.cookie("u-bob")
		g.do("GET", "/", ca, api)
		g.do("GET", "/", cb, api)
		g.store.SetActive(context.Background(), "u-alice", false)
		g.p.Forget("u-alice")
		reads := g.store.readCount()
		if w := g.do("GET", "/", cb, api); w.Code != http.StatusOK || g.upstream.last(t).Header.Get("X-Forwarded-User") != "bob" {
			t.Errorf("bob: status %d", w.Code)
		}
		if g.store.readCount() != reads {
			t.Error("forgetting alice made bob's request read the store")
		}
	})
}
