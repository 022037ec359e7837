package test

import (
	"net/http"
	"testing"
)

// TestPaddedAndLookAlikeNamesNeverImpersonate: a login asserting a padded,
// invisible or look-alike spelling of an existing user's name, or a
// padded group, is refused with its reason; it never creates a second
// account and never reaches the upstream as that user or group (Go's
// header writer would have trimmed " alice" to "alice").
func TestPaddedAndLookAlikeNamesNeverImpersonate(t *testing.T) {
	h := newHarness(t, options{})
	readResp(t, h.login(h.browser(), "/", alice))
	for i, tc := range []struct {
		name   string
		uid    string
		groups []string
		reason string // in the audit event
	}{
		{"leading space", " alice", nil, "mapping"},
		{"trailing space", "alice ", nil, "mapping"},
		{"NBSP", "\u00a0alice", nil, "mapping"},
		{"zero width space", "alice\u200b", nil, "mapping"},
		{"right-to-left override", "\u202eecila", nil, "mapping"},
		{"full-width", "ａlice", nil, "rejected"},
		{"Cyrillic a", "\u0430lice", nil, "mapping"},
		{"Greek alpha group", "mallory", []string{"\u03b1dmins"}, "mapping"},
		{"capitals", "ALICE", nil, "rejected"},
		{"dotless i", "al\u0131ce", nil, "rejected"},
		{"dotted capital I", "al\u0130ce", nil, "rejected"},
		{"grave accent", "àlice", nil, "rejected"},
		{"acute accent", "alicé", nil, "rejected"},
		{"Latin click letter", "a\u01c0ice", nil, "mapping"},
		{"Latin alpha", "\u0251lice", nil, "mapping"},
		{"Latin alpha group", "mallory", []string{"\u0251dmins"}, "mapping"},
		{"padded group", "mallory", []string{" admins"}, "mapping"},
		{"invisible group", "mallory", []string{"ad\u200bmins"}, "mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.upstream.all())
			mallory := person{nameID: "mallory-" + string(rune('a'+i)), uid: tc.uid, mail: "m@example.com", groups: tc.groups}
			resp := h.login(h.browser(), "/", mallory)
			body := readAll(t, resp)
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("login as %q with groups %q: 200 %s", tc.uid, tc.groups, body)
			}
			for _, r := range h.upstream.all()[before:] {
				t.Errorf("upstream got a request as %q, groups %q", r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Groups"))
			}
			ev := h.auditEvents()
			if last := ev[len(ev)-1]; last["outcome"] != "refused" || last["reason"] != tc.reason {
				t.Errorf("audit = %v, want refused for %s", last, tc.reason)
			}
		})
	}
	if n := h.count(`SELECT count(*) FROM gatehouse_users`); n != 1 {
		t.Errorf("users = %d, want only alice", n)
	}
	if n := h.count(`SELECT count(*) FROM gatehouse_groups WHERE name LIKE '%admins%' AND name <> 'admins'`); n != 0 {
		t.Errorf("look-alike groups stored: %d", n)
	}
}
