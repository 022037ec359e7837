package test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"gatehouse/provision/sqldir"
	"gatehouse/test/pgtest"
)

// benchStore is a managed SQL store the benchmarks run each figure on:
// an SQLite file and a fresh PostgreSQL database, in that order.
type benchStore struct {
	name   string
	config func(b *testing.B) sqldir.Config
}

var benchStores = []benchStore{
	{"sqlite", func(b *testing.B) sqldir.Config {
		return sqldir.Config{Path: filepath.Join(b.TempDir(), "bench.db")}
	}},
	{"postgres", func(b *testing.B) sqldir.Config {
		return sqldir.Config{Dialect: sqldir.Postgres, DSN: pgtest.Shared(b).Database(b)}
	}},
}

// openBenchStore opens a store with cfg; it is closed with b.
func openBenchStore(b *testing.B, cfg sqldir.Config) *sqldir.Store {
	b.Helper()
	st, err := sqldir.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// settle does to a freshly loaded PostgreSQL database what autovacuum
// does within a minute of a bulk load (its insert and analyze
// thresholds): VACUUM, which lets counts read the index alone, and
// ANALYZE, which gives the planner the table's statistics. A benchmark
// then measures a store in service, not one in its first minute.
func settle(b *testing.B, cfg sqldir.Config) {
	b.Helper()
	if cfg.Dialect != sqldir.Postgres {
		return
	}
	db, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
}
