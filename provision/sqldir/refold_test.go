package sqldir

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gatehouse/provision"
	"gatehouse/test/pgtest"
)

// legacyRows are rows written under the old fold (NFC and lower case):
// "Straße" and "STRASSE", and the groups "Ａdmins" and "admins", were two
// names then and are one now.
var legacyRows = []string{
	`INSERT INTO gatehouse_users (id, user_name, user_name_norm, created_at, updated_at) VALUES ('u1', 'STRASSE', 'strasse', {t1}, {t1})`,
	`INSERT INTO gatehouse_users (id, user_name, user_name_norm, created_at, updated_at) VALUES ('u2', 'Straße', 'straße', {t2}, {t2})`,
	`INSERT INTO gatehouse_users (id, user_name, user_name_norm, created_at, updated_at) VALUES ('u3', 'ＢＯＢ', 'ｂｏｂ', {t2}, {t2})`,
	`INSERT INTO gatehouse_groups (id, name, name_norm, created_at, updated_at) VALUES ('g1', 'Ａdmins', 'ａdmins', {t1}, {t1})`,
	`INSERT INTO gatehouse_groups (id, name, name_norm, created_at, updated_at) VALUES ('g2', 'admins', 'admins', {t2}, {t2})`,
	`INSERT INTO gatehouse_tombstones (user_name_norm, external_id, deleted_at) VALUES ('ｍａｌｌｏｒｙ', '', {t1})`,
}

// TestRefoldMigration: opening a database whose folds were computed the
// old way recomputes them; names that now collide are all kept (the one
// already holding the fold, else the oldest, keeps it; the others are
// marked and logged); lookups then use the new fold.
func TestRefoldMigration(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (Config, *sql.DB)
	}{
		{"sqlite", func(t *testing.T) (Config, *sql.DB) {
			path := filepath.Join(t.TempDir(), "old.db")
			raw, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range sqliteMigrations[:3] {
				mustExecRaw(t, raw, m)
			}
			mustExecRaw(t, raw, `PRAGMA user_version = 3`)
			return Config{Path: path}, raw
		}},
		{"postgres", func(t *testing.T) (Config, *sql.DB) {
			dsn := pgtest.Shared(t).Database(t)
			raw, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			mustExecRaw(t, raw, postgresMigrations[0])
			mustExecRaw(t, raw, `CREATE TABLE gatehouse_schema (component text NOT NULL, version integer NOT NULL)`)
			mustExecRaw(t, raw, `INSERT INTO gatehouse_schema (component, version) VALUES ('managed', 1)`)
			return Config{Dialect: Postgres, DSN: dsn}, raw
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, raw := tc.open(t)
			defer raw.Close()
			for _, q := range legacyRows {
				q = strings.ReplaceAll(q, "{t1}", "'2025-01-01T00:00:00.000Z'")
				q = strings.ReplaceAll(q, "{t2}", "'2025-02-01T00:00:00.000Z'")
				mustExecRaw(t, raw, q)
			}
			core, logs := observer.New(zap.WarnLevel)
			s, err := Open(context.Background(), cfg, WithLogger(zap.New(core)))
			if err != nil {
				t.Fatalf("Open(old folds) err = %v", err)
			}
			defer s.Close()
			norms := func(table string) map[string]string {
				out := map[string]string{}
				rows, err := raw.Query(`SELECT id, ` + map[string]string{"gatehouse_users": "user_name_norm", "gatehouse_groups": "name_norm"}[table] + ` FROM ` + table)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				for rows.Next() {
					var id, n string
					if err := rows.Scan(&id, &n); err != nil {
						t.Fatal(err)
					}
					out[id] = n
				}
				return out
			}
			users, groups := norms("gatehouse_users"), norms("gatehouse_groups")
			if users["u1"] != "strasse" || users["u3"] != "bob" || users["u2"] != "\x1fcollision u2 strasse" {
				t.Errorf("user folds after the migration = %q", users)
			}
			if groups["g2"] != "admins" || groups["g1"] != "\x1fcollision g1 admins" {
				t.Errorf("group folds after the migration = %q", groups)
			}
			var tomb string
			if err := raw.QueryRow(`SELECT user_name_norm FROM gatehouse_tombstones`).Scan(&tomb); err != nil || tomb != "mallory" {
				t.Errorf("tombstone fold = %q (%v), want mallory", tomb, err)
			}
			if logs.FilterMessageSnippet("fold to one name").Len() != 2 {
				t.Errorf("collision warnings = %v, want one for the users and one for the groups", logs.All())
			}
			// Both colliding users are still there; a new look-alike is
			// refused; the full-width name is found by its plain spelling.
			ctx := context.Background()
			for _, id := range []string{"u1", "u2"} {
				if _, err := s.User(ctx, id); err != nil {
					t.Errorf("User(%s) after the migration: %v", id, err)
				}
			}
			if _, err := s.CreateUser(ctx, provision.User{UserName: "strasse", Active: true}); !errors.Is(err, provision.ErrConflict) {
				t.Errorf("CreateUser(strasse) err = %v, want ErrConflict", err)
			}
			page, err := s.FindUsers(ctx, provision.Query{Filter: provision.Compare{Field: provision.FieldUserName, Op: provision.OpEq, Value: "bob", Fold: true}, Limit: 5})
			if err != nil || len(page.Items) != 1 || page.Items[0].ID != "u3" {
				t.Errorf("find bob folded: %+v %v, want u3", page.Items, err)
			}
		})
	}
}

func mustExecRaw(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestRefoldMigrationAccents: a store written while the fold kept accents
// and the dotless i ("àlice", "alıce" and "alice" were three names) is
// refolded when it opens: the oldest keeps the fold, the others are kept,
// marked and logged, and a new look-alike is refused.
func TestRefoldMigrationAccents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		open    func(t *testing.T) (Config, *sql.DB)
		version string // sets the schema back to before the accent refold
	}{
		{"sqlite", rawSQLite, `PRAGMA user_version = 4`},
		{"postgres", rawPostgres, `UPDATE gatehouse_schema SET version = 2 WHERE component = 'managed'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg, raw := tc.open(t)
			defer raw.Close()
			s, err := Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			for _, q := range []string{
				`INSERT INTO gatehouse_users (id, user_name, user_name_norm, created_at, updated_at) VALUES ('u1', 'alice', 'alice', {t1}, {t1})`,
				`INSERT INTO gatehouse_users (id, user_name, user_name_norm, created_at, updated_at) VALUES ('u2', 'àlice', 'àlice', {t2}, {t2})`,
				`INSERT INTO gatehouse_users (id, user_name, user_name_norm, created_at, updated_at) VALUES ('u3', 'alıce', 'alıce', {t2}, {t2})`,
				`INSERT INTO gatehouse_users (id, user_name, user_name_norm, created_at, updated_at) VALUES ('u4', 'Bjørn', 'bjørn', {t2}, {t2})`,
				`INSERT INTO gatehouse_groups (id, name, name_norm, created_at, updated_at) VALUES ('g1', 'ädmins', 'ädmins', {t1}, {t1})`,
				`INSERT INTO gatehouse_groups (id, name, name_norm, created_at, updated_at) VALUES ('g2', 'admins', 'admins', {t2}, {t2})`,
				`INSERT INTO gatehouse_tombstones (user_name_norm, external_id, deleted_at) VALUES ('mállory', '', {t1})`,
				// Back to the schema of that version: the later column goes.
				`ALTER TABLE gatehouse_users DROP COLUMN scim_fields`,
				tc.version,
			} {
				if q == tc.version {
					for _, u := range undoSearchSchema(tc.name) {
						mustExecRaw(t, raw, u)
					}
				}
				q = strings.ReplaceAll(q, "{t1}", "'2025-01-01T00:00:00.000Z'")
				q = strings.ReplaceAll(q, "{t2}", "'2025-02-01T00:00:00.000Z'")
				mustExecRaw(t, raw, q)
			}
			core, logs := observer.New(zap.WarnLevel)
			s, err = Open(ctx, cfg, WithLogger(zap.New(core)))
			if err != nil {
				t.Fatalf("Open(folds with accents) err = %v", err)
			}
			defer s.Close()
			want := map[string]string{
				"u1": "alice", "u2": "\x1fcollision u2 alice", "u3": "\x1fcollision u3 alice", "u4": "bjorn",
				"g1": "\x1fcollision g1 admins", "g2": "admins", "tomb": "mallory", // g2 held the fold already
			}
			for _, q := range []string{
				`SELECT id, user_name_norm FROM gatehouse_users`, `SELECT id, name_norm FROM gatehouse_groups`,
				`SELECT 'tomb', user_name_norm FROM gatehouse_tombstones`,
			} {
				rows, err := raw.Query(q)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var id, n string
					if err := rows.Scan(&id, &n); err != nil {
						t.Fatal(err)
					}
					if n != want[id] {
						t.Errorf("%s fold after the migration = %q, want %q", id, n, want[id])
					}
				}
				rows.Close()
			}
			if logs.FilterMessageSnippet("fold to one name").Len() != 2 {
				t.Errorf("collision warnings = %v, want one for the users and one for the groups", logs.All())
			}
			for _, n := range []string{"ALİCE", "alicé", "bjorn"} {
				if _, err := s.CreateUser(ctx, provision.User{UserName: n, Active: true}); !errors.Is(err, provision.ErrConflict) {
					t.Errorf("CreateUser(%s) after the migration err = %v, want ErrConflict", n, err)
				}
			}
		})
	}
}

// rawSQLite and rawPostgres give a store's configuration and a second,
// plain connection to the same database, for tests that set a schema back
// to an older version by hand.
func rawSQLite(t *testing.T) (Config, *sql.DB) {
	path := filepath.Join(t.TempDir(), "users.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Path: path}, raw
}

func rawPostgres(t *testing.T) (Config, *sql.DB) {
	dsn := pgtest.Shared(t).Database(t)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Dialect: Postgres, DSN: dsn}, raw
}
