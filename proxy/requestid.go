package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
	"strings"
	"time"
)

// requestIDKey keys a request's requestInfo (its ID, and what its access
// log line needs) in its context.
type requestIDKey struct{}

// RequestIDHeader carries the request ID: to the upstream (the client's
// own copy is stripped first, unless it comes through trusted_proxies),
// and on every response.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds a request ID taken from a trusted proxy.
const maxRequestIDLen = 128

// RequestID is the ID gatehouse gave the request in ctx (the one passed
// to the upstream, written in the access log and shown on error pages);
// empty outside a request.
func RequestID(ctx context.Context) string {
	if i := requestInfoFrom(ctx); i != nil {
		return i.id
	}
	return ""
}

// withRequestID returns ctx carrying id.
func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, &requestInfo{id: id, start: time.Now()})
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRequestID is 80 random bits in 16 base32 characters: short enough to
// read over the telephone, unique enough never to repeat.
func newRequestID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// requestIDOf is the ID of r: the X-Request-Id a trusted proxy (the
// connection's peer is in trusted_proxies) sent, when it is one short
// token of safe characters (safeRequestID); otherwise a new one. A
// client's own value is never taken: it would let anyone write what the
// logs and the upstream attribute to gatehouse. (A trusted proxy that
// passes its client's X-Request-Id through makes the ID the client's
// choice all the same: an ID is for correlation, never for trust.)
func (p *Proxy) requestIDOf(r *http.Request) string {
	vs := r.Header.Values(RequestIDHeader)
	if len(vs) != 1 || len(p.trusted) == 0 || !safeRequestID(vs[0]) {
		return newRequestID()
	}
	peer, ok := parseForwardedAddr(r.RemoteAddr)
	if !ok || !isTrusted(peer, p.trusted) {
		return newRequestID()
	}
	return vs[0]
}

// safeRequestID: 1 to 128 bytes of [A-Za-z0-9._:@/+=-], enough for UUIDs,
// load balancers' and cloud trace IDs (AWS X-Amzn-Trace-Id "Root=1-...",
// GCP "trace/span") and base64, and nothing that HTML, a header, a log
// line or a shell could read as markup, a separator or a quote.
func safeRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !requestIDChar(s[i]) {
			return false
		}
	}
	return true
}

func requestIDChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._:@/+=-", c) >= 0
}
