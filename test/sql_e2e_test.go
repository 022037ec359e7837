package test

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
	"gatehouse/test/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// TestPostgresStoppedMidRun: PostgreSQL stops between two logins. The
// second gets the 503 page with an error ID and readyz reports the store;
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
	if code, _ := h.get(h.browser(), "/.gatehouse/readyz", nil); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with PostgreSQL stopped = %d, want 503", code)
	}

	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := h.get(h.browser(), "/.gatehouse/readyz", nil)
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
