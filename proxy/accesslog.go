package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The access log is one line per request, written by the logger named
// "access" when the request ends: for an upgraded connection (a
// WebSocket), when the tunnel closes, with status 101, the tunnel's
// lifetime as its duration and the bytes sent to the client through it.
// It names the path without the query (a query can carry a SAMLResponse,
// a SAMLRequest or a token) and never a body, a cookie or a header value
// other than the host and the user agent. Every client-controlled value
// is bounded and made safe for a log line (see logSafe).

// requestInfo is what gatehouse knows about a request for its access log,
// its error pages and its outbound headers; one per request, in its
// context (one allocation and one context for all of it).
type requestInfo struct {
	id string
	// idValue is id as a header value, shared by the response and the
	// outbound request: its capacity is its length, so an append copies.
	idValue [1]string
	// client is the request's client (see deriveClient), when hasClient.
	client    clientAddr
	hasClient bool
	// identity is the signed-in user's, once the request is to be
	// proxied as them (nil: anonymous, or not yet known).
	identity *identity
	start    time.Time
	upstream time.Duration // time for the upstream's answer (headers), when proxied
	proxied  bool
	userID   string // the signed-in or just-provisioned user, if any
	userName string
	// canonical is the escaped canonical path the rules judged and the
	// upstream got, when it differs from the path as received.
	canonical string
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(requestIDKey{}).(*requestInfo)
	return i
}

// setUser records the user a request acts as, for the access log.
func setUser(ctx context.Context, id, name string) {
	if i := requestInfoFrom(ctx); i != nil {
		i.userID, i.userName = id, name
	}
}

// maxLoggedPath bounds the path an access-log line carries; longer paths
// are refused with 414 anyway (max_path_length's default is 2048).
const maxLoggedPath = 2048

// maxLoggedAgent bounds the user agent an access-log line carries.
const maxLoggedAgent = 256

// maxLoggedProto bounds the protocol ("HTTP/1.1") an access-log line
// carries; net/http refuses any but HTTP/x.y, so this is belt and braces.
const maxLoggedProto = 16

// accessWriter records what the answer to a request was.
type accessWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	tunnel *countingConn // set when the connection was hijacked (an upgrade)
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushes).
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes over the connection of an upgrade (ReverseProxy asks
// through http.ResponseController) and counts the bytes the tunnel sends
// to the client.
func (w *accessWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	w.status = http.StatusSwitchingProtocols
	w.tunnel = &countingConn{Conn: conn}
	return w.tunnel, brw, nil
}

// countingConn counts the bytes written to a hijacked connection; the
// tunnel's two copies run in their own goroutines.
type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// timedTransport measures the upstream's time to answer (until its
// response headers arrive) for the access log.
type timedTransport struct{ next http.RoundTripper }

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.next.RoundTrip(r)
	if i := requestInfoFrom(r.Context()); i != nil {
		i.upstream += time.Since(start)
		i.proxied = true
	}
	return res, err
}

// accessFields lends logAccess the fields of a line: passed to the
// logger's core, an array of its own would be allocated per request.
var accessFields = sync.Pool{New: func() any { return new([15]zap.Field) }}

// clientIPText is ClientIP(ctx) as text ("invalid IP" when unknown, as
// netip.Addr prints it).
func clientIPText(ctx context.Context) string {
	if c := clientFrom(ctx); c != nil && c.ipText != "" {
		return c.ipText
	}
	return ClientIP(ctx).String()
}

// logAccess writes the access-log line of a request that has ended.
// method and path are as the request arrived (before any rewriting).
func (p *Proxy) logAccess(w *accessWriter, r *http.Request, info *requestInfo, method, path string) {
	ce := p.access.Check(zapcore.InfoLevel, "request")
	if ce == nil {
		return
	}
	status, bytes := w.status, w.bytes
	if status == 0 {
		status = http.StatusOK // net/http answers 200 for a handler that wrote nothing
	}
	if w.tunnel != nil {
		bytes += w.tunnel.written.Load()
	}
	fp := accessFields.Get().(*[15]zap.Field)
	defer func() {
		*fp = [15]zap.Field{} // keep no request's strings alive
		accessFields.Put(fp)
	}()
	fields := fp
	*fields = [15]zap.Field{
		zap.String("request_id", info.id),
		logString("method", method),
		zap.String("path", logSafe(path, maxLoggedPath)),
		zap.Int("status", status),
		zap.Int64("bytes", bytes),
		zap.Duration("duration", time.Since(info.start)),
		zap.String("client_ip", clientIPText(r.Context())),
		logString("host", r.Host),
		zap.String("proto", logSafe(r.Proto, maxLoggedProto)),
		zap.String("user_agent", logSafe(r.UserAgent(), maxLoggedAgent)),
	}
	n := 10
	if info.canonical != "" {
		fields[n] = zap.String("canonical_path", logSafe(info.canonical, maxLoggedPath))
		n++
	}
	if info.proxied {
		fields[n] = zap.Duration("upstream_duration", info.upstream)
		n++
	}
	if info.userID != "" {
		fields[n] = zap.String("user", logSafe(info.userName, maxLoggedField))
		fields[n+1] = zap.String("user_id", info.userID)
		n += 2
	}
	if w.tunnel != nil {
		fields[n] = zap.Bool("upgraded", true)
		n++
	}
	ce.Write(fields[:n]...)
}
