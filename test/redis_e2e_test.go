package test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse/session"
	"gatehouse/test/redistest"
)

// replicaState is one replica's connection to the shared Redis.
func replicaState(t *testing.T, addr string) *session.RedisState {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	st := session.NewRedisState(rdb, "gatehouse-test:", 12*time.Hour, zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go st.Run(ctx)
	select {
	case <-st.Subscribed():
	case <-time.After(10 * time.Second):
		t.Fatal("no subscription to the shared revocations")
	}
	return st
}

// request sends one request to a replica in process, with a session cookie.
func request(h *harness, path string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, goldenBase+path, nil)
	req.Header.Set("Accept", "application/json")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	h.proxy.ServeHTTP(rec, req)
	return rec
}

func sessionFrom(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if strings.Contains(c.Name, "gatehouse") && !strings.HasPrefix(c.Name, "gatehouse_") && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie set (%d)", rec.Code)
	return nil
}

// TestReplicasShareState: two gatehouse instances with one Redis. A login
// started on A completes on B; a response B accepted is refused as a
// replay by A; a logout on A ends the session on B within a second; with
// Redis stopped, established sessions go on and logins fail with 503,
// and both recover when Redis is back.
func TestReplicasShareState(t *testing.T) {
	srv := redistest.Start(t)
	a := newHarness(t, options{base: goldenBase, state: replicaState(t, srv.Addr)})
	b := newHarness(t, options{base: goldenBase, state: replicaState(t, srv.Addr), store: a.store})

	relay, pending := a.pendingLogin(t)
	doc := signedAssertion(t, goldenSpec(alice, "replica-1"), a.idp)
	rec := b.postACS(doc, relay, pending)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("login started on A, finished on B: %d %s", rec.Code, rec.Body)
	}
	cookie := sessionFrom(t, rec)
	relay, pending = a.pendingLogin(t)
	if rec := a.postACS(doc, relay, pending); rec.Code != http.StatusForbidden {
		t.Fatalf("the same response replayed to A: %d, want 403", rec.Code)
	}
	if code := request(a, "/home", cookie).Code; code != http.StatusOK {
		t.Fatalf("B's session on A: %d", code)
	}

	out := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, goldenBase+"/.gatehouse/logout", nil)
	req.AddCookie(cookie)
	a.proxy.ServeHTTP(out, req)
	deadline := time.Now().Add(time.Second)
	for request(b, "/home", cookie).Code != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("a logout on A did not end the session on B within a second")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A second user signs in; then Redis goes away.
	relay, pending = a.pendingLogin(t)
	rec = a.postACS(signedAssertion(t, goldenSpec(mallory, "replica-2"), a.idp), relay, pending)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("second login: %d", rec.Code)
	}
	second := sessionFrom(t, rec)
	srv.Stop()
	if code := request(b, "/home", second).Code; code != http.StatusOK {
		t.Errorf("an established session with Redis down: %d, want 200", code)
	}
	relay, pending = a.pendingLogin(t)
	if rec := a.postACS(signedAssertion(t, goldenSpec(alice, "replica-3"), a.idp), relay, pending); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a login with Redis down: %d, want 503", rec.Code)
	}
	srv.Restart(t)
	deadline = time.Now().Add(10 * time.Second)
	for {
		relay, pending = a.pendingLogin(t)
		rec := a.postACS(signedAssertion(t, goldenSpec(alice, "replica-4"), a.idp), relay, pending)
		if rec.Code == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logins did not recover after Redis came back: %d", rec.Code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// B's subscription is back too: a logout on A reaches it.
	out = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodGet, goldenBase+"/.gatehouse/logout", nil)
	req.AddCookie(second)
	a.proxy.ServeHTTP(out, req)
	deadline = time.Now().Add(5 * time.Second)
	for request(b, "/home", second).Code != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("after Redis came back, a logout on A did not reach B")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
