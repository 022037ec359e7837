package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines are the JSON log lines so far.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		out = append(out, m)
	}
	return out
}

// TestLogStreamsIgnoreLevel: log.level warn (or error) silences info
// lines but never the audit events or the access log, which go to the
// same output in the same encoding.
func TestLogStreamsIgnoreLevel(t *testing.T) {
	for _, level := range []string{"warn", "error"} {
		t.Run(level, func(t *testing.T) {
			var buf lockedBuffer
			logger, err := newLogger(LogConfig{Format: "json", Level: level}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			logger.Info("chatter")
			logger.Named("proxy").Info("proxied")
			logger.Named("audit").Info("login")
			logger.Named("access").Info("request")
			logger.Named("audit").Debug("debug audit")
			logger.Named("auditor").Info("a logger merely named alike")
			logger.Named("scim").Error("failed")
			logger.Sync() // the buffered access line
			var got []string
			for _, l := range buf.lines(t) {
				got = append(got, l["logger"].(string)+":"+l["msg"].(string))
			}
			// The access line comes last: it is buffered (TestAccessLogBuffered).
			if want := "audit:login scim:failed access:request"; strings.Join(got, " ") != want {
				t.Errorf("written %q, want %q", got, want)
			}
		})
	}
}

// TestAccessLogBuffered: access lines are held and written together,
// within log.access_flush_interval or at Sync (serve syncs as it stops);
// audit events and every other line are written at once; an interval of
// 0 writes each access line at once.
func TestAccessLogBuffered(t *testing.T) {
	d := 300 * time.Millisecond
	var buf lockedBuffer
	logger, err := newLogger(LogConfig{Format: "json", Level: "info", AccessFlushInterval: &d}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	count := func(name string) int {
		n := 0
		for _, l := range buf.lines(t) {
			if l["logger"] == name {
				n++
			}
		}
		return n
	}
	for range 3 {
		logger.Named("access").Info("request")
	}
	logger.Named("audit").Info("login")
	logger.Info("chatter")
	if a, au, all := count("access"), count("audit"), len(buf.lines(t)); a != 0 || au != 1 || all != 2 {
		t.Fatalf("before the flush: %d access, %d audit, %d lines in all; want 0, 1, 2", a, au, all)
	}
	deadline := time.Now().Add(5 * time.Second)
	for count("access") < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := count("access"); n != 3 {
		t.Fatalf("%d access lines after the interval, want 3", n)
	}
	logger.Named("access").Info("request")
	logger.Sync()
	if n := count("access"); n != 4 {
		t.Fatalf("%d access lines after Sync, want 4", n)
	}

	var now lockedBuffer
	zero := time.Duration(0)
	unbuffered, err := newLogger(LogConfig{Format: "json", Level: "info", AccessFlushInterval: &zero}, &now)
	if err != nil {
		t.Fatal(err)
	}
	unbuffered.Named("access").Info("request")
	if n := len(now.lines(t)); n != 1 {
		t.Fatalf("access_flush_interval 0: %d lines written at once, want 1", n)
	}
}

// TestAccessLogSwitch: serve writes one access-log line per request by
// default, even at log.level warn, and none with log.access: false.
func TestAccessLogSwitch(t *testing.T) {
	for _, tc := range []struct {
		name, log string
		want      int
	}{
		{"default", "log:\n  level: warn\n", 1},
		{"off", "log:\n  level: warn\n  access: false\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(goodConfig, "upstream: http://127.0.0.1:9000", "upstream: http://127.0.0.1:9000\nlisten: 127.0.0.1:0\n"+tc.log, 1)
			var buf lockedBuffer
			addr, stop := startServing(t, cfg, nil, &buf)
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/.gatehouse/healthz?token=secret", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			stop()
			var access []map[string]any
			for _, l := range buf.lines(t) {
				if l["logger"] == "access" {
					access = append(access, l)
				}
			}
			if len(access) != tc.want {
				t.Fatalf("%d access lines, want %d: %v", len(access), tc.want, access)
			}
			if tc.want == 1 {
				l := access[0]
				if l["path"] != "/.gatehouse/healthz" || l["status"] != float64(200) || l["request_id"] != resp.Header.Get("X-Request-Id") ||
					l["level"] != "info" {
					t.Errorf("access line %v", l)
				}
			}
		})
	}
}

// testKey is a cookie key for the configs these tests serve.
const testKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// startServing serves the config text cfg (TEST_GATEHOUSE_KEY and env
// resolve its references), logging as its log section says to out (nil:
// nowhere), until the returned stop is called or the test ends; it
// returns the address serve bound.
func startServing(t *testing.T, cfg string, env map[string]string, out io.Writer) (addr string, stop func()) {
	t.Helper()
	f, err := loadConfig(writeConfig(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prepare(func(k string) string {
		if k == "TEST_GATEHOUSE_KEY" {
			return testKey
		}
		return env[k]
	}); err != nil {
		t.Fatal(err)
	}
	if out == nil {
		out = io.Discard
	}
	logger, err := newLogger(f.Log, out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(ctx, f, logger, func(a string) { up <- a }) }()
	select {
	case addr = <-up:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return addr, stop
}
