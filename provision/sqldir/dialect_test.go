package sqldir

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"gatehouse/provision"
)

var update = flag.Bool("update", false, "rewrite the golden SQL files")

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ dialect, in, want string }{
		{SQLServer, `SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?`, `SELECT a FROM t WHERE b = @p1 AND c = '?' AND d = @p2`},
		{Postgres, `SELECT a FROM t WHERE b = ? AND c = 'it''s ?' AND d = ?`, `SELECT a FROM t WHERE b = $1 AND c = 'it''s ?' AND d = $2`},
		{SQLite, `SELECT ? , '?'`, `SELECT ? , '?'`},
	} {
		d, _ := newDialect(tc.dialect)
		if got := d.rebind(tc.in); got != tc.want {
			t.Errorf("%s rebind(%q) = %q, want %q", tc.dialect, tc.in, got, tc.want)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	ms, _ := newDialect(SQLServer)
	pg, _ := newDialect(Postgres)
	for _, tc := range []struct {
		name      string
		qualified bool
		ms, pg    string // "" means refused
	}{
		{"Users", false, "[Users]", `"Users"`},
		{"dbo.AppUsers", true, "[dbo].[AppUsers]", `"dbo"."AppUsers"`},
		{"dbo.AppUsers", false, "", ""},
		{"a.b.c", true, "", ""},
		{"x]; DROP TABLE t; --", false, "", ""},
		{`x"y`, false, "", ""},
		{"1users", false, "", ""},
		{"user name", false, "", ""},
		{"", false, "", ""},
		{"naïve", false, "", ""},
		{"_col$1", false, "[_col$1]", `"_col$1"`},
	} {
		for _, c := range []struct {
			d    *dialect
			want string
		}{{ms, tc.ms}, {pg, tc.pg}} {
			got, err := c.d.quoteIdent(tc.name, tc.qualified)
			if c.want == "" && err == nil {
				t.Errorf("%s quoteIdent(%q) = %q, want refused", c.d.name, tc.name, got)
			}
			if c.want != "" && (err != nil || got != c.want) {
				t.Errorf("%s quoteIdent(%q) = %q, %v, want %q", c.d.name, tc.name, got, err, c.want)
			}
		}
	}
}

func TestPagingAndLike(t *testing.T) {
	ms, _ := newDialect(SQLServer)
	pg, _ := newDialect(Postgres)
	if sql, args := ms.page(25, 50); sql != " OFFSET ? ROWS FETCH NEXT ? ROWS ONLY" || args[0] != 50 || args[1] != 25 {
		t.Errorf("sqlserver page(25, 50) = %q %v", sql, args)
	}
	if sql, args := pg.page(25, 50); sql != " LIMIT ? OFFSET ?" || args[0] != 25 || args[1] != 50 {
		t.Errorf("postgres page(25, 50) = %q %v", sql, args)
	}
	for _, tc := range []struct{ in, ms, pg string }{
		{`100%`, `100\%`, `100\%`},
		{`a_b`, `a\_b`, `a\_b`},
		{`[abc]`, `\[abc]`, `[abc]`},
		{`back\slash`, `back\\slash`, `back\\slash`},
		{`[^a-z]%_\`, `\[^a-z]\%\_\\`, `[^a-z]\%\_\\`},
	} {
		if got := ms.likeEscape(tc.in); got != tc.ms {
			t.Errorf("sqlserver likeEscape(%q) = %q, want %q", tc.in, got, tc.ms)
		}
		if got := pg.likeEscape(tc.in); got != tc.pg {
			t.Errorf("postgres likeEscape(%q) = %q, want %q", tc.in, got, tc.pg)
		}
	}
	for op, want := range map[string]string{"co": `%\[x\%%`, "sw": `\[x\%%`, "ew": `%\[x\%`} {
		sql, args := ms.substring(op, "u.email", "[x%")
		if sql != `u.email LIKE ? ESCAPE '\'` || args[0] != want {
			t.Errorf("sqlserver %s = %q %v, want LIKE with %q", op, sql, args, want)
		}
	}
}

// recorder is a database/sql driver that records every statement it is
// sent, with transaction boundaries, and answers from a script. It lets a
// test read the exact SQL the sqlserver dialect produces, end to end
// through the store's own code, on a machine without SQL Server.
type recorder struct {
	mu    sync.Mutex
	log   []string
	count int64                    // the answer to every count(*)
	rows  map[*regexp.Regexp][]any // a one-row answer for matching queries
	fail  map[*regexp.Regexp]error // errors to return once for matching statements
}

func (r *recorder) Connect(context.Context) (driver.Conn, error) { return &recConn{r}, nil }
func (r *recorder) Driver() driver.Driver                        { return nil }

func (r *recorder) record(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, strings.Join(strings.Fields(s), " "))
	for re, err := range r.fail {
		if re.MatchString(s) {
			delete(r.fail, re)
			return err
		}
	}
	return nil
}

func (r *recorder) statements() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

type recConn struct{ r *recorder }

func (c *recConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("recorder: no prepare")
}
func (c *recConn) Close() error { return nil }
func (c *recConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *recConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	c.r.record("BEGIN")
	return c, nil
}
func (c *recConn) Commit() error   { return c.r.record("COMMIT") }
func (c *recConn) Rollback() error { return c.r.record("ROLLBACK") }

func (c *recConn) ExecContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	if err := c.r.record(q); err != nil {
		return nil, err
	}
	return driver.RowsAffected(1), nil
}

func (c *recConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	if err := c.r.record(q); err != nil {
		return nil, err
	}
	if strings.Contains(q, "count(*)") {
		return &recRows{vals: [][]driver.Value{{c.r.count}}}, nil
	}
	for re, row := range c.r.rows {
		if re.MatchString(q) {
			vals := make([]driver.Value, len(row))
			for i, v := range row {
				vals[i] = v
			}
			return &recRows{vals: [][]driver.Value{vals}}, nil
		}
	}
	return &recRows{}, nil
}

type recRows struct{ vals [][]driver.Value }

func (r *recRows) Columns() []string {
	if len(r.vals) == 0 {
		return []string{"c"}
	}
	return make([]string, len(r.vals[0]))
}
func (r *recRows) Close() error { return nil }
func (r *recRows) Next(dest []driver.Value) error {
	if len(r.vals) == 0 {
		return io.EOF
	}
	copy(dest, r.vals[0])
	r.vals = r.vals[1:]
	return nil
}

func recordingDB(t *testing.T, dialect string, r *recorder) *db {
	t.Helper()
	d, err := newDialect(dialect)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(r)
	t.Cleanup(func() { pool.Close() })
	return &db{d: d, w: pool, r: pool, timeout: time.Minute,
		now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
}

// golden compares statements with testdata/name, one per line.
func golden(t *testing.T, name string, stmts []string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	got := strings.Join(stmts, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("SQL differs from %s (go test -update rewrites it after review):\ngot:\n%s", path, got)
	}
	for _, s := range stmts {
		if strings.Contains(s, "MERGE") || strings.Contains(s, "IF EXISTS") || strings.Contains(s, "IF NOT EXISTS") {
			t.Errorf("statement uses MERGE or IF [NOT] EXISTS, which lose writes under concurrency: %s", s)
		}
	}
}

func firstLogin() provision.Login {
	return provision.Login{Key: provision.Key{IdP: "https://idp.example.test", Kind: "nameid", Subject: "s-1"},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "alice", provision.FieldEmail: "alice@example.test"},
			Groups: []string{"staff"}, HasGroups: true}}
}

// TestSQLServerFirstLogin: the upsert is a locked read (UPDLOCK,
// SERIALIZABLE holds the key range of the absent identity), then inserts;
// groups and memberships are inserted only where absent under the same
// locks.
func TestSQLServerFirstLogin(t *testing.T) {
	r := &recorder{rows: map[*regexp.Regexp][]any{regexp.MustCompile(`^SELECT id FROM gatehouse_groups`): {"g-1"}}}
	s := &Store{recordingDB(t, SQLServer, r)}
	if _, err := s.Provision(context.Background(), firstLogin()); err != nil {
		t.Fatal(err)
	}
	stmts := r.statements()
	golden(t, "sqlserver-first-login.sql", scrubIDs(stmts))
	locked := 0
	for _, st := range stmts {
		if strings.Contains(st, "FROM gatehouse_identities i WITH (UPDLOCK, SERIALIZABLE) JOIN gatehouse_users u WITH (UPDLOCK, SERIALIZABLE)") {
			locked++
		}
	}
	if locked != 1 {
		t.Errorf("%d locked identity reads in the write transaction, want 1", locked)
	}
}

// TestSQLServerRetries: a deadlock victim (1205) runs again; a duplicate
// key (2627) on the first try is a lost race that runs again, and on the
// second is a conflict.
func TestSQLServerRetries(t *testing.T) {
	insert := regexp.MustCompile(`^INSERT INTO gatehouse_users`)
	groups := map[*regexp.Regexp][]any{regexp.MustCompile(`^SELECT id FROM gatehouse_groups`): {"g-1"}}
	r := &recorder{rows: groups, fail: map[*regexp.Regexp]error{insert: mssql.Error{Number: 1205, Message: "deadlock victim"}}}
	s := &Store{recordingDB(t, SQLServer, r)}
	if _, err := s.Provision(context.Background(), firstLogin()); err != nil {
		t.Fatalf("after one deadlock: %v", err)
	}
	if n := strings.Count(strings.Join(r.statements(), "\n"), "BEGIN"); n != 2 {
		t.Errorf("%d transactions, want 2 (the deadlock victim ran again)", n)
	}

	r = &recorder{rows: groups, fail: map[*regexp.Regexp]error{insert: mssql.Error{Number: 2627, Message: "duplicate key"}}}
	s = &Store{recordingDB(t, SQLServer, r)}
	if _, err := s.Provision(context.Background(), firstLogin()); err != nil {
		t.Fatalf("after one duplicate key: %v", err)
	}
	// Both tries meet a duplicate: the user name is another user's.
	r = &recorder{rows: groups, fail: map[*regexp.Regexp]error{
		insert: mssql.Error{Number: 2601, Message: "duplicate key"},
		regexp.MustCompile(`^INSERT INTO gatehouse_users \(id`): mssql.Error{Number: 2601, Message: "duplicate key"},
	}}
	s = &Store{recordingDB(t, SQLServer, r)}
	if _, err := s.Provision(context.Background(), firstLogin()); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("two duplicate keys: err = %v, want ErrConflict", err)
	}
}

// TestSQLServerFindUsers: a filter with LIKE escaping and a page with
// OFFSET ... FETCH after an ORDER BY.
func TestSQLServerFindUsers(t *testing.T) {
	r := &recorder{count: 40}
	s := &Store{recordingDB(t, SQLServer, r)}
	q := provision.Query{Filter: provision.And{
		provision.Compare{Field: provision.FieldUserName, Op: provision.OpSw, Value: "a[b%", Fold: true},
		provision.Compare{Field: "department", Op: provision.OpEq, Value: "R&D"},
		provision.Compare{Field: provision.FieldActive, Op: provision.OpEq, Value: "true"},
	}, SortBy: provision.FieldEmail, Offset: 10, Limit: 5}
	if _, err := s.FindUsers(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	golden(t, "sqlserver-find-users.sql", r.statements())
}

// TestSQLServerSearch: the lookups SCIM clients send most on SQL Server:
// the stored folds compared by their indexed key columns, an extra value
// from the values table, a union of the e-mail slots, a prefix by LIKE on
// a key column, and the second page of a walk as a keyset range.
func TestSQLServerSearch(t *testing.T) {
	r := &recorder{count: 40}
	s := &Store{recordingDB(t, SQLServer, r)}
	f := provision.And{
		provision.Or{
			provision.Compare{Field: provision.FieldEmail, Op: provision.OpEq, Value: "Ann@X.test", Fold: true},
			provision.Compare{Field: "email_home", Op: provision.OpEq, Value: "Ann@X.test", Fold: true},
		},
		provision.Compare{Field: provision.FieldDisplayName, Op: provision.OpSw, Value: "An%", Fold: true},
		provision.Compare{Field: "department", Op: provision.OpEq, Value: "R&D", Fold: true},
		provision.Compare{Field: provision.FieldUpdated, Op: provision.OpGt, Value: "2026-01-01T00:00:00Z"},
	}
	for _, off := range []int{0, 5} {
		if _, err := s.FindUsers(context.Background(), provision.Query{Filter: f, Offset: off, Limit: 5}); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "sqlserver-search.sql", r.statements())
}

// TestSQLServerMappedFirstLogin: the insert into an application's table
// reads the new key through OUTPUT ... INTO a table variable, which works
// on tables with triggers.
func TestSQLServerMappedFirstLogin(t *testing.T) {
	r := &recorder{rows: map[*regexp.Regexp][]any{
		regexp.MustCompile(`SELECT k FROM @k`): {"42"},
	}}
	d := recordingDB(t, SQLServer, r)
	cfg := MappedConfig{
		Users: UserTable{Table: "dbo.AppUsers", Key: "UserID", Columns: map[string]string{
			provision.FieldUserName: "LoginName", provision.FieldEmail: "Mail"},
			Disabled: &DisabledColumn{Column: "IsLocked", Value: "1", EnabledValue: "0"}},
		Groups:      &GroupTable{Table: "dbo.Roles", Key: "RoleID", Name: "RoleName"},
		Memberships: &MembershipTable{Table: "dbo.UserRoles", User: "UserID", Group: "RoleID"},
	}
	if err := cfg.validate(d.d); err != nil {
		t.Fatal(err)
	}
	text := colInfo{typ: "nvarchar", nullable: true, maxLen: 128}
	m := &Mapped{db: d, cfg: cfg, users: "[dbo].[AppUsers]", key: "[UserID]", keyGen: keyFromDatabase,
		cols: []mcol{{field: provision.FieldEmail, name: "[Mail]", raw: "Mail", info: text},
			{field: provision.FieldUserName, name: "[LoginName]", raw: "LoginName", info: colInfo{typ: "nvarchar", maxLen: 64}}},
		disabled: cfg.Users.Disabled, disCol: mcol{name: "[IsLocked]", raw: "IsLocked"},
		groups: &mappedGroups{table: "[dbo].[Roles]", key: "[RoleID]", name: "[RoleName]", keyGen: keyFromDatabase,
			mtable: "[dbo].[UserRoles]", muser: "[UserID]", mgroup: "[RoleID]"}}
	if _, err := m.Provision(context.Background(), firstLogin()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sqlserver-mapped-first-login.sql", r.statements())
}

// TestProcedureCall: the call of a user procedure, named parameters in a
// stable order, the key last.
func TestProcedureCall(t *testing.T) {
	p := &Procedure{Name: "dbo.ProvisionUser", KeyParam: "UserKey", Params: map[string]string{
		provision.FieldUserName: "Login", provision.FieldEmail: "Mail"}}
	for _, tc := range []struct{ dialect, want string }{
		{SQLServer, "EXEC [dbo].[ProvisionUser] @Mail = ?, @Login = ?, @UserKey = ?"},
		{Postgres, `SELECT * FROM "dbo"."ProvisionUser"("Mail" => ?, "Login" => ?, "UserKey" => ?)`},
	} {
		d, _ := newDialect(tc.dialect)
		stmt, args := d.callProcedure(p, "", func(f string) (any, error) { return f + "-value", nil })
		if stmt != tc.want {
			t.Errorf("%s call = %q, want %q", tc.dialect, stmt, tc.want)
		}
		vals, _ := args()
		if len(vals) != 3 || vals[0] != "email-value" || vals[1] != "user_name-value" || vals[2] != nil {
			t.Errorf("%s call args = %v, want email, user name, NULL key", tc.dialect, vals)
		}
	}
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func scrubIDs(stmts []string) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = uuidRE.ReplaceAllString(s, "<uuid>")
	}
	return out
}
