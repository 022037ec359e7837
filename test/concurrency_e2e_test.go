package test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// simultaneousLogins prepares a first login for each person in a browser
// of its own, then posts every IdP response at the same moment, and
// fails the test for each login that does not succeed. It returns the
// browsers, in the order of people.
func (h *harness) simultaneousLogins(t *testing.T, people []person) []*http.Client {
	t.Helper()
	type prepared struct {
		c     *http.Client
		doc   []byte
		relay string
	}
	var ps []prepared
	for _, p := range people {
		c := h.browser()
		id, relay := h.startLogin(c, "/")
		ps = append(ps, prepared{c, h.signedResponse(h.spec(p, id)), relay})
	}
	var wg sync.WaitGroup
	codes := make([]int, len(ps))
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
	browsers := make([]*http.Client, len(ps))
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("login %d (%s): status %d", i, people[i].uid, code)
		}
		browsers[i] = ps[i].c
	}
	return browsers
}

// TestConcurrentFirstLoginsOfManyUsers: fifty different users finish
// their first login at the same moment. Every login succeeds (none waits
// past its deadline for SQLite's one writer: they queue in gatehouse, in
// order), each creates its own account with the two shared groups made
// once, and each browser's session is its own user's.
func TestConcurrentFirstLoginsOfManyUsers(t *testing.T) {
	h := newHarness(t, options{})
	const n = 50
	var people []person
	for i := range n {
		p := alice
		p.nameID, p.uid, p.mail = fmt.Sprintf("many-%03d", i), fmt.Sprintf("user%03d", i), fmt.Sprintf("user%03d@example.com", i)
		p.employeeID = fmt.Sprintf("E%04d", i)
		people = append(people, p)
	}
	browsers := h.simultaneousLogins(t, people)
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
	for i, p := range people {
		if code, body := h.get(browsers[i], "/", nil); code != http.StatusOK || body != "upstream GET / user="+p.uid {
			t.Errorf("%s's session: %d %q", p.uid, code, body)
		}
	}
	if st := h.sqlite.WriteQueue(); st.TimedOut != 0 || st.Waiting != 0 {
		t.Errorf("writer queue %+v, want no write timed out or left waiting", st)
	}
	t.Logf("writer queue: %+v", h.sqlite.WriteQueue())
}
