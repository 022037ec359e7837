package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse/proxy"
)

// answerBeforeBody reads gatehouse's answer to a request whose body it
// announced but has sent only in part, within 20 seconds (far less than
// the body timeouts the test sets).
func answerBeforeBody(t *testing.T, conn net.Conn, br *bufio.Reader) *http.Response {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("no answer until the body arrives")
	}
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestRefusalWithUnreadBodyClosesConnection: a request refused before
// its body is read (an ACS post without a login-state cookie, SCIM
// without a token, an unauthenticated upload) is answered at once with
// Connection: close, instead of after draining a body nobody will read.
func TestRefusalWithUnreadBodyClosesConnection(t *testing.T) {
	h := newHarness(t, options{scim: true, proxy: func(c *proxy.Config) {
		c.EndpointBodyTimeout, c.ProxiedBodyIdleTimeout = time.Minute, time.Minute
	}})
	for _, tc := range []struct{ name, head string }{
		{"ACSWithoutLoginCookie", "POST /.gatehouse/saml/acs HTTP/1.1\r\nHost: $HOST\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n"},
		{"SCIMWithoutToken", "POST /.gatehouse/scim/v2/Users HTTP/1.1\r\nHost: $HOST\r\nContent-Type: application/scim+json\r\nContent-Length: 100000\r\n"},
		{"SCIMWrongToken", "POST /.gatehouse/scim/v2/Users HTTP/1.1\r\nHost: $HOST\r\nAuthorization: Bearer nope\r\nContent-Type: application/scim+json\r\nContent-Length: 100000\r\n"},
		{"ChunkedACS", "POST /.gatehouse/saml/acs HTTP/1.1\r\nHost: $HOST\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"},
		{"UnauthenticatedUpload", "POST /upload HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 100000\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, br := rawOpen(t, h, nil, tc.head)
			defer conn.Close()
			fmt.Fprint(conn, "SAMLResponse=")
			resp := answerBeforeBody(t, conn, br)
			if resp.StatusCode < 400 {
				t.Errorf("status %d", resp.StatusCode)
			}
			if !resp.Close { // set by Connection: close
				t.Error("no Connection: close: the unread body would be drained")
			}
		})
	}
	t.Run("ReadBodyKeepsConnection", func(t *testing.T) {
		h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d", n)
		}
		c := h.browser()
		readResp(t, h.login(c, "/", alice))
		conn, br := rawOpen(t, h, c, "POST /upload HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 5\r\n")
		defer conn.Close()
		fmt.Fprint(conn, "hello")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if body := readResp(t, resp); body != "5" || resp.Close {
			t.Errorf("%q close=%v: a body read to its end keeps the connection", body, resp.Close)
		}
	})
}

// TestPublicBodyHasTotalDeadline: a body sent without a session (a
// public path) to the upstream must arrive whole within
// public_body_timeout, however steadily it trickles; a signed-in
// upload keeps only the idle timeout.
func TestPublicBodyHasTotalDeadline(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/pub/"}, proxy: func(c *proxy.Config) {
		c.PublicBodyTimeout, c.ProxiedBodyIdleTimeout = 2*time.Second, time.Minute
	}})
	h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	}
	trickle := func(conn net.Conn, n int) {
		for range n {
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Run("PublicTrickle", func(t *testing.T) {
		conn, br := rawOpen(t, h, nil, "POST /pub/upload HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 1000\r\n")
		defer conn.Close()
		go trickle(conn, 1000)
		resp := answerBeforeBody(t, conn, br)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
	})
	t.Run("SignedInTrickle", func(t *testing.T) {
		c := h.browser()
		readResp(t, h.login(c, "/", alice))
		conn, br := rawOpen(t, h, c, "POST /upload HTTP/1.1\r\nHost: $HOST\r\nContent-Length: 12\r\n")
		defer conn.Close()
		go trickle(conn, 12) // 3s: past public_body_timeout, never idle
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != 200 || body != "12" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
	})
}

// TestPublicTunnelLifetime: a WebSocket opened on a public path (no
// session to end it) is closed after public_upgrade_max_lifetime.
func TestPublicTunnelLifetime(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/pub/"}, proxy: func(c *proxy.Config) {
		c.PublicUpgradeMaxLifetime = time.Hour
	}})
	wsUpstream(h)
	h.upstream.handler = func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/pub")
			next(w, r)
		}
	}(h.upstream.handler)
	conn, br := rawOpen(t, h, nil, "GET /pub/ws HTTP/1.1\r\nHost: $HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	livesAnHour(t, h, conn, br)
}

// TestPublicRequestsCappedPerClient: one client address may have at
// most public_max_concurrent requests without a session at the upstream
// at once; one more waits, then gets 429. Signed-in requests do not
// count, and a freed place is taken again.
func TestPublicRequestsCappedPerClient(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/pub/"}, proxy: func(c *proxy.Config) {
		c.PublicMaxConcurrent = 3
	}})
	hold := make(chan struct{})
	held := make(chan struct{}, 10)
	h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pub/hold" {
			held <- struct{}{}
			<-hold
		}
		fmt.Fprint(w, "ok")
	}
	var conns []net.Conn
	for range 3 {
		conn, _ := rawOpen(t, h, nil, "GET /pub/hold HTTP/1.1\r\nHost: $HOST\r\n")
		defer conn.Close()
		conns = append(conns, conn)
		select {
		case <-held:
		case <-time.After(10 * time.Second):
			t.Fatal("a held request did not reach the upstream")
		}
	}
	resp := rawExchange(t, h, nil, "GET /pub/quick HTTP/1.1\r\nHost: $HOST\r\n")
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a fourth request: %d, want 429 with Retry-After", resp.StatusCode)
	}
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	if code, body := h.get(c, "/app", nil); code != 200 {
		t.Errorf("a signed-in request was refused: %d %s", code, body)
	}
	close(hold)
	for _, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
			t.Fatal(err)
		}
	}
	readResp(t, rawExchange(t, h, nil, "GET /pub/quick HTTP/1.1\r\nHost: $HOST\r\n"))
}

// TestEndpointBodyDeadlineWithToken: a SCIM client with its token, whose
// body is read, still has endpoint_body_timeout for the whole of it (the
// answer-before-body path does not lift the deadline).
func TestEndpointBodyDeadlineWithToken(t *testing.T) {
	h := newHarness(t, options{scim: true, proxy: func(c *proxy.Config) { c.EndpointBodyTimeout = time.Second }})
	conn, br := rawOpen(t, h, nil, "POST /.gatehouse/scim/v2/Users HTTP/1.1\r\nHost: $HOST\r\nAuthorization: Bearer "+scimToken+
		"\r\nContent-Type: application/scim+json\r\nContent-Length: 1000\r\n")
	defer conn.Close()
	go func() {
		for range 1000 {
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	resp := answerBeforeBody(t, conn, br)
	if resp.StatusCode < 400 || !resp.Close {
		t.Errorf("status %d close=%v, want a refusal that closes", resp.StatusCode, resp.Close)
	}
}
