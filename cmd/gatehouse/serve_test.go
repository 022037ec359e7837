package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestShutdownDrains: a request in flight when the stop signal comes
// completes during the drain; afterwards nothing listens.
func TestShutdownDrains(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	started := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(700 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	cfg := strings.Replace(goodConfig, "upstream: http://127.0.0.1:9000", "upstream: "+slow.URL+"\nlisten: 127.0.0.1:0\nshutdown_timeout: 5s\npublic_paths: [/slow]", 1)
	f, err := loadConfig(writeConfig(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.prepare(func(k string) string {
		return map[string]string{"TEST_GATEHOUSE_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}[k]
	}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, f, zap.NewNop(), func(a string) { addr <- a }) }()
	base := "http://" + <-addr

	type result struct {
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/slow", nil)
		req.Host = "app.example.test" // base_url's host: any other is redirected there
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{body: string(b)}
	}()
	<-started
	stop() // what SIGTERM does through signal.NotifyContext
	r := <-inflight
	if r.err != nil || r.body != "finished" {
		t.Fatalf("the in-flight request during the drain: %q %v", r.body, r.err)
	}
	select {
	case err := <-done:
		if err != nil && err != context.Canceled {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after draining")
	}
	if _, err := http.Get(base + "/slow"); err == nil {
		t.Error("gatehouse still answers after shutdown")
	}
}
