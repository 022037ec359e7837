package sqldir_test

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
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

func mappedLogin(subject, name string, groups ...string) provision.Login {
	l := provision.Login{Key: provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: subject},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: name, provision.FieldEmail: name + "@example.test"}}}
	if groups != nil {
		l.Claims.Groups, l.Claims.HasGroups = provision.SortedUnique(groups), true
	}
	return l
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func queryStrings(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s.String)
	}
	return out
}

// TestMappedClaimsLegacyRow: the application's existing user is claimed
// by the first login with the same user name (in another case), its other
// columns are left alone, and a role the application granted survives the
// IdP's group sync.
func TestMappedClaimsLegacyRow(t *testing.T) {
	s, raw, _ := openMappedPostgres(t)
	defer s.Close()
	ctx := context.Background()
	mustExec(t, raw, `INSERT INTO legacy.app_users (login_nm, mail_addr, pwd_hash, notes) VALUES ('Alice', 'old@example.test', 'kept-hash', 'kept-note')`)
	mustExec(t, raw, `INSERT INTO legacy.app_roles (role_nm) VALUES ('admins'), ('staff')`)
	mustExec(t, raw, `INSERT INTO legacy.app_user_roles (usr_id, role_id) SELECT u.usr_id, r.role_id FROM legacy.app_users u, legacy.app_roles r WHERE r.role_nm = 'admins'`)
	legacyID := queryStrings(t, raw, `SELECT usr_id::text FROM legacy.app_users`)[0]

	l := mappedLogin("alice-subject", "alice", "staff", "readers")
	l.LinkBy = provision.LinkByUserName
	res, err := s.Provision(ctx, l)
	if err != nil {
		t.Fatalf("first login: %v", err)
	}
	if res.Outcome != provision.Linked || res.User.ID != legacyID {
		t.Fatalf("first login: outcome %q user %q, want linked to row %s", res.Outcome, res.User.ID, legacyID)
	}
	if n := queryStrings(t, raw, `SELECT count(*)::text FROM legacy.app_users`); n[0] != "1" {
		t.Errorf("app_users has %s rows, want the one legacy row", n[0])
	}
	got := queryStrings(t, raw, `SELECT concat_ws('|', login_nm, mail_addr, pwd_hash, notes) FROM legacy.app_users`)
	if want := "alice|alice@example.test|kept-hash" + pad(60-len("kept-hash")) + "|kept-note"; got[0] != want {
		t.Errorf("row = %q, want %q: the mapped columns updated and the others left alone", got[0], want)
	}
	roles := queryStrings(t, raw, `SELECT r.role_nm FROM legacy.app_user_roles ur JOIN legacy.app_roles r USING (role_id) ORDER BY 1`)
	if want := []string{"admins", "readers", "staff"}; !equal(roles, want) {
		t.Errorf("roles = %v, want %v", roles, want)
	}
	if n := queryStrings(t, raw, `SELECT count(*)::text FROM legacy.app_roles WHERE role_nm = 'staff'`); n[0] != "1" {
		t.Errorf("%s staff roles: the existing role must be reused", n[0])
	}
	// The IdP stops asserting any group: its own memberships go, the
	// application's grant stays.
	l.Claims.Groups = []string{}
	if res, err = s.Provision(ctx, l); err != nil || res.Outcome != provision.Updated {
		t.Fatalf("login without groups: %v %v", res.Outcome, err)
	}
	roles = queryStrings(t, raw, `SELECT r.role_nm FROM legacy.app_user_roles ur JOIN legacy.app_roles r USING (role_id) ORDER BY 1`)
	if want := []string{"admins"}; !equal(roles, want) {
		t.Errorf("roles after the IdP dropped its groups = %v, want %v", roles, want)
	}
	// Asserting the application's own role, then dropping it, leaves it.
	l.Claims.Groups = []string{"admins"}
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	l.Claims.Groups = []string{}
	if _, err := s.Provision(ctx, l); err != nil {
		t.Fatal(err)
	}
	roles = queryStrings(t, raw, `SELECT r.role_nm FROM legacy.app_user_roles ur JOIN legacy.app_roles r USING (role_id) ORDER BY 1`)
	if want := []string{"admins"}; !equal(roles, want) {
		t.Errorf("roles after asserting and dropping the app's own role = %v, want %v", roles, want)
	}
}

func pad(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = ' '
	}
	return string(b)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMappedRefusals: a taken name without linking, a value longer than
// its column and a login of a row the application locked are refused
// with clear errors, and the table is left as it was.
func TestMappedRefusals(t *testing.T) {
	s, raw, _ := openMappedPostgres(t)
	defer s.Close()
	ctx := context.Background()
	mustExec(t, raw, `INSERT INTO legacy.app_users (login_nm, is_locked) VALUES ('bob', 0), ('carol', 1)`)
	before := queryStrings(t, raw, `SELECT concat_ws('|', usr_id, login_nm, mail_addr, is_locked) FROM legacy.app_users ORDER BY usr_id`)

	l := mappedLogin("bob-subject", "BOB")
	l.LinkBy = provision.LinkNone
	if _, err := s.Provision(ctx, l); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("login of a taken name without linking: err = %v, want ErrConflict", err)
	}
	long := mappedLogin("long-subject", strings.Repeat("x", 65))
	if _, err := s.Provision(ctx, long); !errors.Is(err, provision.ErrInvalid) || !strings.Contains(err.Error(), "login_nm holds 64") {
		t.Errorf("65-character user name into varchar(64): err = %v, want ErrInvalid naming the column", err)
	}
	c := mappedLogin("carol-subject", "carol")
	c.LinkBy = provision.LinkByUserName
	if _, err := s.Provision(ctx, c); !errors.Is(err, provision.ErrDisabled) {
		t.Errorf("login of a locked legacy row: err = %v, want ErrDisabled", err)
	}
	after := queryStrings(t, raw, `SELECT concat_ws('|', usr_id, login_nm, mail_addr, is_locked) FROM legacy.app_users ORDER BY usr_id`)
	if !equal(before, after) {
		t.Errorf("table changed by refused logins:\nbefore %v\nafter  %v", before, after)
	}
}

// TestMappedRowDeletedByApplication: when the application deletes a row,
// the next login makes a new one instead of failing.
func TestMappedRowDeletedByApplication(t *testing.T) {
	s, raw, _ := openMappedPostgres(t)
	defer s.Close()
	ctx := context.Background()
	first, err := s.Provision(ctx, mappedLogin("dave-subject", "dave", "staff"))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, raw, `DELETE FROM legacy.app_user_roles`)
	mustExec(t, raw, `DELETE FROM legacy.app_users`)
	again, err := s.Provision(ctx, mappedLogin("dave-subject", "dave", "staff"))
	if err != nil || again.Outcome != provision.Created || again.User.ID == first.User.ID {
		t.Fatalf("login after the application deleted the row: %q %q %v, want a new row", again.Outcome, again.User.ID, err)
	}
	if n := queryStrings(t, raw, `SELECT count(*)::text FROM legacy.app_user_roles`); n[0] != "1" {
		t.Errorf("%s memberships, want the new row's one", n[0])
	}
}

// TestMappedConcurrentFirstLoginsOneRow counts the application's rows:
// fifty parallel first logins of one user leave exactly one.
func TestMappedConcurrentFirstLoginsOneRow(t *testing.T) {
	for name, open := range map[string]func(*testing.T) (*sqldir.Mapped, *sql.DB, sqldir.Config){
		"postgres": openMappedPostgres, "sqlite": openMappedSQLite} {
		t.Run(name, func(t *testing.T) {
			s, raw, _ := open(t)
			defer s.Close()
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.Provision(context.Background(), mappedLogin("erin-subject", "erin", "staff")); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("concurrent login: %v", err)
			}
			for _, q := range []string{`SELECT count(*) FROM %sapp_users`, `SELECT count(*) FROM %sapp_roles`, `SELECT count(*) FROM %sapp_user_roles`} {
				schema := ""
				if name == "postgres" {
					schema = "legacy."
				}
				if n := queryStrings(t, raw, fmt.Sprintf(q, schema)); n[0] != "1" {
					t.Errorf("%s = %s, want 1", fmt.Sprintf(q, schema), n[0])
				}
			}
		})
	}
}

// TestMappedRenameToTakenName: a login that renames its user to the name
// of another row of the application is refused, and nothing changes.
func TestMappedRenameToTakenName(t *testing.T) {
	s, raw, _ := openMappedPostgres(t)
	defer s.Close()
	ctx := context.Background()
	mustExec(t, raw, `INSERT INTO legacy.app_users (login_nm) VALUES ('Frank')`)
	if _, err := s.Provision(ctx, mappedLogin("gina-subject", "gina")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Provision(ctx, mappedLogin("gina-subject", "frank")); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("rename onto an application row's name: err = %v, want ErrConflict", err)
	}
	if names := queryStrings(t, raw, `SELECT login_nm FROM legacy.app_users ORDER BY usr_id`); !equal(names, []string{"Frank", "gina"}) {
		t.Errorf("names = %v, want [Frank gina]", names)
	}
}
