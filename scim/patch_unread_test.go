package scim_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/scim"
)

// stalledWriter is a client that never reads its answer: the first write
// of the answer (header or body) blocks until release is closed.
type stalledWriter struct {
	h       http.Header
	once    sync.Once
	stalled chan struct{} // closed when a write blocks
	release chan struct{}
}

func (w *stalledWriter) Header() http.Header { return w.h }

func (w *stalledWriter) stall() {
	w.once.Do(func() { close(w.stalled) })
	<-w.release
}

func (w *stalledWriter) WriteHeader(int) { w.stall() }

func (w *stalledWriter) Write(p []byte) (int, error) { w.stall(); return len(p), nil }

// TestPatchAnswerNotReadKeepsNoTurn (N3): a PATCH whose answer is not
// read holds no turn of its resource: a second PATCH of the same user, or
// of the same group through the general path, is answered at once while
// the first answer is still stalled, and both changes are kept.
func TestPatchAnswerNotReadKeepsNoTurn(t *testing.T) {
	e := newEnv(t, scim.Config{})
	uid := e.createUser(t, user("stall-target"))
	gid := e.createGroup(t, group("Stall"))
	// A filter the fast path does not read sends a group PATCH through
	// the general path, which takes turns; attributes asks for an answer.
	general := func(name string) string {
		return patchBody(`[{"op":"replace","path":"displayName","value":"` + name + `"},{"op":"remove","path":"members[value co \"zzzz\"]"}]`)
	}
	for _, tc := range []struct {
		name, path, first, second, check, want string
	}{
		{"User", "/Users/" + uid, patchBody(`[{"op":"replace","path":"title","value":"first"}]`),
			patchBody(`[{"op":"replace","path":"nickName","value":"second"}]`), "title", "first"},
		{"GroupAnswered", "/Groups/" + gid + "?attributes=displayName", general("Stall1"), general("Stall2"), "displayName", "Stall2"},
		{"GroupNoContent", "/Groups/" + gid, general("Stall3"), general("Stall4"), "displayName", "Stall4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := &stalledWriter{h: http.Header{}, stalled: make(chan struct{}), release: make(chan struct{})}
			first := httptestRequest(t, "PATCH", e.base+tc.path, tc.first)
			done := make(chan struct{})
			go func() { defer close(done); e.srv.ServeHTTP(sw, first) }()
			defer func() { close(sw.release); <-done }()
			select {
			case <-sw.stalled:
			case <-time.After(10 * time.Second):
				t.Fatal("the first PATCH never wrote its answer")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "PATCH", e.base+tc.path, strings.NewReader(tc.second))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/scim+json")
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatalf("second PATCH while the first answer is unread: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 204 {
				t.Fatalf("second PATCH: %d", resp.StatusCode)
			}
			base := strings.SplitN(tc.path, "?", 2)[0]
			_, _, got := e.do(t, "GET", base, "")
			want(t, decode(t, got), tc.check, tc.want)
		})
	}
}

func httptestRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Content-Type", "application/scim+json")
	return r
}
