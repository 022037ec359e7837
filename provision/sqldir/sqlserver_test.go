package sqldir_test

import (
	"context"
	"database/sql"
	_ "embed"
	"os"
	"testing"

	mssql "github.com/microsoft/go-mssqldb"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/provision/storetest"
)

//go:embed testdata/legacy-sqlserver.sql
var legacySQLServer string

// The SQL Server suite runs against a real server named by
// GATEHOUSE_TEST_SQLSERVER_DSN (see the README); no machine here can run
// one. The database it names is emptied of gatehouse's and the fixture's
// tables before each case.
const sqlServerEnv = "GATEHOUSE_TEST_SQLSERVER_DSN"

var sqlServerTables = []string{"gatehouse_memberships", "gatehouse_identities", "gatehouse_groups", "gatehouse_users", "gatehouse_tombstones",
	"gatehouse_mapped_memberships", "gatehouse_mapped_identities", "gatehouse_mapped_users", "gatehouse_schema",
	"legacy_app_user_roles", "legacy_app_roles", "legacy_app_users"}

func sqlServer(t *testing.T) (string, *sql.DB) {
	t.Helper()
	dsn := os.Getenv(sqlServerEnv)
	if dsn == "" {
		t.Skip(sqlServerEnv + " is not set: no SQL Server on this machine (the sqlserver dialect's SQL is tested in dialect_test.go)")
	}
	c, err := mssql.NewConnector(dsn)
	if err != nil {
		t.Fatalf("%s: %v", sqlServerEnv, err)
	}
	raw := sql.OpenDB(c)
	t.Cleanup(func() { raw.Close() })
	for _, tbl := range sqlServerTables {
		if _, err := raw.Exec("DROP TABLE IF EXISTS " + tbl); err != nil {
			t.Fatalf("drop %s: %v", tbl, err)
		}
	}
	return dsn, raw
}

func TestConformanceSQLServer(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provision.Store {
		dsn, _ := sqlServer(t)
		s, err := sqldir.Open(context.Background(), sqldir.Config{Dialect: sqldir.SQLServer, DSN: dsn})
		if err != nil {
			t.Fatalf("Open(sqlserver) err = %v", err)
		}
		return s
	})
}

func TestConformanceMappedSQLServer(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provision.Store {
		dsn, raw := sqlServer(t)
		if _, err := raw.Exec(legacySQLServer); err != nil {
			t.Fatalf("fixture: %v", err)
		}
		s, err := sqldir.OpenMapped(context.Background(), sqldir.Config{Dialect: sqldir.SQLServer, DSN: dsn, Mapped: legacyMapping("legacy_")})
		if err != nil {
			t.Fatalf("OpenMapped(sqlserver) err = %v", err)
		}
		return s
	})
}
