package session

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// cacheClock is a settable clock for the cache tests.
type cacheClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *cacheClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *cacheClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// cachingManager is a Manager with the session cookie cache on, and a
// cookie value of a session issued and last seen at the clock's time.
func cachingManager(t *testing.T) (*Manager, *cacheClock, Session, string) {
	t.Helper()
	clock := &cacheClock{now: goldenIssued.Add(time.Minute)}
	m := goldenManager(t, clock.Now, &recordingPages{}, false)
	m.CacheSessions(DefaultSessionCacheBytes)
	now := clock.Now()
	s := Session{ID: "0123456789abcdefghijkl", UserID: "u1", IdP: "corp", NameID: "alice", SessionIndex: "_idx1",
		Issued: now, LastSeen: now}
	return m, clock, s, sealSession(t, m, s)
}

func sealSession(t *testing.T, m *Manager, s Session) string {
	t.Helper()
	v, err := m.sealer.seal(m.cfg.Cookie.Name, s.encode())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func requestWith(m *Manager, value string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://sp.example.test/app", nil)
	r.Header.Set("Cookie", "theme=dark; "+m.cfg.Cookie.Name+"="+value)
	return r
}

// mustLoad loads the session of value, which must be s, and checks
// whether it came from the cache.
func mustLoad(t *testing.T, m *Manager, value string, want Session) Session {
	t.Helper()
	got, ok := m.Load(requestWith(m, value))
	if !ok {
		t.Fatal("the session was refused")
	}
	if got.opened == nil || !got.opened.holds(want) {
		t.Fatalf("Load returned %+v, want %+v", got, want)
	}
	return got
}

// TestSessionCacheRefusesRevokedAtOnce: a session whose cookie is cached
// is refused on the very next request after a logout revokes it, and
// after a single logout revokes its IdP session or its subject.
func TestSessionCacheRefusesRevokedAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(m *Manager, s Session) error
	}{
		{"Logout", func(m *Manager, s Session) error { return m.revoke(context.Background(), s) }},
		{"SingleLogoutSessionIndex", func(m *Manager, s Session) error {
			return m.revocations.Revoke(context.Background(), sessionKey(s.IdP, s.SessionIndex), m.now(), m.now().Add(time.Hour))
		}},
		{"SingleLogoutSubject", func(m *Manager, s Session) error {
			return m.revocations.Revoke(context.Background(), subjectKey(s.IdP, s.NameID), m.now(), m.now().Add(time.Hour))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, s, value := cachingManager(t)
			mustLoad(t, m, value, s)
			if m.opened.get(value) == nil {
				t.Fatal("the cookie was not cached")
			}
			if err := tc.revoke(m, s); err != nil {
				t.Fatal(err)
			}
			if _, ok := m.Load(requestWith(m, value)); ok {
				t.Fatal("a revoked session was served from the cache")
			}
			if m.opened.get(value) != nil {
				t.Error("the revoked session stayed in the cache")
			}
		})
		t.Run(tc.name+"CacheOff", func(t *testing.T) {
			m, _, s, value := cachingManager(t)
			m.CacheSessions(0)
			mustLoad(t, m, value, s)
			if err := tc.revoke(m, s); err != nil {
				t.Fatal(err)
			}
			if _, ok := m.Load(requestWith(m, value)); ok {
				t.Fatal("a revoked session was accepted")
			}
		})
	}
}

// TestSessionCacheTimeouts: a cached session is refused once idle for
// idle_timeout, and once max_age after its login, however recently used.
func TestSessionCacheTimeouts(t *testing.T) {
	t.Run("Idle", func(t *testing.T) {
		m, clock, s, value := cachingManager(t)
		mustLoad(t, m, value, s)
		clock.advance(m.cfg.Cookie.IdleTimeout - time.Second)
		mustLoad(t, m, value, s)
		clock.advance(time.Second)
		if _, ok := m.Load(requestWith(m, value)); ok {
			t.Fatal("an idle session was served from the cache")
		}
	})
	t.Run("Absolute", func(t *testing.T) {
		m, clock, s, _ := cachingManager(t)
		// Used a minute ago, logged in max_age ago less a second.
		now := clock.Now()
		s.Issued, s.LastSeen = now.Add(-m.cfg.Cookie.MaxAge+time.Second), now.Add(-time.Minute)
		value := sealSession(t, m, s)
		mustLoad(t, m, value, s)
		clock.advance(time.Second)
		if _, ok := m.Load(requestWith(m, value)); ok {
			t.Fatal("a session past max_age was served from the cache")
		}
	})
}

// TestSessionCacheKeysOnTheExactValue: a cookie value that differs from a
// cached one by a single byte is not served from the cache: it must open
// on its own, and none of these do.
func TestSessionCacheKeysOnTheExactValue(t *testing.T) {
	m, _, s, value := cachingManager(t)
	mustLoad(t, m, value, s)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(value) {
		b := []byte(value)
		b[i] = alphabet[(strings.IndexByte(alphabet, b[i])+1)%len(alphabet)]
		if _, ok := m.Load(requestWith(m, string(b))); ok {
			t.Fatalf("a value with byte %d changed was accepted", i)
		}
	}
	for _, v := range []string{value[:len(value)-1], value + "A", "A" + value} {
		if _, ok := m.Load(requestWith(m, v)); ok {
			t.Fatalf("value %q accepted", v)
		}
	}
	if n, _ := m.opened.usage(); n != 1 {
		t.Errorf("%d cached values, want only the one that opened", n)
	}
}

// TestSessionCacheByteBound: many distinct sessions never take the cache
// beyond its byte bound; the latest are cached.
func TestSessionCacheByteBound(t *testing.T) {
	m, clock, base, _ := cachingManager(t)
	const max = 64 << 10
	m.CacheSessions(max)
	var last string
	for i := range 2000 {
		s := base
		s.ID, s.UserID = fmt.Sprintf("session-%017d", i), fmt.Sprintf("user-%d", i)
		last = sealSession(t, m, s)
		mustLoad(t, m, last, s)
		if _, bytes := m.opened.usage(); bytes > max {
			t.Fatalf("after %d sessions the cache holds %d bytes, over its bound of %d", i+1, bytes, max)
		}
	}
	n, bytes := m.opened.usage()
	if n < 20 || n > 100 {
		t.Errorf("%d sessions (%d bytes) in %d bytes: the entry estimate is off", n, bytes, max)
	}
	if m.opened.get(last) == nil {
		t.Error("the latest session is not cached")
	}
	_ = clock
}

// TestTouchResendsTheRefreshedCookie: a client that does not store the
// refreshed cookie gets, within the refresh step, the cookie sealed at
// its first stale request (no seal per request), with an exact Max-Age;
// after the step, a newly sealed one; and each refreshed cookie opens to
// the session with its last-seen time.
func TestTouchResendsTheRefreshedCookie(t *testing.T) {
	m, clock, s, value := cachingManager(t)
	step := min(time.Minute, m.cfg.Cookie.IdleTimeout/10)
	clock.advance(step + time.Second)
	touch := func() *http.Cookie {
		t.Helper()
		got, ok := m.Load(requestWith(m, value))
		if !ok {
			t.Fatal("session refused")
		}
		w := httptest.NewRecorder()
		m.Touch(w, got)
		cs := w.Result().Cookies()
		if len(cs) != 1 || cs[0].Name != m.cfg.Cookie.Name {
			t.Fatalf("Set-Cookie %q, want the session cookie", w.Header()["Set-Cookie"])
		}
		if want := int(s.Issued.Add(m.cfg.Cookie.MaxAge).Sub(clock.Now()) / time.Second); cs[0].MaxAge != want {
			t.Errorf("Max-Age %d, want %d", cs[0].MaxAge, want)
		}
		return cs[0]
	}
	first := touch()
	refreshedAt := clock.Now()
	clock.advance(2 * time.Second)
	second := touch()
	if second.Value != first.Value {
		t.Error("a second stale request within the step sealed a new cookie")
	}
	opened, ok := m.Load(requestWith(m, second.Value))
	if !ok || !opened.LastSeen.Equal(refreshedAt.Truncate(time.Second)) || opened.ID != s.ID {
		t.Errorf("the refreshed cookie opens to %+v (%v), want last seen %v", opened, ok, refreshedAt)
	}
	clock.advance(step)
	if third := touch(); third.Value == first.Value {
		t.Error("a cookie refreshed a step ago was sent again")
	}
}

// TestTouchSealsWhatItIsGiven: a session changed after Load is sealed as
// it is, not replaced by its cache entry's refreshed cookie.
func TestTouchSealsWhatItIsGiven(t *testing.T) {
	m, clock, s, value := cachingManager(t)
	clock.advance(2 * time.Minute)
	got, _ := m.Load(requestWith(m, value))
	m.Touch(httptest.NewRecorder(), got) // caches a refreshed cookie
	got.UserID = "u2"
	w := httptest.NewRecorder()
	m.Touch(w, got)
	c := w.Result().Cookies()[0]
	opened, ok := m.Load(requestWith(m, c.Value))
	if !ok || opened.UserID != "u2" || opened.ID != s.ID {
		t.Errorf("Touch of a changed session set a cookie of %+v", opened)
	}
}

// TestCookieValueAsNetHTTP: cookieValue finds what (*http.Request).Cookie
// finds.
func TestCookieValueAsNetHTTP(t *testing.T) {
	for _, lines := range [][]string{
		{"gh=abc"}, {"a=1; gh=abc; b=2"}, {" gh = abc "}, {`gh="abc"`}, {`gh="`}, {`gh=""`}, {"gh="}, {"gh"},
		{"gh=a b"}, {"gh=a\\b", "gh=ok"}, {"x=1", "gh=two; gh=three"}, {"GH=upper"}, {"gh=a,b"}, {";;gh=x;;"},
		{"gh=\x7f"}, {"gh=é"}, {"g h=x"}, {strings.Repeat("a=1;", 3001) + "gh=x"},
	} {
		checkCookieValue(t, lines)
	}
}

func checkCookieValue(t *testing.T, lines []string) {
	t.Helper()
	h := http.Header{"Cookie": lines}
	want, err := (&http.Request{Header: h}).Cookie("gh")
	got, ok := cookieValue(h, "gh")
	if (err == nil) != ok || err == nil && want.Value != got {
		t.Errorf("cookieValue(%q) = %q, %v; net/http finds %v, %v", lines, got, ok, want, err)
	}
}

func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; gh=abc", "")
	f.Add(`gh="abc"`, "gh=2")
	f.Add(" gh = a b ; gh=c", "x")
	f.Fuzz(func(t *testing.T, a, b string) {
		lines := []string{a}
		if b != "" {
			lines = append(lines, b)
		}
		checkCookieValue(t, lines)
	})
}

// TestSessionCacheConcurrent: concurrent loads, refreshes and evictions
// of cached cookies agree (run with -race).
func TestSessionCacheConcurrent(t *testing.T) {
	m, clock, base, value := cachingManager(t)
	m.CacheSessions(64 << 10)
	clock.advance(2 * time.Minute)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := value
				if i%4 == 0 {
					s := base
					s.ID = fmt.Sprintf("s-%d-%d", g, i)
					v = sealSession(t, m, s)
				}
				s, ok := m.Load(requestWith(m, v))
				if !ok {
					t.Error("session refused")
					return
				}
				m.Touch(httptest.NewRecorder(), s)
			}
		})
	}
	wg.Wait()
	if _, bytes := m.opened.usage(); bytes > 64<<10 {
		t.Errorf("%d bytes cached, over the bound", bytes)
	}
}

// TestSessionCacheEstimateCoversTheHeap: what the cache's entries hold
// on the heap (cookie values, sessions, refreshed cookies after Touch) is
// no more than the bytes it counts against session_cache_bytes, for
// short and long NameIDs (red team R2 found it 1.25 times over).
func TestSessionCacheEstimateCoversTheHeap(t *testing.T) {
	for _, nameLen := range []int{8, 60, 400} {
		m, clock, _, _ := cachingManager(t)
		m.CacheSessions(64 << 20)
		nid := strings.Repeat("n", nameLen)
		values := make([]string, 0, 3000)
		for i := range 3000 {
			now := clock.Now()
			s := Session{ID: fmt.Sprintf("id%020d", i), UserID: fmt.Sprintf("01a251e4-6ef3-750c-9f62-%012d", i), IdP: "corp",
				NameID: nid + fmt.Sprint(i), NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
				SessionIndex: fmt.Sprintf("_idx%030d", i), AuthnContext: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
				Issued: now.Add(-5 * time.Minute), LastSeen: now.Add(-2 * time.Minute)}
			values = append(values, sealSession(t, m, s))
		}
		var with, without runtime.MemStats
		for _, v := range values {
			s, ok := m.Load(requestWith(m, v))
			if !ok {
				t.Fatal("a sealed session did not load")
			}
			m.Touch(httptest.NewRecorder(), s) // each entry keeps a refreshed cookie
		}
		runtime.GC()
		runtime.ReadMemStats(&with)
		n, estimated := m.opened.usage()
		m.opened = nil
		runtime.GC()
		runtime.ReadMemStats(&without)
		held := int64(with.HeapAlloc) - int64(without.HeapAlloc)
		if n != len(values) {
			t.Fatalf("%d entries cached, want %d", n, len(values))
		}
		if held > estimated {
			t.Errorf("NameID of %d bytes: the entries hold %d bytes on the heap, over the %d counted (%.2fx)",
				nameLen, held, estimated, float64(held)/float64(estimated))
		}
		runtime.KeepAlive(values)
	}
}
