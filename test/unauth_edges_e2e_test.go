package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
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
