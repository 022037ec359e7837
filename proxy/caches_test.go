package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
)

// TestGateCachedCookieDeactivatedAtOnce: a user whose session cookie and
// identity are both cached is refused on the very next request after
// SCIM deactivates them (SCIM writes the store, then calls Forget), and
// after they are deleted.
func TestGateCachedCookieDeactivatedAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(g *gate)
		want   int
	}{
		{"Deactivated", func(g *gate) { g.store.SetActive(context.Background(), "u-alice", false) }, http.StatusForbidden},
		{"Deleted", func(g *gate) { g.store.remove("u-alice") }, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t, nil, alice())
			c := g.cookie("u-alice")
			for i := range 3 {
				if w := g.do("GET", "/", c, api); w.Code != http.StatusOK {
					t.Fatalf("request %d: status %d", i, w.Code)
				}
			}
			tc.change(g)
			g.p.Forget("u-alice")
			sent := g.upstream.count()
			if w := g.do("GET", "/", c, api); w.Code != tc.want {
				t.Errorf("status %d on the next request, want %d", w.Code, tc.want)
			}
			if g.upstream.count() != sent {
				t.Error("the request reached the upstream")
			}
		})
	}
}

// TestGateCachedCookieLoggedOut: a session cookie served from the cache
// is refused on the very next request after the user signs out.
func TestGateCachedCookieLoggedOut(t *testing.T) {
	g := newGate(t, nil, alice())
	c := g.cookie("u-alice")
	for i := range 3 {
		if w := g.do("GET", "/", c, api); w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
	}
	w := g.do("POST", DefaultPrefix+PathLogout, c, http.Header{"Origin": {gateBase}})
	if w.Code >= 400 {
		t.Fatalf("logout: status %d", w.Code)
	}
	if w := g.do("GET", "/", c, api); w.Code != http.StatusUnauthorized {
		t.Errorf("status %d after logout, want 401", w.Code)
	}
}

// TestGateStaleCookieResent: a client that never stores the refreshed
// session cookie gets the same refreshed cookie within the refresh step,
// and the identity headers and the stripping are as for any request.
func TestGateStaleCookieResent(t *testing.T) {
	g := newGate(t, nil, alice())
	c := g.cookie("u-alice")
	g.clock.advance(2 * time.Minute)
	var first string
	for i := range 3 {
		w := g.do("GET", "/", c, api)
		if w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
		set := w.Result().Cookies()
		if len(set) != 1 || set[0].Name != c.Name {
			t.Fatalf("request %d: Set-Cookie %q, want the refreshed session", i, w.Header()["Set-Cookie"])
		}
		if i == 0 {
			first = set[0].Value
		} else if set[0].Value != first {
			t.Errorf("request %d: a newly sealed cookie within the refresh step", i)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "private" {
			t.Errorf("request %d: Cache-Control %q with a session cookie set, want private", i, cc)
		}
		got := g.upstream.last(t)
		if got.Header.Get("X-Forwarded-User") != "alice" || strings.Contains(got.Header.Get("Cookie"), c.Name) {
			t.Errorf("request %d: upstream got user %q, cookie %q", i, got.Header.Get("X-Forwarded-User"), got.Header.Get("Cookie"))
		}
	}
}

// TestUserCacheByteBound: many distinct users never take the identity
// cache beyond its byte bound; the latest is cached.
func TestUserCacheByteBound(t *testing.T) {
	const max = 64 << 10
	c := newUserCache(max, zap.NewNop())
	hs := newHeaderSet(Config{}.WithDefaults().Headers)
	for i := range 2000 {
		u := alice()
		u.ID, u.UserName = fmt.Sprintf("u-%d", i), fmt.Sprintf("user%d", i)
		e := &identity{userID: u.ID, active: true, user: u, headers: hs.build(u)}
		c.put(e)
		if _, bytes := c.usage(); bytes > max {
			t.Fatalf("after %d users the cache holds %d bytes, over its bound of %d", i+1, bytes, max)
		}
		if c.get(u.ID) != e {
			t.Fatalf("user %d not cached", i)
		}
	}
	if n, _ := c.usage(); n < 20 || n > 60 {
		t.Errorf("%d users in %d bytes: the entry estimate is off", n, max)
	}
	c.drop("u-1999")
	if n, bytes := c.usage(); bytes > max || c.get("u-1999") != nil {
		t.Errorf("after a drop: %d users, %d bytes", n, bytes)
	}
}

// TestKnownUsersByteBound: the last known good records stay within their
// byte bound, the oldest going first.
func TestKnownUsersByteBound(t *testing.T) {
	const max = 64 << 10
	k := newKnownUsers(max, zap.NewNop())
	key := func(i int) provision.Key {
		return provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: fmt.Sprint(i)}
	}
	for i := range 2000 {
		u := alice()
		u.ID = fmt.Sprintf("u-%d", i)
		k.remember(key(i), u)
		if _, bytes := k.usage(); bytes > max {
			t.Fatalf("after %d records: %d bytes, over %d", i+1, bytes, max)
		}
	}
	if _, ok := k.lookup(key(1999)); !ok {
		t.Error("the newest record is gone")
	}
	if _, ok := k.lookup(key(0)); ok {
		t.Error("the oldest record is still there")
	}
	k.forgetUser("u-1999")
	if n, bytes := k.usage(); bytes > max || n == 0 {
		t.Errorf("after a forget: %d records, %d bytes", n, bytes)
	}
}

// TestCacheBytesValidated: the caches' byte bounds default to a few MiB
// and are refused outside 64 KiB..4 GiB.
func TestCacheBytesValidated(t *testing.T) {
	c := Config{Upstream: gateUpstream, BaseURL: gateBase}.WithDefaults()
	if c.UserCacheBytes != DefaultUserCacheBytes || c.KnownUsersBytes != DefaultKnownUsersBytes || c.SessionCacheBytes != 4<<20 {
		t.Errorf("defaults %d, %d, %d", c.UserCacheBytes, c.KnownUsersBytes, c.SessionCacheBytes)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"user_cache_bytes", "known_users_bytes", "session_cache_bytes"} {
		for _, n := range []int64{-1, 1000, 8 << 30} {
			bad := c
			switch key {
			case "user_cache_bytes":
				bad.UserCacheBytes = n
			case "known_users_bytes":
				bad.KnownUsersBytes = n
			default:
				bad.SessionCacheBytes = n
			}
			if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("%s: %d: %v", key, n, err)
			}
		}
	}
}

// TestStripperPrefixIndex: the indexed prefix check strips exactly the
// names a comparison with every prefix strips, short prefixes included.
func TestStripperPrefixIndex(t *testing.T) {
	h := Config{}.WithDefaults().Headers
	h.Strip = []string{"X*", "ab*", "Custom-Thing-*"}
	s := stripperFor(h, newHeaderSet(h).names())
	names := []string{"", "x", "xa", "ab", "abc", "a", "shib", "shibuser", "xforwardedusername", "xauthrequestemail",
		"sslclientcert", "xgatehousefoo", "customthingx", "customthin", "remoteuserx", "oidcclaimsub", "accept", "cookie"}
	for _, p := range s.prefixes {
		names = append(names, p, p+"x", p[:len(p)/2])
	}
	for _, n := range names {
		want := false
		for _, p := range s.prefixes {
			want = want || strings.HasPrefix(n, p)
		}
		if got := s.hasPrefix(n); got != want {
			t.Errorf("hasPrefix(%q) = %v, want %v", n, got, want)
		}
	}
}
