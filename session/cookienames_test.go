package session

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProxyStripsTheCookiesSessionSets checks the names proxy strips from
// every proxied request, which it takes from Manager.CookieName and
// StateCookiePrefixes, against the cookies the Manager's endpoints set
// (login start, session, logout), with Secure cookies and without: every
// cookie a browser sends outside the reserved prefix is stripped, and
// every stripped name or prefix is one the Manager sets.
func TestProxyStripsTheCookiesSessionSets(t *testing.T) {
	var strip []string // names and prefixes, as proxy matches them
	var set []*http.Cookie
	for _, insecure := range []bool{false, true} {
		now := goldenIssued.Add(time.Minute)
		m := goldenManager(t, func() time.Time { return now }, &recordingPages{}, insecure)
		base := m.base.String()
		strip = append(strip, m.CookieName())
		var jar []*http.Cookie
		keep := func(w *httptest.ResponseRecorder) {
			for _, c := range w.Result().Cookies() {
				set = append(set, c)
				if c.MaxAge >= 0 {
					jar = append(jar, c)
				}
			}
		}

		w := httptest.NewRecorder()
		m.ServeLogin(w, httptest.NewRequest(http.MethodGet, base+"/.gatehouse/login?idp=corp&return=/app", nil))
		if w.Code != http.StatusFound {
			t.Fatalf("insecure %v: login start: status %d", insecure, w.Code)
		}
		keep(w)

		w = httptest.NewRecorder()
		m.Touch(w, Session{ID: "s1", UserID: "u1", IdP: "corp", NameID: "alice", Issued: now.Add(-2 * time.Minute), LastSeen: now.Add(-2 * time.Minute)})
		keep(w)

		logout := httptest.NewRequest(http.MethodPost, base+"/.gatehouse/logout", nil)
		logout.Header.Set("Origin", base)
		for _, c := range jar {
			logout.AddCookie(c)
		}
		w = httptest.NewRecorder()
		m.ServeLogout(w, logout)
		if w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "https://idp.example.test/slo?") {
			t.Fatalf("insecure %v: logout: status %d, Location %q (want single logout)", insecure, w.Code, w.Header().Get("Location"))
		}
		keep(w)
	}
	for _, p := range StateCookiePrefixes() {
		strip = append(strip, p+"*")
	}
	stripped := func(name string) (string, bool) {
		for _, s := range strip {
			if p, ok := strings.CutSuffix(s, "*"); ok && strings.HasPrefix(name, p) || name == s {
				return s, true
			}
		}
		return "", false
	}

	used := map[string]bool{}
	for _, c := range set {
		s, ok := stripped(c.Name)
		if ok {
			used[s] = true
			continue
		}
		if !strings.HasPrefix(c.Path, "/.gatehouse/") {
			t.Errorf("cookie %s (Path %q) is sent with proxied requests and proxy does not strip it", c.Name, c.Path)
		}
	}
	for _, s := range strip {
		if !used[s] {
			t.Errorf("proxy strips %s, which the Manager never sets", s)
		}
	}
	if names := cookieNames(set); !slices.Contains(names, "__Host-gatehouse") || !slices.Contains(names, "gatehouse_logout") {
		t.Errorf("the flows did not set the cookies they should: %v", names)
	}
}

func cookieNames(cs []*http.Cookie) []string {
	var out []string
	for _, c := range cs {
		if !slices.Contains(out, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}
