package test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentFirstLoginsOfManyUsers: fifty different users finish
// their first login at the same moment. Every login succeeds (none waits
// past its deadline for SQLite's one writer: they queue in gatehouse, in
// order), each creates its own account with the two shared groups made
// once, and each browser's session is its own user's.
func TestConcurrentFirstLoginsOfManyUsers(t *testing.T) {
	h := newHarness(t, options{})
	const n = 50
	type prepared struct {
		p     person
		c     *http.Client
		doc   []byte
		relay string
	}
	var ps []prepared
	for i := range n {
		p := alice
		p.nameID, p.uid, p.mail = fmt.Sprintf("many-%03d", i), fmt.Sprintf("user%03d", i), fmt.Sprintf("user%03d@example.com", i)
		p.employeeID = fmt.Sprintf("E%04d", i)
		c := h.browser()
		id, relay := h.startLogin(c, "/")
		ps = append(ps, prepared{p, c, h.signedResponse(h.spec(p, id)), relay})
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	start := make(chan struct{})
	for i, p := range ps {
		wg.Go(func() {
			<-start
			resp := h.post(p.c, p.doc, p.relay)
			readAll(t, resp)
			codes[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("login of %s: status %d", ps[i].p.uid, code)
		}
	}
	for _, q := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) FROM gatehouse_users`, n},
		{`SELECT count(*) FROM gatehouse_identities`, n},
		{`SELECT count(*) FROM gatehouse_groups`, 2},
		{`SELECT count(*) FROM gatehouse_memberships`, 2 * n},
	} {
		if got := h.count(q.query); got != q.want {
			t.Errorf("%s = %d, want %d", q.query, got, q.want)
		}
	}
	created := map[any]bool{}
	for _, ev := range h.auditEvents() {
		if ev["event"] != "login" {
			continue
		}
		if ev["outcome"] != "created" || ev["coalesced"] != nil {
			t.Errorf("login audit line %v, want created and not coalesced (every login is another user's)", ev)
		}
		created[ev["user_id"]] = true
	}
	if len(created) != n {
		t.Errorf("%d user IDs created, want %d", len(created), n)
	}
	for _, p := range ps {
		if code, body := h.get(p.c, "/", nil); code != http.StatusOK || body != "upstream GET / user="+p.p.uid {
			t.Errorf("%s's session: %d %q", p.p.uid, code, body)
		}
	}
	if st := h.sqlite.WriteQueue(); st.TimedOut != 0 || st.Waiting != 0 {
		t.Errorf("writer queue %+v, want no write timed out or left waiting", st)
	}
	t.Logf("writer queue: %+v", h.sqlite.WriteQueue())
}
