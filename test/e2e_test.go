package test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"

	"gatehouse/provision"
	"gatehouse/proxy"
)

// TestFirstLoginCreatesUser: an SP-initiated login provisions the user,
// lands on the page first asked for, and forwards the record's identity.
func TestFirstLoginCreatesUser(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	resp := h.login(c, "/reports/q3?year=2026", alice)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/reports/q3?year=2026" {
		t.Fatalf("after login: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	up := h.upstream.last(t)
	got := map[string]string{}
	for _, k := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Forwarded-Display-Name"} {
		got[k] = up.Header.Get(k)
	}
	// The preferred username is the user name, never the free-text
	// display name.
	want := map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com",
		"X-Forwarded-Groups": "admins,staff", "X-Forwarded-Preferred-Username": "alice", "X-Forwarded-Display-Name": "Alice Archer"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identity headers (-want +got):\n%s", diff)
	}
	if n := h.count(`SELECT count(*) FROM gatehouse_users WHERE user_name = 'alice' AND email = 'alice@example.com'`); n != 1 {
		t.Errorf("alice rows = %d", n)
	}
	if n := h.count(`SELECT count(*) FROM gatehouse_memberships WHERE source = 'jit:' || ?`, idpEntityID); n != 2 {
		t.Errorf("jit memberships = %d, want 2", n)
	}
	ev := h.auditEvents()
	if len(ev) != 1 || ev[0]["outcome"] != "created" || ev[0]["idp"] != "corp" || ev[0]["name_id"] != alice.nameID || ev[0]["user_id"] == "" {
		t.Errorf("audit events = %v", ev)
	}
}

// TestChangedLoginUpdatesOnlyChangedFields and the unchanged login after
// it: the second login writes exactly the changed fields, the third
// writes nothing at all (SQLite's data_version does not move).
func TestChangedLoginUpdatesOnlyChangedFields(t *testing.T) {
	h := newHarness(t, options{})
	readResp(t, h.login(h.browser(), "/", alice))

	changed := alice
	changed.mail = "alice.archer@example.com"
	changed.groups = []string{"staff"}
	readResp(t, h.login(h.browser(), "/", changed))
	ev := h.auditEvents()
	last := ev[len(ev)-1]
	if last["outcome"] != "updated" || !cmp.Equal(last["changed"], []any{"email", "groups"}) {
		t.Errorf("second login audit = %v", last)
	}
	if h.count(`SELECT count(*) FROM gatehouse_users WHERE email = 'alice.archer@example.com' AND version = 2`) != 1 {
		t.Error("email not updated")
	}
	if n := h.count(`SELECT count(*) FROM gatehouse_memberships`); n != 1 {
		t.Errorf("memberships = %d, want 1", n)
	}

	conn, err := h.db().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var before, after int64
	conn.QueryRowContext(context.Background(), `PRAGMA data_version`).Scan(&before)
	c := h.browser()
	readResp(t, h.login(c, "/", changed))
	// Authenticated requests after the login read the cache, not the store.
	for range 5 {
		if code, _ := h.get(c, "/page", nil); code != http.StatusOK {
			t.Fatalf("authenticated GET: %d", code)
		}
	}
	conn.QueryRowContext(context.Background(), `PRAGMA data_version`).Scan(&after)
	if before != after {
		t.Errorf("unchanged login wrote to the store: data_version %d -> %d", before, after)
	}
	ev = h.auditEvents()
	if last := ev[len(ev)-1]; last["outcome"] != "unchanged" {
		t.Errorf("third login audit = %v", last)
	}
}

func readResp(t testing.TB, resp *http.Response) string {
	t.Helper()
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return body
}

// TestSpoofedIdentityHeadersNeverReachUpstream: every spelling a client
// could use for an identity header is removed, on authenticated and
// public paths alike.
func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/public/"}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))

	spoof := http.Header{
		"X-Forwarded-User":               {"root"},
		"x-forwarded-user":               {"root"},
		"X_Forwarded_User":               {"root"},
		"X-FORWARDED-EMAIL":              {"root@example.com"},
		"X-Forwarded_Groups":             {"admins"},
		"X-Forwarded-Preferred-Username": {"root"},
		"X-Forwarded-Display-Name":       {"root"},
		"X-Gatehouse-Anything":           {"1"},
		"x_gatehouse_user_id":            {"1"},
		// CGI gateways read every non-alphanumeric as "_" (HTTP_X_FORWARDED_USER).
		"X.Forwarded.User":   {"root"},
		"X~Forwarded+Groups": {"admins-root"},
		"X.Real.IP":          {"root"},
		"X!Gatehouse|Role":   {"1"},
		"Accept":             {"text/html"},
	}
	for _, path := range []string{"/app", "/public/x"} {
		for _, conn := range []string{"", "X-Forwarded-User", "x_forwarded_user, keep-alive"} {
			t.Run(path+"/connection="+conn, func(t *testing.T) {
				hdr := spoof.Clone()
				if conn != "" {
					hdr.Set("Connection", conn)
				}
				if code, body := rawGet(t, h, c, path, hdr); code != http.StatusOK {
					t.Fatalf("%d %s", code, body)
				}
				up := h.upstream.last(t)
				for name, vals := range up.Header {
					n := proxy.NormalizeHeaderName(name)
					if strings.HasPrefix(n, proxy.NormalizeHeaderName("X-Gatehouse-")) || slices.Contains(vals, "root") || slices.Contains(vals, "root@example.com") || slices.Contains(vals, "admins-root") {
						t.Errorf("spoofed header reached upstream: %s: %v", name, vals)
					}
				}
				wantUser := "alice"
				if strings.HasPrefix(path, "/public/") {
					wantUser = "" // public paths carry no identity, only stripped headers
				}
				if got := up.Header.Values("X-Forwarded-User"); (wantUser == "" && len(got) != 0) || (wantUser != "" && !slices.Equal(got, []string{wantUser})) {
					t.Errorf("X-Forwarded-User = %q, want %q", got, wantUser)
				}
			})
		}
	}
}

// rawGet writes the request by hand so header names keep their exact
// spelling (underscores, case) on the wire.
func rawGet(t *testing.T, h *harness, c *http.Client, path string, hdr http.Header) (int, string) {
	t.Helper()
	u, _ := url.Parse(h.base + path)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, u.Host)
	for _, ck := range c.Jar.Cookies(u) {
		fmt.Fprintf(&b, "Cookie: %s=%s\r\n", ck.Name, ck.Value)
	}
	for name, vals := range hdr {
		for _, v := range vals {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestGatehouseCookiesNeverReachUpstream: the session cookie and the
// login-binding cookies are removed; the application's own cookies stay.
func TestGatehouseCookiesNeverReachUpstream(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	u, _ := url.Parse(h.base)
	// A login started and never finished leaves its state cookie (Path=/,
	// so the browser sends it everywhere); a logout's state cookie too.
	h.startLogin(c, "/.gatehouse/login?return=/later")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "JSESSIONID", Value: "app-session"}, {Name: "gatehouse_login_AAAAAAAAAA", Value: "x"},
		{Name: "gatehouse_logout", Value: "y"}})
	pending := false
	for _, ck := range c.Jar.Cookies(u) {
		pending = pending || strings.HasPrefix(ck.Name, "gatehouse_login_") && ck.Value != "x"
	}
	if !pending {
		t.Fatal("the browser should hold a pending login's state cookie")
	}
	if code, _ := h.get(c, "/x", nil); code != http.StatusOK {
		t.Fatal(code)
	}
	up := h.upstream.last(t)
	cookies := up.Header.Values("Cookie")
	if len(cookies) != 1 || cookies[0] != "JSESSIONID=app-session" {
		t.Errorf("upstream Cookie header = %q, want only the application's cookie", cookies)
	}
	if len(c.Jar.Cookies(u)) < 2 {
		t.Fatal("the browser should hold the session cookie")
	}
}

// TestReservedPathsNeverReachUpstream: anything an upstream server might
// read as the reserved prefix is answered by gatehouse.
func TestReservedPathsNeverReachUpstream(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	before := len(h.upstream.all())
	for _, p := range []string{
		"/.gatehouse/", "/.gatehouse/unknown", "/.gatehouse/scim/v2/Users", "/.GATEHOUSE/healthz", "/.Gatehouse/x",
		"/a/../.gatehouse/x", "/%2egatehouse/x", "/.gatehouse;jsessionid=1/x", "/.gatehouse", "/./.gatehouse/saml/acs",
	} {
		code, _ := rawGet(t, h, c, p, http.Header{"Accept": {"text/html"}})
		if code == http.StatusOK && !strings.Contains(strings.ToLower(p), "healthz") {
			t.Errorf("%s: %d", p, code)
		}
	}
	if after := len(h.upstream.all()); after != before {
		for _, r := range h.upstream.all()[before:] {
			t.Errorf("reached upstream: %s", r.URL.Path)
		}
	}
	if code, body := h.get(c, "/.gatehouse/healthz", nil); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, body := h.get(c, "/.gatehouse/readyz", nil); code != 200 || body != "ready\n" {
		t.Errorf("readyz: %d %q", code, body)
	}
}

// TestReturnURLIsBoundToServerState: the page a login returns to comes
// from server-side state. A RelayState naming another origin matches no
// state, so the response is treated as unsolicited and refused; for an
// IdP allowed to start logins it is not followed either.
func TestReturnURLIsBoundToServerState(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("idp_initiated=%v", allow), func(t *testing.T) {
			h := newHarness(t, options{allowIdPInitiated: allow})
			for _, relay := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "https:evil.example"} {
				c := h.browser()
				id, _ := h.startLogin(c, "/")
				s := h.spec(alice, id)
				if allow {
					s.inResponseTo = "" // a genuine unsolicited response
				}
				resp := h.post(c, h.signedResponse(s), relay)
				readAll(t, resp)
				if loc := resp.Request.URL; loc.Host != strings.TrimPrefix(h.base, "http://") {
					t.Errorf("relay %q led to %s", relay, loc)
				}
				if !allow && resp.StatusCode != http.StatusForbidden {
					t.Errorf("relay %q: status %d, want 403", relay, resp.StatusCode)
				}
				if allow && (resp.StatusCode != 200 || resp.Request.URL.Path != "/") {
					t.Errorf("relay %q: landed on %d %s, want 200 /", relay, resp.StatusCode, resp.Request.URL.Path)
				}
			}
		})
	}
}

// TestLoginStateBoundToBrowser: a response posted from a browser that did
// not start the login (no binding cookie) is refused, even with the right
// RelayState.
func TestLoginStateBoundToBrowser(t *testing.T) {
	h := newHarness(t, options{})
	id, relay := h.startLogin(h.browser(), "/")
	resp := h.post(h.browser(), h.signedResponse(h.spec(alice, id)), relay)
	readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || h.count(`SELECT count(*) FROM gatehouse_users`) != 0 {
		t.Errorf("status %d, users %d", resp.StatusCode, h.count(`SELECT count(*) FROM gatehouse_users`))
	}
}

// TestConcurrentFirstLoginsMakeOneAccount: fifty simultaneous first
// logins of one user end with one account, and every login succeeds.
func TestConcurrentFirstLoginsMakeOneAccount(t *testing.T) {
	h := newHarness(t, options{})
	const n = 50
	h.simultaneousLogins(t, slices.Repeat([]person{alice}, n))
	if got := h.count(`SELECT count(*) FROM gatehouse_users`); got != 1 {
		t.Errorf("users = %d, want 1", got)
	}
	if got := h.count(`SELECT count(*) FROM gatehouse_identities`); got != 1 {
		t.Errorf("identities = %d, want 1", got)
	}
	created := 0
	logins, coalesced, users := 0, 0, map[any]bool{}
	for _, ev := range h.auditEvents() {
		if ev["event"] != "login" {
			continue
		}
		logins++
		if ev["coalesced"] == true {
			coalesced++
		}
		users[ev["user_id"]] = true
		switch ev["outcome"] {
		case "created":
			created++
		case "unchanged": // a later login, or one that shared the first one's store call (coalesced)
		default:
			t.Errorf("login audit line %v, want created or unchanged", ev)
		}
	}
	if created != 1 {
		t.Errorf("%d logins report created, want 1", created)
	}
	if logins != n || len(users) != 1 {
		t.Errorf("%d login audit lines for %d user IDs, want %d for one", logins, len(users), n)
	}
	// The writes queued in gatehouse's writer queue; none gave up there.
	if st := h.sqlite.WriteQueue(); st.TimedOut != 0 || st.Waiting != 0 {
		t.Errorf("writer queue %+v, want no write timed out or left waiting", st)
	}
	t.Logf("%d of %d logins shared another's store call; writer queue: %+v", coalesced, n, h.sqlite.WriteQueue())
}

// TestDeactivatedUserIsRefused: a deactivated user gets the 403 page at
// login and on a live session, is never re-enabled, and nothing of theirs
// is forwarded.
func TestDeactivatedUserIsRefused(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	id := h.auditEvents()[0]["user_id"].(string)
	if err := h.store.SetActive(context.Background(), id, false); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Minute) // past the identity cache TTL
	before := len(h.upstream.all())
	code, body := h.get(c, "/x", http.Header{"Accept": {"text/html"}})
	if code != http.StatusForbidden || !strings.Contains(body, "Account deactivated") || !strings.Contains(body, "error ID") ||
		!strings.Contains(body, `<form method="post" action="/.gatehouse/logout">`) {
		t.Errorf("live session of deactivated user (want the deactivated page with its Sign out form): %d %s", code, body)
	}
	resp := h.login(h.browser(), "/", alice)
	body = readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Access denied") {
		t.Errorf("login of deactivated user: %d %s", resp.StatusCode, body)
	}
	if len(h.upstream.all()) != before {
		t.Error("a request of the deactivated user reached upstream")
	}
	u, err := h.store.User(context.Background(), id)
	if err != nil || u.Active {
		t.Errorf("user after refused login: active=%v err=%v", u.Active, err)
	}
	ev := h.auditEvents()
	if last := ev[len(ev)-1]; last["outcome"] != "refused" || last["reason"] != "disabled" {
		t.Errorf("audit = %v", last)
	}
}

// failingStore is a provision.Store whose every call fails, standing in
// for a store that is down.
type failingStore struct{}

var errDown = errors.New("database is down")

func (failingStore) Provision(context.Context, provision.Login) (provision.Result, error) {
	return provision.Result{}, errDown
}
func (failingStore) User(context.Context, string) (provision.User, error) {
	return provision.User{}, errDown
}
func (failingStore) SetActive(context.Context, string, bool) error { return errDown }
func (failingStore) Ping(context.Context) error                    { return errDown }
func (failingStore) Close() error                                  { return nil }

// TestStoreFailure: by default a login with the store down ends on the
// 503 page with an error ID; readyz stays 200 and ?verbose and ?strict
// report the store; continue_on_store_error
// does not admit a user this instance has not seen.
func TestStoreFailure(t *testing.T) {
	t.Run("refuse", func(t *testing.T) {
		h := newHarness(t, options{store: failingStore{}})
		resp := h.login(h.browser(), "/", alice)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "error ID") || strings.Contains(body, "database is down") {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
		if len(h.upstream.all()) != 0 {
			t.Error("request reached upstream")
		}
		logged := h.logs.FilterMessage("request refused").All()
		if len(logged) != 1 || !strings.Contains(fmt.Sprint(logged[0].ContextMap()["error"]), "database is down") {
			t.Errorf("the log should carry the cause: %v", logged)
		}
		if code, _ := h.get(h.browser(), "/.gatehouse/readyz", nil); code != http.StatusOK {
			t.Errorf("readyz = %d, want 200 (degraded)", code)
		}
		if code, body := h.get(h.browser(), "/.gatehouse/readyz?verbose", nil); code != http.StatusOK ||
			!strings.Contains(body, "[-]store failed\n") || !strings.HasSuffix(body, "readyz check passed\n") || strings.Contains(body, "database is down") {
			t.Errorf("readyz?verbose = %d %q", code, body)
		}
		if code, _ := h.get(h.browser(), "/.gatehouse/readyz?strict", nil); code != http.StatusServiceUnavailable {
			t.Errorf("readyz?strict = %d, want 503", code)
		}
	})
	t.Run("continue", func(t *testing.T) {
		// continue_on_store_error admits only users this instance has seen
		// active (TestContinueOnStoreErrorAdmitsOnlyKnownActiveUsers); one it
		// has never seen is refused like without it.
		h := newHarness(t, options{store: failingStore{}, continueOnStoreError: true})
		resp := h.login(h.browser(), "/", alice)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || len(h.upstream.all()) != 0 {
			t.Errorf("an unknown user during an outage: %d", resp.StatusCode)
		}
	})
}

// TestUnauthenticatedRequests: browsers are sent to login; API clients
// get 401; nothing reaches the upstream.
func TestUnauthenticatedRequests(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	for _, tc := range []struct {
		method, accept string
		want           int
	}{
		{"GET", "text/html", http.StatusFound},
		{"HEAD", "text/html", http.StatusFound},
		{"GET", "application/json", http.StatusUnauthorized},
		{"POST", "text/html", http.StatusUnauthorized},
		{"GET", "", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(tc.method, h.base+"/api", nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s accept=%q: %d, want %d", tc.method, tc.accept, resp.StatusCode, tc.want)
		}
	}
	if len(h.upstream.all()) != 0 {
		t.Error("unauthenticated request reached upstream")
	}
}

// TestPublicPathsCannotBeSmuggled: a dot segment cannot carry a private
// path through a public prefix; an encoded backslash is refused.
func TestPublicPathsCannotBeSmuggled(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/static/"}})
	c := h.browser()
	for path, want := range map[string]int{
		"/static/app.css":         http.StatusOK,
		"/static/../admin":        http.StatusUnauthorized,
		"/static/%2e%2e/admin":    http.StatusUnauthorized,
		"/static/..%5cadmin":      http.StatusBadRequest, // an encoded backslash is ambiguous
		"/staticky":               http.StatusUnauthorized,
		"/STATIC/app.css":         http.StatusUnauthorized,
		"/static;x=1/../../admin": http.StatusUnauthorized,
	} {
		code, _ := rawGet(t, h, c, path, http.Header{"Accept": {"application/json"}})
		if code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}

// TestStreamingWebSocketAndLargeBodies: the proxy passes a streamed
// response before it ends, a WebSocket-style upgrade, and a 32 MiB upload.
func TestStreamingWebSocketAndLargeBodies(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	release := make(chan struct{})
	h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-release
			fmt.Fprint(w, "data: second\n\n")
		case "/upload":
			sum := sha256.New()
			n, _ := io.Copy(sum, r.Body)
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(sum.Sum(nil)))
		case "/ws":
			if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Forwarded-User") != "alice" {
				http.Error(w, "no upgrade", 400)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo " + line)
			brw.Flush()
		}
	}

	t.Run("stream", func(t *testing.T) {
		defer close(release)
		resp, err := c.Get(h.base + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || first != "data: first\n" {
			t.Fatalf("first event before the stream ended: %q %v", first, err)
		}
	})
	t.Run("upload", func(t *testing.T) {
		body := strings.Repeat("0123456789abcdef", 2<<20) // 32 MiB
		sum := sha256.Sum256([]byte(body))
		resp, err := c.Post(h.base+"/upload", "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got := readResp(t, resp)
		if want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:])); got != want {
			t.Errorf("upstream got %q, want %q", got, want)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		u, _ := url.Parse(h.base)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var cookies []string
		for _, ck := range c.Jar.Cookies(u) {
			cookies = append(cookies, ck.Name+"="+ck.Value)
		}
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: %s\r\n\r\n", u.Host, strings.Join(cookies, "; "))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		fmt.Fprint(conn, "hello\n")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || line != "echo hello\n" {
			t.Errorf("over the upgraded connection: %q %v", line, err)
		}
	})
}

// TestLogoutEndsSession: after logout the cookie no longer opens a session.
func TestLogoutEndsSession(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	if resp := h.logout(c, http.Header{"Origin": {h.base}}); resp.StatusCode != 200 || !strings.Contains(readAll(t, resp), "Signed out") {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if code, _ := h.get(c, "/x", http.Header{"Accept": {"application/json"}}); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", code)
	}
}

// TestSessionTimeouts: the idle timeout and the absolute lifetime end a
// session.
func TestSessionTimeouts(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	h.clock.Advance(59 * time.Minute)
	if code, _ := h.get(c, "/x", nil); code != 200 {
		t.Fatalf("within idle timeout: %d", code)
	}
	h.clock.Advance(61 * time.Minute)
	if code, _ := h.get(c, "/x", nil); code != http.StatusUnauthorized {
		t.Errorf("after idle timeout: %d", code)
	}
}

// TestChooserWithSeveralIdPs: with two IdPs a browser is shown the
// chooser; the chosen IdP's response logs in, the other IdP's answer to
// that login does not.
func TestChooserWithSeveralIdPs(t *testing.T) {
	h := newHarness(t, options{partner: true})
	c := h.browser()
	code, page := h.get(c, "/wiki", http.Header{"Accept": {"text/html"}})
	if code != http.StatusOK || !strings.Contains(page, "Partner Org") || !strings.Contains(page, ">corp<") {
		t.Fatalf("chooser: %d\n%s", code, page)
	}
	link := regexp.MustCompile(`href="([^"]*idp=partner[^"]*)"`).FindStringSubmatch(page)
	if link == nil {
		t.Fatalf("no partner link in:\n%s", page)
	}
	loginURL := h.base + strings.ReplaceAll(link[1], "&amp;", "&")
	start := func() (id, relay string) {
		req, _ := http.NewRequest(http.MethodGet, loginURL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if !strings.HasPrefix(loc.String(), partnerSSO) {
			t.Fatalf("chosen IdP: redirected to %s", loc)
		}
		raw, _ := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
		xmlReq, _ := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
		doc := etree.NewDocument()
		doc.ReadFromBytes(xmlReq)
		return doc.Root().SelectAttrValue("ID", ""), loc.Query().Get("RelayState")
	}

	// The corp IdP answering a login sent to the partner is refused.
	id, relay := start()
	resp := h.post(c, h.signedResponse(h.spec(alice, id)), relay)
	readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("corp answering a partner login: %d", resp.StatusCode)
	}

	id, relay = start()
	s := h.spec(alice, id)
	s.issuer = partnerEntityID
	r, a := respond(s)
	resp = h.post(c, serialize(assemble(r, sign(t, a, loadSigner(t, "other")))), relay)
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/wiki" {
		t.Fatalf("partner login: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	if n := h.count(`SELECT count(*) FROM gatehouse_identities WHERE idp = ?`, partnerEntityID); n != 1 {
		t.Errorf("partner identities = %d", n)
	}
}

// TestSPMetadata: the metadata names this SP and its POST-binding ACS.
func TestSPMetadata(t *testing.T) {
	h := newHarness(t, options{})
	code, body := h.get(h.browser(), "/.gatehouse/saml/metadata", nil)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatal(err)
	}
	if got := doc.Root().SelectAttrValue("entityID", ""); got != h.metadataURL() {
		t.Errorf("entityID = %q, want %q", got, h.metadataURL())
	}
	acs := doc.FindElement("//AssertionConsumerService[@Binding='urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST']")
	if acs == nil || acs.SelectAttrValue("Location", "") != h.acsURL() {
		t.Errorf("no HTTP-POST ACS at %s in:\n%s", h.acsURL(), body)
	}
}

// TestLogsCarryNoSecrets: after logins, requests and a refused replay,
// no log entry holds the session cookie, the login-binding token or any
// SAML XML.
func TestLogsCarryNoSecrets(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	id, relay := h.startLogin(c, "/")
	doc := h.signedResponse(h.spec(alice, id))
	readResp(t, h.post(c, doc, relay))
	h.get(c, "/x", nil)
	readAll(t, h.post(h.browser(), doc, relay)) // refused replay
	u, _ := url.Parse(h.base)
	secrets := []string{relay, "<saml", "samlp:", "SAMLResponse", base64.StdEncoding.EncodeToString(doc)[:40]}
	for _, ck := range c.Jar.Cookies(u) {
		secrets = append(secrets, ck.Value)
	}
	entries := h.logs.All()
	if len(entries) < 3 {
		t.Fatalf("only %d log entries; the check would prove nothing", len(entries))
	}
	for _, e := range entries {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log entry %q holds %q", e.Message, s)
			}
		}
	}
}

// TestLoginNeverReturnsUnderReservedPrefix: a return path under the
// reserved prefix falls back to "/".
func TestLoginNeverReturnsUnderReservedPrefix(t *testing.T) {
	h := newHarness(t, options{})
	c := h.browser()
	resp := h.login(c, "/.gatehouse/login?return=%2F.gatehouse%2Flogout", alice)
	readResp(t, resp)
	if resp.Request.URL.Path != "/" {
		t.Errorf("landed on %s, want /", resp.Request.URL.Path)
	}
}
