package session

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestExplainLeavesServingClockAlone runs Explain, at an instant when the
// golden response has expired, while the same Manager takes logins at its
// own clock (when the response is current) and starts others (which read
// crewjam/saml's clock). Every login must be judged at the Manager's
// time: the first is accepted, every later one refused as a replay, which
// the ACS checks only after the response validated. Under -race this
// also shows that Explain writes no clock a serving request reads.
func TestExplainLeavesServingClockAlone(t *testing.T) {
	pages := &recordingPages{}
	serving := goldenIssued.Add(time.Minute)
	m := goldenManager(t, func() time.Time { return serving }, pages, false)
	valid := goldenResponse(t, "valid.xml")
	later := goldenIssued.Add(24 * time.Hour)
	acs := m.ACS(func(_ context.Context, id Identity) (string, error) { return "u-" + id.NameID, nil })

	// Explain runs without a pause until the logins are done.
	const rounds = 100
	var wg sync.WaitGroup
	done := make(chan struct{})
	explained := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			_, at, err := m.Explain(valid, "corp", later)
			if err == nil || !at.Equal(later) {
				explained <- fmt.Errorf("a day later: %v at %s, want expired", err, at)
				return
			}
			if _, at, err := m.Explain(valid, "corp", time.Time{}); err != nil || !at.Equal(goldenIssued) {
				explained <- fmt.Errorf("at the IssueInstant: %v at %s", err, at)
				return
			}
		}
	}()
	accepted := 0
	for range rounds {
		w := httptest.NewRecorder()
		acs.ServeHTTP(w, acsPost(t, m, valid))
		if w.Code == http.StatusSeeOther {
			accepted++
		}
		start := httptest.NewRecorder()
		m.ServeLogin(start, httptest.NewRequest(http.MethodGet, "https://sp.example.test/.gatehouse/login", nil))
		if start.Code != http.StatusFound || !strings.HasPrefix(start.Header().Get("Location"), "https://idp.example.test/sso?") {
			t.Errorf("login start: status %d, Location %q", start.Code, start.Header().Get("Location"))
		}
	}
	close(done)
	wg.Wait()
	close(explained)
	for err := range explained {
		t.Errorf("Explain judged at the wrong instant: %v", err)
	}
	if accepted != 1 {
		t.Errorf("%d of %d logins accepted, want the first only", accepted, rounds)
	}
	for _, f := range pages.take() {
		if f.Reason != "replay" {
			t.Errorf("a login was refused with %q (%v), want only replays: the login was judged at another instant", f.Reason, f.Err)
		}
	}
	if !m.now().Equal(serving) {
		t.Errorf("the Manager's clock reads %s after Explain, want %s", m.now(), serving)
	}
}

// TestExplainInstant checks that Explain judges at the instant it is
// given: the golden response is valid when issued and expired a day
// later.
func TestExplainInstant(t *testing.T) {
	m := goldenManager(t, time.Now, &recordingPages{}, false)
	valid := goldenResponse(t, "valid.xml")
	id, at, err := m.Explain(valid, "corp", time.Time{})
	if err != nil || !at.Equal(goldenIssued) || id.NameID == "" {
		t.Errorf("Explain at the IssueInstant: %v at %s, name id %q", err, at, id.NameID)
	}
	if _, _, err := m.Explain(valid, "corp", goldenIssued.Add(24*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Explain a day later: %v, want expired", err)
	}
}
