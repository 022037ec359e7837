package sqldir_test

import (
	"context"
	"database/sql"
	_ "embed"
	"path/filepath"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/provision/storetest"
	"gatehouse/test/pgtest"
)

var (
	//go:embed testdata/legacy-postgres.sql
	legacyPostgres string
	//go:embed testdata/legacy-sqlite.sql
	legacySQLite string
)

// legacyMapping maps the fixture's tables; schema is "legacy." on
// PostgreSQL.
func legacyMapping(schema string) *sqldir.MappedConfig {
	return &sqldir.MappedConfig{
		Users: sqldir.UserTable{Table: schema + "app_users", Key: "usr_id", Columns: map[string]string{
			provision.FieldUserName: "login_nm", provision.FieldEmail: "mail_addr", provision.FieldDisplayName: "full_nm",
			provision.FieldGivenName: "first_nm", provision.FieldFamilyName: "last_nm", "department": "dept_cd", "office": "office_cd"},
			Disabled: &sqldir.DisabledColumn{Column: "is_locked", Value: "1", EnabledValue: "0"}},
		Groups:      &sqldir.GroupTable{Table: schema + "app_roles", Key: "role_id", Name: "role_nm"},
		Memberships: &sqldir.MembershipTable{Table: schema + "app_user_roles", User: "usr_id", Group: "role_id"},
	}
}

// openMappedPostgres makes a database holding the legacy fixture and
// opens a store mapped onto it; the returned *sql.DB reads the fixture.
func openMappedPostgres(t *testing.T) (*sqldir.Mapped, *sql.DB, sqldir.Config) {
	t.Helper()
	dsn := pgtest.Shared(t).Database(t)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(legacyPostgres); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	cfg := sqldir.Config{Dialect: sqldir.Postgres, DSN: dsn, Mapped: legacyMapping("legacy.")}
	s, err := sqldir.OpenMapped(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenMapped(postgres) err = %v", err)
	}
	return s, raw, cfg
}

func openMappedSQLite(t *testing.T) (*sqldir.Mapped, *sql.DB, sqldir.Config) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(legacySQLite); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	cfg := sqldir.Config{Path: path, Mapped: legacyMapping("")}
	s, err := sqldir.OpenMapped(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenMapped(sqlite) err = %v", err)
	}
	return s, raw, cfg
}

func TestConformanceMappedPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provision.Store {
		s, _, _ := openMappedPostgres(t)
		return s
	})
}

func TestConformanceMappedSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provision.Store {
		s, _, _ := openMappedSQLite(t)
		return s
	})
}
