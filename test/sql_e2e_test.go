package test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/test/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgresStoppedMidRun: PostgreSQL stops between two logins. The
// second gets the 503 page with an error ID; readyz stays 200 (the
// instance degrades around the store) and ?verbose names the store;
// once the server is back, the same gatehouse logs the user in, without a
// restart.
func TestPostgresStoppedMidRun(t *testing.T) {
	c := pgtest.Start(t)
	st, err := sqldir.Open(context.Background(), sqldir.Config{Dialect: sqldir.Postgres, DSN: c.Database(t), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarness(t, options{store: st})
	readResp(t, h.login(h.browser(), "/", alice))

	c.Stop()
	bob := person{nameID: "b0b-0002", uid: "bob", mail: "bob@example.com", display: "Bob", family: "Builder", groups: []string{"staff"}}
	resp := h.login(h.browser(), "/", bob)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "error ID") {
		t.Fatalf("login with PostgreSQL stopped: %d %s", resp.StatusCode, body)
	}
	if len(h.upstream.all()) != 1 {
		t.Errorf("the refused login reached the upstream")
	}
	if code, body := h.get(h.browser(), "/.gatehouse/readyz?verbose", nil); code != http.StatusOK || !strings.Contains(body, "[-]store failed\n") {
		t.Errorf("readyz with PostgreSQL stopped = %d %q, want 200 naming the store", code, body)
	}

	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := h.get(h.browser(), "/.gatehouse/readyz?strict", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after the restart = %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	readResp(t, h.login(h.browser(), "/", bob))
	if up := h.upstream.last(t); up.Header.Get("X-Forwarded-User") != "bob" {
		t.Errorf("login after the restart: upstream user %q", up.Header.Get("X-Forwarded-User"))
	}
}

// TestMappedPostgresEndToEnd: a SAML login provisions into an
// application's own table, and the upstream's identity headers come from
// that row; a repeat login leaves the row untouched.
func TestMappedPostgresEndToEnd(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(`CREATE TABLE tbl_user (
		user_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		logon     varchar(32) NOT NULL,
		email     varchar(120),
		full_name varchar(120),
		emp_no    varchar(16),
		disabled  boolean NOT NULL DEFAULT false,
		theme     varchar(16) DEFAULT 'classic'
	)`); err != nil {
		t.Fatal(err)
	}
	st, err := sqldir.OpenMapped(context.Background(), sqldir.Config{Dialect: sqldir.Postgres, DSN: dsn, Mapped: &sqldir.MappedConfig{
		Users: sqldir.UserTable{Table: "tbl_user", Key: "user_id", Columns: map[string]string{provision.FieldUserName: "logon",
			provision.FieldEmail: "email", provision.FieldDisplayName: "full_name", "employee_id": "emp_no"},
			Disabled: &sqldir.DisabledColumn{Column: "disabled", Value: "true", EnabledValue: "false"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarness(t, options{store: st})
	readResp(t, h.login(h.browser(), "/", alice))
	up := h.upstream.last(t)
	if up.Header.Get("X-Forwarded-User") != "alice" || up.Header.Get("X-Forwarded-Email") != "alice@example.com" {
		t.Errorf("upstream headers = %v", up.Header)
	}
	var row string
	if err := raw.QueryRow(`SELECT concat_ws('|', logon, email, full_name, emp_no, disabled::text, theme) FROM tbl_user`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if want := "alice|alice@example.com|Alice Archer|" + alice.employeeID + "|false|classic"; row != want {
		t.Errorf("row = %q, want %q", row, want)
	}
	var xmin string
	raw.QueryRow(`SELECT xmin::text FROM tbl_user`).Scan(&xmin)
	readResp(t, h.login(h.browser(), "/", alice))
	var again string
	raw.QueryRow(`SELECT xmin::text FROM tbl_user`).Scan(&again)
	if again != xmin {
		t.Errorf("a repeat login rewrote the row (xmin %s -> %s)", xmin, again)
	}
	// The application locks the account: the next login is refused.
	if _, err := raw.Exec(`UPDATE tbl_user SET disabled = true`); err != nil {
		t.Fatal(err)
	}
	if resp := h.login(h.browser(), "/", alice); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login of a row the application disabled: %d, want 403", resp.StatusCode)
	}
}

// BenchmarkSQLLogins compares logins with the user store in PostgreSQL
// (gatehouse's own tables, and an application's table) to the same logins
// on SQLite, in one run: the repeat login of an unchanged user and the
// first login of new users.
func BenchmarkSQLLogins(b *testing.B) {
	const repeat, first = 2000, 300
	per := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) * 4 } // 4 workers
	run := func(name string, store provision.Store) (time.Duration, time.Duration) {
		h := newHarness(b, options{base: goldenBase, store: store})
		h.upstream.discard = true
		firstLogin(b, h, alice)
		r := timeLogins(b, h, prepareLogins(b, h, repeat, func(int) person { return alice }))
		f := timeLogins(b, h, prepareLogins(b, h, first, func(i int) person {
			p := alice
			p.nameID, p.uid, p.mail = fmt.Sprintf("%s-%05d", name, i), fmt.Sprintf("user%05d", i), fmt.Sprintf("user%05d@example.com", i)
			return p
		}))
		return r, f
	}
	sqRepeat, sqFirst := run("sqlite", nil)

	c := pgtest.Shared(b)
	pg, err := sqldir.Open(context.Background(), sqldir.Config{Dialect: sqldir.Postgres, DSN: c.Database(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	pgRepeat, pgFirst := run("pg", pg)

	dsn := c.Database(b)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE tbl_user (user_id serial PRIMARY KEY, logon varchar(64) NOT NULL, email varchar(120),
		full_name varchar(120), given varchar(64), surname varchar(64));
		CREATE TABLE tbl_role (role_id serial PRIMARY KEY, role_name varchar(64) NOT NULL);
		CREATE TABLE tbl_user_role (user_id integer NOT NULL, role_id integer NOT NULL, PRIMARY KEY (user_id, role_id))`); err != nil {
		b.Fatal(err)
	}
	mapped, err := sqldir.OpenMapped(context.Background(), sqldir.Config{Dialect: sqldir.Postgres, DSN: dsn, Mapped: &sqldir.MappedConfig{
		Users: sqldir.UserTable{Table: "tbl_user", Key: "user_id", Columns: map[string]string{provision.FieldUserName: "logon",
			provision.FieldEmail: "email", provision.FieldDisplayName: "full_name", provision.FieldGivenName: "given", provision.FieldFamilyName: "surname"}},
		Groups:      &sqldir.GroupTable{Table: "tbl_role", Key: "role_id", Name: "role_name"},
		Memberships: &sqldir.MembershipTable{Table: "tbl_user_role", User: "user_id", Group: "role_id"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mapped.Close() })
	mRepeat, mFirst := run("mapped", mapped)

	b.ReportMetric(per(sqRepeat, repeat), "sqlite-repeat-µs/login")
	b.ReportMetric(per(pgRepeat, repeat), "pg-repeat-µs/login")
	b.ReportMetric(per(mRepeat, repeat), "pg-mapped-repeat-µs/login")
	b.ReportMetric(float64(pgRepeat)/float64(sqRepeat), "pg/sqlite-repeat-ratio")
	b.ReportMetric(float64(mRepeat)/float64(sqRepeat), "pg-mapped/sqlite-repeat-ratio")
	b.ReportMetric(per(sqFirst, first), "sqlite-first-µs/login")
	b.ReportMetric(per(pgFirst, first), "pg-first-µs/login")
	b.ReportMetric(per(mFirst, first), "pg-mapped-first-µs/login")
	b.ReportMetric(float64(pgFirst)/float64(sqFirst), "pg/sqlite-first-ratio")
	b.ReportMetric(float64(mFirst)/float64(sqFirst), "pg-mapped/sqlite-first-ratio")
}
