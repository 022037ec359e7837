package realstore

import (
	"cmp"
	"context"
	"path/filepath"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/test/pgtest"
)

// SQLite opens an empty SQLite store in t.TempDir(); it is closed with t.
func SQLite(t testing.TB) provision.Store {
	t.Helper()
	return open(t, sqldir.Config{Path: filepath.Join(t.TempDir(), "users.db")})
}

// Postgres opens an empty store in a new database of the shared PostgreSQL
// cluster; it is closed with t. The calling package's TestMain must call
// pgtest.Main, which removes the cluster after the tests.
func Postgres(t testing.TB) provision.Store {
	t.Helper()
	return open(t, sqldir.Config{Dialect: sqldir.Postgres, DSN: pgtest.Shared(t).Database(t)})
}

func open(t testing.TB, cfg sqldir.Config) provision.Store {
	t.Helper()
	st, err := sqldir.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("realstore: open %s store: %v", cmp.Or(cfg.Dialect, sqldir.SQLite), err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
