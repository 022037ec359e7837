package proxy

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The gate's benchmarks time ServeHTTP itself, in one process and without
// a network: the upstream is a transport that answers at once, so what
// they measure is gatehouse's own work on a request (session, identity,
// headers, request ID, access log) beside a bare ReverseProxy's over the
// same transport. test/bench_test.go measures the same over real
// connections with wrk.

// benchUpstream answers every request with a fixed 1 KiB page.
type benchUpstream struct{}

var benchPage = bytes.Repeat([]byte("x"), 1024)

func (benchUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, ContentLength: int64(len(benchPage)),
		Body: io.NopCloser(bytes.NewReader(benchPage)), Request: r}, nil
}

// benchWriter is a ResponseWriter that keeps nothing: its header map is
// emptied for each request.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status = 0
}

// benchRequest is a browser's GET of /page with the given cookie and a
// spoofed identity header.
func benchRequest(c *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, gateBase+"/page", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("X-Forwarded-User", "spoofed")
	if c != nil {
		r.AddCookie(c)
		r.Header.Set("Cookie", r.Header.Get("Cookie")+"; theme=dark")
	}
	return r
}

func serveBench(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != http.StatusOK {
		b.Fatalf("status %d, want the upstream's 200 (%v)", w.status, w.h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, n := processCPU(), 0
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
		n++
	}
	// CPU time, collection included, is what other processes on a busy
	// machine disturb least.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(n), "cpu-ns/op")
	if w.status != http.StatusOK {
		b.Fatalf("status %d, want the upstream's 200", w.status)
	}
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// accessLogger is the access log as cmd builds it (JSON lines at info),
// written nowhere.
func accessLogger() *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.Lock(zapcore.AddSync(io.Discard)), zap.InfoLevel)).Named("access")
}

// BenchmarkGate: an authenticated GET through the whole gate against a
// bare, tuned ReverseProxy over the same instant upstream. The difference
// in ns/op and allocs/op is what gatehouse adds to a request.
//
//   - Bare: httputil.ReverseProxy with Rewrite and SetXForwarded.
//   - Fresh: a session whose cookie is current (nothing re-sealed).
//   - Stale: a session last seen beyond the refresh step, from a client
//     that never stores the refreshed cookie, so every request finds it
//     stale again.
//   - FreshAccessLog: Fresh with the access log on, as by default.
func BenchmarkGate(b *testing.B) {
	target, _ := url.Parse(gateUpstream)
	b.Run("Bare", func(b *testing.B) {
		bare := &httputil.ReverseProxy{
			Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
			Transport:  benchUpstream{},
			BufferPool: bufferPool{},
			ErrorLog:   log.New(io.Discard, "", 0),
		}
		serveBench(b, bare, benchRequest(nil))
	})
	b.Run("Fresh", func(b *testing.B) {
		g := newGateOver(b, benchUpstream{}, nil, alice())
		serveBench(b, g.p, benchRequest(g.cookie("u-alice")))
	})
	b.Run("Stale", func(b *testing.B) {
		g := newGateOver(b, benchUpstream{}, nil, alice())
		c := g.cookie("u-alice")
		g.clock.advance(2 * time.Minute)
		serveBench(b, g.p, benchRequest(c))
	})
	b.Run("FreshAccessLog", func(b *testing.B) {
		g := newGateOver(b, benchUpstream{}, nil, alice())
		g.p.access = accessLogger()
		serveBench(b, g.p, benchRequest(g.cookie("u-alice")))
	})
}
