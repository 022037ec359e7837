package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// BenchmarkAccessLog is the access log's cost per request: the ID, the
// recording writer and one JSON line (encoded, written to a discarding
// sink, as in production with a fast output).
func BenchmarkAccessLog(b *testing.B) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	p := &Proxy{access: zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zapcore.InfoLevel)).Named("access")}
	r := httptest.NewRequest(http.MethodGet, "/reports/q1?x=1", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")
	r = p.withClient(r)
	body := []byte("hello")
	b.ReportAllocs()
	for b.Loop() {
		info := &requestInfo{id: newRequestID(), start: time.Now(), upstream: time.Millisecond, proxied: true, userID: "0190c3b2-0000-7000-8000-000000000001", userName: "alice"}
		aw := &accessWriter{ResponseWriter: discardWriter{}}
		aw.WriteHeader(http.StatusOK)
		aw.Write(body)
		p.logAccess(aw, r, info, r.Method, r.URL.EscapedPath())
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// TestSafeRequestID: the IDs a trusted proxy may set.
func TestSafeRequestID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		safe bool
	}{
		{"lb-7f3a9c21", true},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{string(make([]byte, 0)), false},
		{"has space", false},
		{"tab\there", false},
		{"new\nline", false},
		{"del\x7f", false},
		{"é", false},
		{"a" + string(make([]byte, 128)), false},
	} {
		if got := safeRequestID(tc.id); got != tc.safe {
			t.Errorf("safeRequestID(%q) = %v, want %v", tc.id, got, tc.safe)
		}
	}
	long := make([]byte, 128)
	for i := range long {
		long[i] = 'a'
	}
	if !safeRequestID(string(long)) || safeRequestID(string(long)+"a") {
		t.Error("the bound is 128 bytes")
	}
}
