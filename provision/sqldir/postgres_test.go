package sqldir_test

import (
	"context"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/provision/storetest"
	"gatehouse/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openPostgres opens a managed store in a new database of the shared
// cluster.
func openPostgres(t *testing.T) (*sqldir.Store, string) {
	t.Helper()
	dsn := pgtest.Shared(t).Database(t)
	s, err := sqldir.Open(context.Background(), sqldir.Config{Dialect: sqldir.Postgres, DSN: dsn})
	if err != nil {
		t.Fatalf("Open(postgres) err = %v", err)
	}
	return s, dsn
}

func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provision.Store {
		s, _ := openPostgres(t)
		return s
	})
}
