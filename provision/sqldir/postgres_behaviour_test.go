package sqldir_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/test/pgtest"
)

// rowVersions lists every row's xmin and ctid in the given tables: any
// insert, update or delete changes it, so an equal list means no row was
// written.
func rowVersions(t *testing.T, db *sql.DB, tables ...string) string {
	t.Helper()
	var sb strings.Builder
	for _, tbl := range tables {
		var v sql.NullString
		if err := db.QueryRow(`SELECT string_agg(xmin::text || '@' || ctid::text, ',' ORDER BY ctid) FROM ` + tbl).Scan(&v); err != nil {
			t.Fatalf("row versions of %s: %v", tbl, err)
		}
		fmt.Fprintf(&sb, "%s[%s] ", tbl, v.String)
	}
	return sb.String()
}

func TestUnchangedLoginWritesNoRowPostgres(t *testing.T) {
	managed, dsn := openPostgres(t)
	defer managed.Close()
	rawManaged, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer rawManaged.Close()
	mapped, rawMapped, _ := openMappedPostgres(t)
	defer mapped.Close()
	for _, tc := range []struct {
		name   string
		store  provision.Store
		db     *sql.DB
		tables []string
	}{
		{"managed", managed, rawManaged, []string{"gatehouse_users", "gatehouse_identities", "gatehouse_groups", "gatehouse_memberships"}},
		{"mapped", mapped, rawMapped, []string{"legacy.app_users", "legacy.app_roles", "legacy.app_user_roles",
			"gatehouse_mapped_users", "gatehouse_mapped_identities", "gatehouse_mapped_memberships"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l := mappedLogin("zed-subject", "zed", "staff", "readers")
			l.Claims.Extra = map[string]string{"department": "R&D"}
			if _, err := tc.store.Provision(ctx, l); err != nil {
				t.Fatal(err)
			}
			before := rowVersions(t, tc.db, tc.tables...)
			for range 3 {
				if res, err := tc.store.Provision(ctx, l); err != nil || res.Outcome != provision.Unchanged {
					t.Fatalf("repeat login: %q %v", res.Outcome, err)
				}
			}
			if after := rowVersions(t, tc.db, tc.tables...); after != before {
				t.Errorf("an unchanged login wrote rows:\nbefore %s\nafter  %s", before, after)
			}
			l.Claims.Fields[provision.FieldEmail] = "zed@new.example.test"
			if _, err := tc.store.Provision(ctx, l); err != nil {
				t.Fatal(err)
			}
			if after := rowVersions(t, tc.db, tc.tables...); after == before {
				t.Errorf("row versions did not move after a changed login: the check cannot see writes")
			}
		})
	}
}

// hostile are values that break naive SQL, LIKE patterns, JSON and
// encodings; each goes into every column. (Control characters such as a
// tab, and padding, never reach a store: provision refuses them.)
var hostile = []string{`' OR '1'='1`, `'; DROP TABLE legacy.app_users; --`, `100%_x[y]`, `\`, `\\'`, `"quoted"`,
	`{"json": true}`, "Zoë 😀 名前", "e\u0301", `$1 ? @p1`, `*)(uid=*`, "inner  spaces", strings.Repeat("é", 30)}

func TestHostileValuesInEveryColumnPostgres(t *testing.T) {
	managed, _ := openPostgres(t)
	defer managed.Close()
	mapped, _, _ := openMappedPostgres(t)
	defer mapped.Close()
	for name, s := range map[string]provision.Store{"managed": managed, "mapped": mapped} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for i, v := range hostile {
				short := v
				if len([]rune(short)) > 28 {
					short = string([]rune(short)[:28])
				}
				fields := map[string]string{provision.FieldUserName: fmt.Sprintf("%s%d", short, i), provision.FieldEmail: v,
					provision.FieldDisplayName: v, provision.FieldGivenName: short, provision.FieldFamilyName: short}
				l := provision.Login{Key: provision.Key{IdP: v, Kind: "nameid", Subject: v},
					Claims: provision.Claims{Fields: fields, Extra: map[string]string{"department": short}, Groups: []string{v}, HasGroups: true}}
				res, err := s.Provision(ctx, l)
				if err != nil {
					t.Fatalf("value %q: %v", v, err)
				}
				got, err := s.User(ctx, res.User.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Email != v || got.DisplayName != v || got.Extra["department"] != short || len(got.Groups) != 1 || got.Groups[0] != v {
					t.Errorf("value %q stored as %+v", v, got)
				}
				if again, err := s.Provision(ctx, l); err != nil || again.Outcome != provision.Unchanged || again.User.ID != res.User.ID {
					t.Errorf("value %q: repeat login %q %v", v, again.Outcome, err)
				}
			}
		})
	}
}

// TestProcedurePostgres: with a procedure configured, creates and updates
// go through it, and an unchanged login does not call it.
func TestProcedurePostgres(t *testing.T) {
	dsn := pgtest.Shared(t).Database(t)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	mustExec(t, raw, legacyPostgres)
	mustExec(t, raw, `CREATE TABLE legacy.calls (n serial, login text)`)
	mustExec(t, raw, `CREATE FUNCTION legacy.upsert_user(p_login text, p_mail text, p_key text) RETURNS integer AS $$
		DECLARE k integer;
		BEGIN
			INSERT INTO legacy.calls (login) VALUES (p_login);
			IF p_key IS NULL THEN
				INSERT INTO legacy.app_users (login_nm, mail_addr, notes) VALUES (p_login, p_mail, 'by procedure') RETURNING usr_id INTO k;
			ELSE
				UPDATE legacy.app_users SET login_nm = p_login, mail_addr = p_mail WHERE usr_id = p_key::integer RETURNING usr_id INTO k;
			END IF;
			RETURN k;
		END $$ LANGUAGE plpgsql`)
	cfg := sqldir.Config{Dialect: sqldir.Postgres, DSN: dsn, Mapped: &sqldir.MappedConfig{
		Users: sqldir.UserTable{Table: "legacy.app_users", Key: "usr_id",
			Columns: map[string]string{provision.FieldUserName: "login_nm", provision.FieldEmail: "mail_addr"}},
		Procedure: &sqldir.Procedure{Name: "legacy.upsert_user", KeyParam: "p_key",
			Params: map[string]string{provision.FieldUserName: "p_login", provision.FieldEmail: "p_mail"}},
	}}
	s, err := sqldir.OpenMapped(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	l := mappedLogin("pat-subject", "pat")
	first, err := s.Provision(ctx, l)
	if err != nil || first.Outcome != provision.Created {
		t.Fatalf("first login: %q %v", first.Outcome, err)
	}
	if again, err := s.Provision(ctx, l); err != nil || again.Outcome != provision.Unchanged {
		t.Fatalf("repeat login: %q %v", again.Outcome, err)
	}
	l.Claims.Fields[provision.FieldEmail] = "pat@new.example.test"
	if res, err := s.Provision(ctx, l); err != nil || res.Outcome != provision.Updated || res.User.ID != first.User.ID {
		t.Fatalf("changed login: %q %v", res.Outcome, err)
	}
	if calls := queryStrings(t, raw, `SELECT login FROM legacy.calls ORDER BY n`); !equal(calls, []string{"pat", "pat"}) {
		t.Errorf("procedure calls = %v, want two (create, update) and none for the unchanged login", calls)
	}
	row := queryStrings(t, raw, `SELECT concat_ws('|', usr_id, mail_addr, notes) FROM legacy.app_users`)
	if want := first.User.ID + "|pat@new.example.test|by procedure"; len(row) != 1 || row[0] != want {
		t.Errorf("rows = %v, want [%s]", row, want)
	}
}

// TestDatabaseRestart: logins fail cleanly while PostgreSQL is down and
// succeed again once it is back, with no reopening of the store.
func TestDatabaseRestart(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.Database(t)
	s, err := sqldir.Open(context.Background(), sqldir.Config{Dialect: sqldir.Postgres, DSN: dsn, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Provision(ctx, mappedLogin("a", "before")); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	for _, l := range []provision.Login{mappedLogin("a", "before"), mappedLogin("b", "during")} {
		if _, err := s.Provision(ctx, l); err == nil || errors.Is(err, provision.ErrConflict) || errors.Is(err, provision.ErrInvalid) {
			t.Errorf("login while the database is down: err = %v, want a store failure", err)
		}
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping() = nil while the database is down")
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Provision(ctx, mappedLogin("b", "during"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("login after the restart still fails: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res, err := s.Provision(ctx, mappedLogin("a", "before")); err != nil || res.Outcome != provision.Unchanged {
		t.Errorf("repeat login after the restart: %q %v", res.Outcome, err)
	}
}
