package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"gatehouse/test/pgtest"
	"gatehouse/test/redistest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const legacyTable = `CREATE TABLE app_users (
	usr_id    serial PRIMARY KEY,
	login_nm  varchar(64) NOT NULL,
	mail_addr varchar(254),
	age       integer
)`

// TestSQLStoreSections: the postgres and sqlserver sections, their DSN
// rules, and what check finds in a real database.
func TestSQLStoreSections(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	c := pgtest.Shared(t)
	dsn := c.Database(t)
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	c.Exec(t, db, legacyTable)
	t.Setenv("TEST_PG_DSN", dsn)
	t.Setenv("TEST_PG_DOWN", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", closedPort(t)))
	mapped := func(cols string) string {
		return "store:\n  postgres:\n    dsn: ${TEST_PG_DSN}\n    mapped:\n      users:\n        table: app_users\n        key: usr_id\n        columns: {" + cols + "}\n"
	}
	for _, tc := range []struct {
		name, store, extra string
		problems           []string
	}{
		{"Managed", "store:\n  postgres:\n    dsn: ${TEST_PG_DSN}\n    max_open_conns: 4\n    timeout: 3s\n", "", nil},
		{"DSNInFile", "store:\n  postgres:\n    dsn: postgres://app:hunter2@db.example.test/app\n", "",
			[]string{"store.postgres.dsn: must be an environment reference"}},
		{"DSNUnset", "store:\n  sqlserver:\n    dsn: ${TEST_NOT_SET_DSN}\n", "", []string{"store.sqlserver.dsn: environment variable TEST_NOT_SET_DSN is not set"}},
		{"TwoBackends", "store:\n  sqlite:\n    path: $DIR/g.db\n  postgres:\n    dsn: ${TEST_PG_DSN}\n", "",
			[]string{"store: choose one backend, not postgres and sqlite"}},
		{"PathOnServer", "store:\n  postgres:\n    dsn: ${TEST_PG_DSN}\n    path: x.db\n", "", []string{"store.postgres.path: only for SQLite"}},
		{"DatabaseDown", "store:\n  postgres:\n    dsn: ${TEST_PG_DOWN}\n", "", []string{"store.postgres: sqldir: connect to postgres"}},
		{"Mapped", mapped("user_name: login_nm, email: mail_addr"), "", nil},
		{"MappedMissingColumn", mapped("user_name: login_nm, email: mail"), "",
			[]string{"store.postgres.mapped.users.columns.email: table app_users has no column mail"}},
		{"MappedWrongType", mapped("user_name: login_nm, email: age"), "",
			[]string{"store.postgres.mapped.users.columns.email: column age is integer; a text column is needed"}},
		{"MappedMissingTable", strings.Replace(mapped("user_name: login_nm"), "app_users", "nope", 1), "",
			[]string{"store.postgres.mapped.users.table: table nope does not exist"}},
		{"MappedBadName", strings.Replace(mapped("user_name: login_nm"), "usr_id", `"id; drop"`, 1), "",
			[]string{"store.postgres.mapped.users.key: \"id; drop\": names are letters"}},
		{"MappedWithSCIM", mapped("user_name: login_nm"), "scim:\n  token_sha256: [\"" + strings.Repeat("ab", 32) + "\"]\n",
			[]string{"scim: the store maps an application's tables"}},
		{"ProcedureOnSQLite", "store:\n  sqlite:\n    path: $DIR/g.db\n    mapped:\n      users: {table: t, key: id, columns: {user_name: n}}\n      procedure: {name: p, params: {user_name: n}}\n", "",
			[]string{"store.sqlite.mapped.procedure: SQLite has no stored procedures"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(goodConfig, "store:\n  sqlite:\n    path: $DIR/gatehouse.db\n", tc.store, 1) + tc.extra
			errOut := checkProblems(t, cfg, tc.problems)
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("a DSN's password was echoed: %s", errOut)
			}
		})
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestStateSection: the Redis URL comes from the environment or a file
// and is never echoed; check pings the server.
func TestStateSection(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	srv := redistest.Start(t)
	t.Setenv("TEST_REDIS_URL", "redis://"+srv.Addr+"/0")
	t.Setenv("TEST_REDIS_DOWN", fmt.Sprintf("redis://127.0.0.1:%d/0", closedPort(t)))
	t.Setenv("TEST_REDIS_BAD", "http://user:hunter2@x")
	for _, tc := range []struct {
		name, section string
		problems      []string
	}{
		{"Env", "state:\n  redis:\n    url: ${TEST_REDIS_URL}\n", nil},
		{"InFile", "state:\n  redis:\n    url: redis://default:hunter2@cache:6379/0\n", []string{"state.redis.url: must be an environment reference"}},
		{"NotRedis", "state:\n  redis:\n    url: ${TEST_REDIS_BAD}\n", []string{"state.redis.url: not a redis:// or rediss:// URL"}},
		{"Down", "state:\n  redis:\n    url: ${TEST_REDIS_DOWN}\n", []string{"state.redis: unreachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errOut := checkProblems(t, goodConfig+tc.section, tc.problems)
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("a password was echoed: %s", errOut)
			}
		})
	}
}
