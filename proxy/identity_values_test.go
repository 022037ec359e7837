package proxy

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/provision"
)

// TestPaddedIdentityValuesNeverEmitted: a stored value that Go's header
// writer would trim, or that hides invisible characters, never reaches the
// upstream, not even shortened: the upstream would read " alice" as
// "alice". Such rows predate the stores' checks; each value is judged on
// its own, and a group that fails is left out of the list.
func TestPaddedIdentityValuesNeverEmitted(t *testing.T) {
	cfg := Config{}.WithDefaults().Headers
	cfg.Extra = map[string]string{"X-Forwarded-Department": "department", "X-Forwarded-Display": "display_name"}
	hs := newHeaderSet(cfg)
	for _, tc := range []struct {
		name       string
		user       provision.User
		wantAbsent string
		wantGroups string
	}{
		{"leading space in user name", provision.User{UserName: " alice", Groups: []string{"staff"}}, "X-Forwarded-User", "staff"},
		{"trailing space in user name", provision.User{UserName: "alice ", Groups: []string{"staff"}}, "X-Forwarded-User", "staff"},
		{"trailing tab in user name", provision.User{UserName: "alice\t", Groups: []string{"staff"}}, "X-Forwarded-User", "staff"},
		{"NBSP in user name", provision.User{UserName: "\u00a0alice", Groups: []string{"staff"}}, "X-Forwarded-User", "staff"},
		{"zero width space in user name", provision.User{UserName: "alice\u200b", Groups: []string{"staff"}}, "X-Forwarded-User", "staff"},
		{"padded e-mail", provision.User{UserName: "bob", Email: "bob@example.test ", Groups: []string{"staff"}}, "X-Forwarded-Email", "staff"},
		{"bidi override in display name", provision.User{UserName: "bob", DisplayName: "\u202eboB", Groups: []string{"staff"}}, "X-Forwarded-Display", "staff"},
		{"padded extra", provision.User{UserName: "bob", Extra: map[string]string{"department": " R&D"}, Groups: []string{"staff"}}, "X-Forwarded-Department", "staff"},
		{"padded group", provision.User{UserName: "bob", Groups: []string{" admins", "staff"}}, "", "staff"},
		{"group with NBSP", provision.User{UserName: "bob", Groups: []string{"admins\u00a0", "staff"}}, "", "staff"},
		{"group with word joiner", provision.User{UserName: "bob", Groups: []string{"ad\u2060mins", "staff"}}, "", "staff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			(&identity{headers: hs.build(tc.user)}).set(h)
			if tc.wantAbsent != "" {
				if v, ok := h[tc.wantAbsent]; ok {
					t.Errorf("%s = %q emitted", tc.wantAbsent, v)
				}
			}
			if got := h.Get("X-Forwarded-Groups"); got != tc.wantGroups {
				t.Errorf("X-Forwarded-Groups = %q, want %q", got, tc.wantGroups)
			}
			// What the upstream reads is what was set, byte for byte.
			req := httptest.NewRequest("GET", "/", nil)
			req.Header = h
			var sb strings.Builder
			if err := req.Write(&sb); err != nil {
				t.Fatal(err)
			}
			read, err := http.ReadRequest(bufio.NewReader(strings.NewReader(sb.String())))
			if err != nil {
				t.Fatal(err)
			}
			for name, vals := range h {
				if got := read.Header.Values(name); len(got) != 1 || got[0] != vals[0] {
					t.Errorf("%s sent as %q, read as %q", name, vals, got)
				}
			}
		})
	}
}
