package sqldir_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
)

// keys lists the problems' keys.
func keys(ps []sqldir.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Key
	}
	return out
}

// TestConfigProblemsKeys: every problem Validate finds carries its key
// within the store's section, mapped ones under mapped.; Validate's text
// is the same problems, "key: message".
func TestConfigProblemsKeys(t *testing.T) {
	users := sqldir.UserTable{Table: "app_users", Key: "id", Columns: map[string]string{provision.FieldUserName: "login"}}
	for _, tc := range []struct {
		name string
		cfg  sqldir.Config
		want []string
	}{
		{"GoodSQLite", sqldir.Config{Path: "/var/lib/gatehouse/g.db"}, []string{}},
		{"GoodPostgres", sqldir.Config{Dialect: sqldir.Postgres, DSN: "postgres://db/app"}, []string{}},
		{"NoPath", sqldir.Config{Dialect: sqldir.SQLite}, []string{"path"}},
		{"DSNOnSQLite", sqldir.Config{Path: "g.db", DSN: "x"}, []string{"dsn"}},
		{"DSNAndFile", sqldir.Config{Dialect: sqldir.Postgres, DSN: "x", DSNFile: "/run/secrets/dsn"}, []string{"dsn"}},
		{"NoDSN", sqldir.Config{Dialect: sqldir.SQLServer}, []string{"dsn"}},
		{"PathOnServer", sqldir.Config{Dialect: sqldir.Postgres, DSN: "x", Path: "g.db"}, []string{"path"}},
		{"Negative", sqldir.Config{Dialect: sqldir.Postgres, DSN: "x", MaxOpenConns: -1, ConnMaxLifetime: -time.Second, Timeout: -1},
			[]string{"max_open_conns", "conn_max_lifetime", "timeout"}},
		{"IdleAboveOpen", sqldir.Config{Dialect: sqldir.Postgres, DSN: "x", MaxOpenConns: 2, MaxIdleConns: 3}, []string{"max_idle_conns"}},
		{"CacheBytesTooSmall", sqldir.Config{Path: "g.db", CacheBytes: 4096}, []string{"cache_bytes"}},
		{"CacheBytesNegative", sqldir.Config{Path: "g.db", CacheBytes: -1}, []string{"cache_bytes"}},
		{"CacheBytesOnServer", sqldir.Config{Dialect: sqldir.Postgres, DSN: "x", CacheBytes: 8 << 20}, []string{"cache_bytes"}},
		{"NegativeReadersOnSQLite", sqldir.Config{Path: "g.db", MaxOpenConns: -1}, []string{"max_open_conns"}},
		{"MappedNoUserName", sqldir.Config{Path: "g.db", Mapped: &sqldir.MappedConfig{
			Users: sqldir.UserTable{Table: "app_users", Key: "id", Columns: map[string]string{provision.FieldEmail: "mail"}}}},
			[]string{"mapped.users.columns.user_name"}},
		{"MappedBadName", sqldir.Config{Path: "g.db", Mapped: &sqldir.MappedConfig{
			Users: sqldir.UserTable{Table: "app users", Key: "id", Columns: map[string]string{provision.FieldUserName: "login"}}}},
			[]string{"mapped.users.table"}},
		{"ProcedureOnSQLite", sqldir.Config{Path: "g.db", Mapped: &sqldir.MappedConfig{Users: users,
			Procedure: &sqldir.Procedure{Name: "p", Params: map[string]string{provision.FieldUserName: "login"}}}},
			[]string{"mapped.procedure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := tc.cfg.WithDefaults().Problems()
			if diff := cmp.Diff(tc.want, keys(ps)); diff != "" {
				t.Errorf("keys (-want +got):\n%s\n%v", diff, ps)
			}
			err := tc.cfg.WithDefaults().Validate()
			if (err == nil) != (len(ps) == 0) {
				t.Fatalf("Validate() = %v with problems %v", err, ps)
			}
			for _, p := range ps {
				if p.Err == nil || !strings.Contains(err.Error(), p.Key+": "+p.Err.Error()) {
					t.Errorf("Validate() = %q lacks %q", err, p.Key+": "+fmt.Sprint(p.Err))
				}
			}
		})
	}
}

// TestCheckMappedProblemKeys: what Check finds in the database is keyed
// within the store's section, so that the caller needs no guess from the
// message.
func TestCheckMappedProblemKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE app_users (id INTEGER PRIMARY KEY, login VARCHAR(64) NOT NULL, age INTEGER)`); err != nil {
		t.Fatal(err)
	}
	mapped := func(table string, cols map[string]string, groups bool) sqldir.Config {
		m := &sqldir.MappedConfig{Users: sqldir.UserTable{Table: table, Key: "id", Columns: cols}}
		if groups {
			m.Groups = &sqldir.GroupTable{Table: "app_roles", Key: "id", Name: "name"}
			m.Memberships = &sqldir.MembershipTable{Table: "app_user_roles", User: "user_id", Group: "role_id"}
		}
		return sqldir.Config{Path: path, Mapped: m}
	}
	for _, tc := range []struct {
		name string
		cfg  sqldir.Config
		want []string
	}{
		{"Matches", mapped("app_users", map[string]string{provision.FieldUserName: "login"}, false), nil},
		{"MissingColumn", mapped("app_users", map[string]string{provision.FieldUserName: "login", provision.FieldEmail: "mail"}, false),
			[]string{"mapped.users.columns.email"}},
		{"NotText", mapped("app_users", map[string]string{provision.FieldUserName: "login", provision.FieldEmail: "age"}, false),
			[]string{"mapped.users.columns.email"}},
		{"MissingTable", mapped("nope", map[string]string{provision.FieldUserName: "login"}, false), []string{"mapped.users.table"}},
		{"MissingGroupTables", mapped("app_users", map[string]string{provision.FieldUserName: "login"}, true),
			[]string{"mapped.groups.table", "mapped.memberships.table"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := sqldir.Check(context.Background(), tc.cfg)
			for _, w := range tc.want {
				if !slices.Contains(keys(ps), w) {
					t.Errorf("no problem at %s in %v", w, ps)
				}
			}
			for _, p := range ps {
				if !strings.HasPrefix(p.Key, "mapped.") || p.Err == nil || strings.HasPrefix(p.Err.Error(), "mapped.") {
					t.Errorf("problem %q: key %q, want one under mapped. and a message without it", p, p.Key)
				}
			}
			if tc.want == nil && len(ps) > 0 {
				t.Errorf("problems in a matching database: %v", ps)
			}
		})
	}
	if ps := sqldir.CheckMapped(context.Background(), sqldir.Config{Path: path}); len(ps) != 1 || ps[0].Key != "mapped" {
		t.Errorf("CheckMapped without mapped tables = %v, want one problem at mapped", ps)
	}
}

// TestCheckUnreachableHasNoKey: a database that cannot be reached is no
// one setting's fault: the problem has no key.
func TestCheckUnreachableHasNoKey(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := sqldir.Config{Dialect: sqldir.Postgres, Timeout: 2 * time.Second,
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", port)}
	ps := sqldir.Check(context.Background(), cfg)
	if len(ps) != 1 || ps[0].Key != "" || !strings.Contains(ps[0].Error(), "connect to postgres") {
		t.Errorf("Check(closed port) = %v, want one problem without a key", ps)
	}
}

// TestDSNFileIsNotReadHere: sqldir reads no secret file; the caller reads
// dsn_file into DSN. A config that names only the file is refused
// rather than connecting with an empty DSN (libpq's defaults).
func TestDSNFileIsNotReadHere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(path, []byte("postgres://postgres@127.0.0.1:1/x?sslmode=disable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqldir.Open(context.Background(), sqldir.Config{Dialect: sqldir.Postgres, DSNFile: path})
	if err == nil || !strings.Contains(err.Error(), "dsn: empty") || errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open with only dsn_file: err = %v, want the DSN refused as empty", err)
	}
}
