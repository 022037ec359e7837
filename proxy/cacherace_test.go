package proxy

import (
	"context"
	"testing"

	"go.uber.org/zap"
)

// TestUserCacheKeepsNoReadOlderThanADrop: a record read before a drop
// (a SCIM change of some user) is not cached: it may predate the change.
func TestUserCacheKeepsNoReadOlderThanADrop(t *testing.T) {
	c := newUserCache(64<<10, zap.NewNop())
	gen := c.generation()
	c.drop("u1")
	if c.putRead(&identity{userID: "u1", active: true}, gen) || c.get("u1") != nil {
		t.Error("a read from before the drop was cached")
	}
	gen = c.generation()
	if !c.putRead(&identity{userID: "u1", active: true}, gen) || c.get("u1") == nil {
		t.Error("a read after the drop was not cached")
	}
}

// TestLoginRacingSCIMChangeCachesNothing: a login whose store call began
// before SCIM changed (and dropped) the user neither caches the record it
// got nor keeps it as last known good, nor do the logins that shared its
// call, even one that joined after the drop; the next request reads the
// store. Without a drop, the login's record is cached.
func TestLoginRacingSCIMChangeCachesNothing(t *testing.T) {
	for _, race := range []bool{false, true} {
		st := newFlightStore()
		fp := newFlightProxy(t, st)
		ctx := context.Background()
		first := startLogins(ctx, fp.Proxy, 1, assertion("Alice"))
		waitFor(t, "the store call", func() bool { return st.callCount() == 1 })
		const id = "id-alice-Alice"
		var follower func() []loginOutcome
		if race {
			fp.users.drop(id) // what Forget does when SCIM deactivates alice
			fp.known.forgetUser(id)
			follower = startLogins(ctx, fp.Proxy, 1, assertion("Alice"))
			waitFor(t, "the follower to wait", func() bool { return fp.jit.Waiting() == 2 })
		}
		close(st.release)
		for _, o := range first() {
			if o.err != nil || o.id != id {
				t.Fatalf("login: %+v", o)
			}
		}
		if follower != nil {
			follower()
		}
		cached := fp.users.get(id) != nil
		st.mu.Lock()
		key := st.logins[0].Key
		st.mu.Unlock()
		_, known := fp.known.lookup(key)
		if race && (cached || known) {
			t.Errorf("after a drop during the login: cached %v, last known good %v; want neither", cached, known)
		}
		if !race && !cached {
			t.Error("a login with no drop during it did not cache its user")
		}
	}
}
