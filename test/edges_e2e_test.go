package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/proxy"
)

// rawExchange sends a raw HTTP/1.1 request (with the browser's cookies
// added after the request line's headers) and reads the answer.
func rawExchange(t *testing.T, h *harness, c *http.Client, head string) *http.Response {
	t.Helper()
	conn, br := rawOpen(t, h, c, head)
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%q: %v", head, err)
	}
	return resp
}

// rawOpen dials gatehouse and writes head, the browser's cookies and the
// blank line ending the header.
func rawOpen(t *testing.T, h *harness, c *http.Client, head string) (net.Conn, *bufio.Reader) {
	t.Helper()
	u, _ := url.Parse(h.base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(head, "$HOST", u.Host))
	if c != nil {
		for _, ck := range c.Jar.Cookies(u) {
			fmt.Fprintf(&b, "Cookie: %s=%s\r\n", ck.Name, ck.Value)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// TestHostPinnedToBaseURL: a request for another host (Host header,
// absolute-form URI) is redirected to base_url with its path and query,
// except the probes; the upstream's X-Forwarded-Host and -Proto come from
// base_url, and with preserve_host so does its Host.
func TestHostPinnedToBaseURL(t *testing.T) {
	h := newHarness(t, options{proxy: func(c *proxy.Config) { c.PreserveHost = true }})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	u, _ := url.Parse(h.base)
	for _, tc := range []struct{ name, head string }{
		{"OtherHostHeader", "GET /x?q=1 HTTP/1.1\r\nHost: evil.example\r\n"},
		{"OtherPortSameAddress", "GET /x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"},
		{"AbsoluteFormURI", "GET http://evil.example/x?q=1 HTTP/1.1\r\nHost: $HOST\r\n"},
		{"LocalhostForIP", "POST /x?q=1 HTTP/1.1\r\nHost: localhost:" + u.Port() + "\r\nContent-Length: 0\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.upstream.all())
			resp := rawExchange(t, h, c, tc.head)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != h.base+"/x?q=1" {
				t.Errorf("%d Location %q, want 308 to %s/x?q=1", resp.StatusCode, resp.Header.Get("Location"), h.base)
			}
			if len(h.upstream.all()) != before {
				t.Error("the request reached the upstream")
			}
		})
	}
	t.Run("ProbesExempt", func(t *testing.T) {
		resp := rawExchange(t, h, nil, "GET /.gatehouse/healthz HTTP/1.1\r\nHost: 10.0.0.7:8080\r\n")
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("healthz by pod address: %d", resp.StatusCode)
		}
	})
	t.Run("ForwardedHeadersFromBaseURL", func(t *testing.T) {
		resp := rawExchange(t, h, c, "GET /x HTTP/1.1\r\nHost: $HOST\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n"+
			"X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6;host=evil.example\r\nX-Real-IP: 6.6.6.6\r\nX-Original-URL: /admin\r\n"+
			"X_Rewrite_URL: /admin\r\nRemote-User: admin\r\nX-HTTP-Method-Override: DELETE\r\nX-Forwarded-Port: 443\r\n")
		readResp(t, resp)
		up := h.upstream.last(t)
		if got := up.Header.Get("X-Forwarded-Host"); got != u.Host {
			t.Errorf("X-Forwarded-Host %q, want %q", got, u.Host)
		}
		if got := up.Header.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto %q", got)
		}
		if got := up.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want the connection's address only", got)
		}
		if up.Host != u.Host {
			t.Errorf("preserve_host sent Host %q, want base_url's %q", up.Host, u.Host)
		}
		for name := range up.Header {
			for _, bad := range []string{"Forwarded", "X-Real-IP", "X-Original-URL", "X-Rewrite-URL", "Remote-User", "X-HTTP-Method-Override", "X-Forwarded-Port"} {
				if proxy.NormalizeHeaderName(name) == proxy.NormalizeHeaderName(bad) {
					t.Errorf("%s reached the upstream", name)
				}
			}
		}
	})
}

// TestTrustedProxiesBuildForwardedFor: behind a trusted proxy the chain
// is kept from the right-most untrusted address on; addresses the client
// wrote itself are dropped.
func TestTrustedProxiesBuildForwardedFor(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/pub/"}, proxy: func(c *proxy.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} }})
	resp := rawExchange(t, h, nil, "GET /pub/x HTTP/1.1\r\nHost: $HOST\r\nX-Forwarded-For: 6.6.6.6, 127.0.0.9\r\nX-Forwarded-For: 198.51.100.9\r\n")
	readResp(t, resp)
	if got := h.upstream.last(t).Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "198.51.100.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", got)
	}
}

// TestRateLimitOnSAMLAndLoginStarts: a client that starts too many logins
// or sends too many SAML messages gets 429 with Retry-After; signed-in
// proxied requests are not limited; the bucket refills.
func TestRateLimitOnSAMLAndLoginStarts(t *testing.T) {
	h := newHarness(t, options{proxy: func(c *proxy.Config) {
		c.RateLimit = proxy.RateLimitConfig{PerMinute: 2, Burst: 4, MaxClients: 100}
	}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice)) // two tokens: the login start and the ACS
	html := http.Header{"Accept": {"text/html"}}
	anon := h.browser()
	for i := range 2 {
		if code, _ := h.get(anon, "/x", html); code != http.StatusFound {
			t.Fatalf("login start %d: %d", i, code)
		}
	}
	for _, path := range []string{"/x", "/.gatehouse/login", "/.gatehouse/saml/metadata", "/.gatehouse/saml/acs", "/.gatehouse/saml/slo"} {
		req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := anon.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d Retry-After %q, want 429 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if code, _ := h.get(c, "/x", nil); code != http.StatusOK {
		t.Errorf("a signed-in proxied request: %d", code)
	}
	if code, _ := h.get(c, "/.gatehouse/healthz", nil); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	h.clock.Advance(time.Minute)
	if code, _ := h.get(anon, "/x", html); code != http.StatusFound {
		t.Errorf("after a minute: %d", code)
	}
}

// wsUpstream makes the harness's upstream answer /ws with a 101 and echo
// lines, and answer /sneaky with a 101 nobody asked for.
func wsUpstream(h *harness) {
	h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", r.Header.Get("Upgrade"))
			brw.Flush()
			for {
				line, err := brw.ReadString('\n')
				if err != nil {
					return
				}
				brw.WriteString("echo " + line)
				brw.Flush()
			}
		case "/sneaky":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
			brw.Flush()
			io.Copy(io.Discard, brw)
		default:
			fmt.Fprintf(w, "user=%s", r.Header.Get("X-Forwarded-User"))
		}
	}
}

// TestUpgradeAllowlist: only allowlisted protocols are upgraded to; h2c
// never (an h2c tunnel carries requests gatehouse does not see); CONNECT
// is refused; an upstream cannot open a tunnel by itself.
func TestUpgradeAllowlist(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/pub/"}})
	wsUpstream(h)
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	for _, tc := range []struct {
		name, head string
		want       int
	}{
		{"H2CSmuggling", "GET /ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n", 400},
		{"H2CUpperCase", "GET /ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: H2C\r\nConnection: Upgrade\r\n", 400},
		{"H2CAfterWebSocket", "GET /ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n", 400},
		{"H2CSecondLine", "GET /ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: websocket\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n", 400},
		{"H2COnPublicPath", "GET /pub/ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n", 400},
		{"UnlistedProtocol", "GET /ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n", 400},
		{"Connect", "CONNECT $HOST HTTP/1.1\r\nHost: $HOST\r\n", 405},
		{"UnaskedSwitch", "GET /sneaky HTTP/1.1\r\nHost: $HOST\r\n", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.upstream.all())
			resp := rawExchange(t, h, c, tc.head)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want != 502 && len(h.upstream.all()) != before {
				t.Error("the request reached the upstream")
			}
		})
	}
	t.Run("WebSocket", func(t *testing.T) {
		conn, br := openTunnel(t, h, c)
		echo(t, conn, br)
	})
}

// openTunnel upgrades /ws to a WebSocket through gatehouse.
func openTunnel(t *testing.T, h *harness, c *http.Client) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, br := rawOpen(t, h, c, "GET /ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return conn, br
}

func echo(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	fmt.Fprint(conn, "hello\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || line != "echo hello\n" {
		t.Fatalf("through the tunnel: %q %v", line, err)
	}
}

// closedSoon reports whether gatehouse closes the tunnel within a few
// seconds.
func closedSoon(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "still there?\n")
	for {
		line, err := br.ReadString('\n')
		if err == nil {
			if line == "echo still there?\n" {
				continue // sent before the close
			}
			t.Fatalf("unexpected %q", line)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the tunnel is still open")
		}
		return
	}
}

// TestTunnelClosedWhenSessionEnds: an upgraded connection ends with its
// session (logout), its user (deactivated over SCIM) or its maximum
// lifetime.
func TestTunnelClosedWhenSessionEnds(t *testing.T) {
	t.Run("Logout", func(t *testing.T) {
		h := newHarness(t, options{})
		wsUpstream(h)
		c := h.browser()
		readResp(t, h.login(c, "/", alice))
		conn, br := openTunnel(t, h, c)
		echo(t, conn, br)
		req, _ := http.NewRequest(http.MethodPost, h.base+"/.gatehouse/logout", nil)
		req.Header.Set("Origin", h.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		closedSoon(t, conn, br)
	})
	t.Run("UserDeactivated", func(t *testing.T) {
		h := newHarness(t, options{scim: true})
		wsUpstream(h)
		c := h.browser()
		readResp(t, h.login(c, "/", alice))
		conn, br := openTunnel(t, h, c)
		echo(t, conn, br)
		_, doc := h.scimDo("GET", `/Users?filter=userName%20eq%20%22alice%22`, "")
		res, _ := doc["Resources"].([]any)
		if len(res) != 1 {
			t.Fatalf("alice over SCIM: %v", doc)
		}
		id := res[0].(map[string]any)["id"].(string)
		patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`
		if code, doc := h.scimDo("PATCH", "/Users/"+id, patch); code != 200 {
			t.Fatalf("deactivate: %d %v", code, doc)
		}
		closedSoon(t, conn, br)
	})
	t.Run("MaxLifetime", func(t *testing.T) {
		h := newHarness(t, options{proxy: func(c *proxy.Config) { c.UpgradeMaxLifetime = time.Hour }})
		wsUpstream(h)
		c := h.browser()
		readResp(t, h.login(c, "/", alice))
		conn, br := openTunnel(t, h, c)
		livesAnHour(t, h, conn, br)
	})
}

// livesAnHour: the tunnel carries bytes for 59 minutes of the harness's
// clock, and is closed once an hour has passed.
func livesAnHour(t *testing.T, h *harness, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	echo(t, conn, br)
	h.clock.Advance(59 * time.Minute)
	time.Sleep(200 * time.Millisecond) // several checks
	echo(t, conn, br)
	h.clock.Advance(2 * time.Minute)
	closedSoon(t, conn, br)
}

// TestSlowBodyBounded: a body trickled to an endpoint of gatehouse is cut
// at endpoint_body_timeout; a proxied upload may take long while it keeps
// arriving, and is cut after proxied_body_idle_timeout of silence.
func TestSlowBodyBounded(t *testing.T) {
	h := newHarness(t, options{proxy: func(c *proxy.Config) {
		c.EndpointBodyTimeout, c.ProxiedBodyIdleTimeout = time.Second, time.Second
	}})
	var got atomic.Int64
	h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		fmt.Fprintf(w, "%d", n)
	}
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	trickle := func(conn net.Conn, n int, every time.Duration) {
		for range n {
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
			time.Sleep(every)
		}
	}
	t.Run("ACS", func(t *testing.T) {
		conn, br := rawOpen(t, h, nil, "POST /.gatehouse/saml/acs HTTP/1.1\r\nHost: $HOST\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n")
		defer conn.Close()
		start := time.Now()
		go trickle(conn, 1000, 300*time.Millisecond)
		conn.SetReadDeadline(time.Now().Add(8 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the ACS still waits for the body after 8s")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the connection was held %v", d)
		}
	})
	t.Run("SlowButSteadyUpload", func(t *testing.T) {
		conn, br := rawOpen(t, h, c, "POST /upload HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 8\r\n")
		defer conn.Close()
		go trickle(conn, 8, 300*time.Millisecond) // 2.4s in all, never a second apart
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != 200 || body != "8" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("StalledUpload", func(t *testing.T) {
		conn, br := rawOpen(t, h, c, "POST /upload HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 8\r\n")
		defer conn.Close()
		conn.Write([]byte("abc"))
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(8 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("gatehouse still waits for the stalled body after 8s")
		}
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d after %v, want 408", resp.StatusCode, time.Since(start))
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("held %v", d)
		}
	})
}

// flakyStore is a store that can be taken down.
type flakyStore struct {
	provision.Store
	down atomic.Bool
}

func (s *flakyStore) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	if s.down.Load() {
		return provision.Result{}, errDown
	}
	return s.Store.Provision(ctx, l)
}

func (s *flakyStore) User(ctx context.Context, id string) (provision.User, error) {
	if s.down.Load() {
		return provision.User{}, errDown
	}
	return s.Store.User(ctx, id)
}

// TestContinueOnStoreErrorAdmitsOnlyKnownActiveUsers: during an outage
// continue_on_store_error admits a user this instance has seen active, as
// their stored record says; never an unknown user, never one deactivated
// since.
func TestContinueOnStoreErrorAdmitsOnlyKnownActiveUsers(t *testing.T) {
	st, err := sqldir.Open(context.Background(), sqldir.Config{Path: filepath.Join(t.TempDir(), "g.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &flakyStore{Store: st}
	h := newHarness(t, options{store: fs, continueOnStoreError: true})
	bob := person{nameID: "b0b-0001", uid: "bob", mail: "bob@example.com", groups: []string{"staff"}}
	carol := person{nameID: "c4r0l-0001", uid: "carol", mail: "carol@example.com"}
	readResp(t, h.login(h.browser(), "/", alice))
	aliceName := h.upstream.last(t).Header.Get("X-Forwarded-User")
	readResp(t, h.login(h.browser(), "/", carol))
	fs.down.Store(true)

	t.Run("UnknownUserRefused", func(t *testing.T) {
		before := len(h.upstream.all())
		resp := h.login(h.browser(), "/", bob)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || len(h.upstream.all()) != before {
			t.Errorf("a user never seen got %d", resp.StatusCode)
		}
	})
	t.Run("KnownUserAdmittedAsStored", func(t *testing.T) {
		renamed := alice
		renamed.uid, renamed.groups = "bob", []string{"admins", "root"} // the assertion cannot rename or promote
		readResp(t, h.login(h.browser(), "/", renamed))
		up := h.upstream.last(t).Header
		if up.Get("X-Forwarded-User") != aliceName || up.Get("X-Forwarded-Groups") != "admins,staff" {
			t.Errorf("headers %v, want the stored record's", up)
		}
	})
	t.Run("DeactivatedUserRefused", func(t *testing.T) {
		fs.down.Store(false)
		// Deactivate in the store as SCIM does, and tell the proxy as SCIM does.
		p, err := st.FindUsers(context.Background(), provision.Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range p.Items {
			if u.UserName == "carol" {
				if err := st.SetActive(context.Background(), u.ID, false); err != nil {
					t.Fatal(err)
				}
				h.proxy.Forget(u.ID)
			}
		}
		fs.down.Store(true)
		resp := h.login(h.browser(), "/", carol)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("a deactivated user got in during the outage")
		}
	})
}

// TestSessionCookieResponsesArePrivate: when gatehouse re-seals its
// cookie on a proxied response, shared caches may not store it.
func TestSessionCookieResponsesArePrivate(t *testing.T) {
	h := newHarness(t, options{})
	h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Surrogate-Control", "max-age=600")
		io.WriteString(w, "page")
	}
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	h.clock.Advance(2 * time.Minute) // Touch re-seals the cookie
	resp, err := c.Get(h.base + "/page")
	if err != nil {
		t.Fatal(err)
	}
	readResp(t, resp)
	if resp.Header.Get("Set-Cookie") == "" {
		t.Fatal("no cookie was set; the test does not test")
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=600, private" || resp.Header.Get("Surrogate-Control") != "" {
		t.Errorf("Cache-Control %q Surrogate-Control %q", cc, resp.Header.Get("Surrogate-Control"))
	}
	resp, err = c.Get(h.base + "/page")
	if err != nil {
		t.Fatal(err)
	}
	readResp(t, resp)
	if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Cache-Control") != "public, max-age=600" {
		t.Errorf("without a cookie the upstream's caching is kept: %v", resp.Header)
	}
}
