package sqldir

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/test/pgtest"
)

// TestLoginsRunPreparedStatements: every query of a login, first, repeat,
// changed or linking a SCIM user, and of a read of one user runs a
// statement prepared when the store opened, on SQLite and on PostgreSQL.
// A query written at a call site differently from its prepared text would
// be parsed at every login again.
func TestLoginsRunPreparedStatements(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) Config
	}{
		{"SQLite", func(t *testing.T) Config { return Config{Path: filepath.Join(t.TempDir(), "gatehouse.db")} }},
		{"Postgres", func(t *testing.T) Config { return Config{Dialect: Postgres, DSN: pgtest.Shared(t).Database(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, tc.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if len(s.rstmts) == 0 || len(s.wstmts) == 0 {
				t.Fatalf("prepared %d reading and %d writing statements, want both", len(s.rstmts), len(s.wstmts))
			}
			var mu sync.Mutex
			var missed []string
			s.unprepared = func(q string) {
				mu.Lock()
				defer mu.Unlock()
				if !slices.Contains(missed, q) {
					missed = append(missed, q)
				}
			}
			login := func(subject, name string, fields map[string]string, groups ...string) provision.Result {
				t.Helper()
				f := map[string]string{provision.FieldUserName: name}
				for k, v := range fields {
					f[k] = v
				}
				res, err := s.Provision(ctx, provision.Login{Key: provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: subject},
					Claims: provision.Claims{Fields: f, Groups: groups, HasGroups: true}, LinkBy: provision.LinkByUserName})
				if err != nil {
					t.Fatalf("login of %s: %v", subject, err)
				}
				return res
			}
			first := login("alice", "alice", map[string]string{provision.FieldEmail: "alice@example.com"}, "staff", "admins")
			if first.Outcome != provision.Created {
				t.Fatalf("first login: %s, want created", first.Outcome)
			}
			if res := login("alice", "alice", map[string]string{provision.FieldEmail: "alice@example.com"}, "staff", "admins"); res.Outcome != provision.Unchanged {
				t.Errorf("repeat login: %s, want unchanged", res.Outcome)
			}
			if res := login("alice", "alice", map[string]string{provision.FieldEmail: "alice@example.org", provision.FieldGivenName: "Alice"}, "staff", "ops"); res.Outcome != provision.Updated {
				t.Errorf("changed login: %s, want updated", res.Outcome)
			}
			if res := login("bob", "bob", map[string]string{provision.FieldExternalID: "e-bob"}); res.Outcome != provision.Created {
				t.Errorf("first login with an external ID: %s, want created", res.Outcome)
			}
			scim, err := s.CreateUser(ctx, provision.User{UserName: "carol", Active: true})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			missed = nil // CreateUser is SCIM's, not a login
			mu.Unlock()
			if res := login("carol", "Carol", nil, "staff"); res.Outcome != provision.Linked || res.User.ID != scim.ID {
				t.Errorf("linking login: %s to %s, want linked to %s", res.Outcome, res.User.ID, scim.ID)
			}
			if _, err := s.User(ctx, first.User.ID); err != nil {
				t.Fatal(err)
			}
			for _, q := range missed {
				t.Errorf("run without a prepared statement: %s", q)
			}
		})
	}
}

// TestCacheBytesBoundEachConnection: cache_bytes is shared out among the
// writer and every reader as their cache_size, in pages of pageCost.
func TestCacheBytesBoundEachConnection(t *testing.T) {
	ctx := context.Background()
	const readers, bytes = 3, 4 << 20
	d, err := connect(ctx, Config{Path: filepath.Join(t.TempDir(), "gatehouse.db"), MaxOpenConns: readers, CacheBytes: bytes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := int64(bytes / pageCost / (readers + 1))
	var got int64
	err = d.write(ctx, func(q querier, _ time.Time) error { return q.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&got) })
	if err != nil || got != want {
		t.Errorf("writer's cache_size = %d (%v), want %d", got, err, want)
	}
	if n := d.r.Stats().MaxOpenConnections; n != readers {
		t.Errorf("readers = %d, want %d", n, readers)
	}
	// Every reader at once, so that each answers for itself.
	conns := make([]interface{ Close() error }, 0, readers)
	for range readers {
		c, err := d.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&got); err != nil || got != want {
			t.Errorf("a reader's cache_size = %d (%v), want %d", got, err, want)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestRebindCacheBounded: queries generated from SCIM filters vary
// without end; the rebind cache keeps at most maxBoundBytes of them, and
// a query beyond it is still rebound.
func TestRebindCacheBounded(t *testing.T) {
	d, err := newDialect(Postgres)
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	for i := range 2 * maxBoundBytes / 1000 {
		q := fmt.Sprintf("SELECT '%s' FROM t WHERE a = ? AND b = %d", pad, i)
		want := fmt.Sprintf("SELECT '%s' FROM t WHERE a = $1 AND b = %d", pad, i)
		if got := d.rebind(q); got != want {
			t.Fatalf("rebind of query %d = %q, want %q", i, got, want)
		}
	}
	if d.boundBytes > maxBoundBytes || d.boundBytes < maxBoundBytes/2 {
		t.Errorf("rebind cache holds %d bytes, want at most %d and near it", d.boundBytes, maxBoundBytes)
	}
}
