package sqldir_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
)

// TestCheckSQLiteFile: check reads an existing SQLite file without
// changing it, so a file that is not a SQLite database (a config file, a
// text file) is a problem at path, as is a schema newer than this
// gatehouse. A missing file, an empty one and gatehouse's own database are
// fine. Check changes none of them: no file, journal, -shm or -wal
// appears. (Before, Check opened SQLite read-write: it created a missing
// file, switched an existing one to WAL, and gave a bad file no key.)
func TestCheckSQLiteFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("text.db", bytes.Repeat([]byte("store:\n  sqlite:\n    path: gatehouse.db\n"), 20))
	short := write("short.db", []byte("not sqlite"))
	empty := write("empty.db", nil)

	ours := filepath.Join(dir, "gatehouse.db")
	s, err := sqldir.Open(ctx, sqldir.Config{Path: ours})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, provision.User{UserName: "alice", Active: true}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	newer := filepath.Join(dir, "newer.db")
	raw, err := sql.Open("sqlite", "file:"+newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 100000"); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	for _, tc := range []struct {
		name, path, want string // want: "" is no problem, else a problem at path mentioning it
	}{
		{"TextFile", text, "not a database"},
		{"ShortFile", short, "not a database"},
		{"NewerSchema", newer, "newer than this gatehouse"},
		{"Missing", filepath.Join(dir, "missing.db"), ""},
		{"Empty", empty, ""},
		{"Gatehouse", ours, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadDir(dir)
			content, _ := os.ReadFile(tc.path)
			ps := sqldir.Check(ctx, sqldir.Config{Dialect: sqldir.SQLite, Path: tc.path})
			switch {
			case tc.want == "" && len(ps) != 0:
				t.Errorf("Check = %v, want no problem", ps)
			case tc.want != "" && (len(ps) != 1 || ps[0].Key != "path" || !strings.Contains(ps[0].Err.Error(), tc.want)):
				t.Errorf("Check = %v, want one problem at path mentioning %q", ps, tc.want)
			}
			after, _ := os.ReadDir(dir)
			if len(after) != len(before) {
				t.Errorf("Check changed the directory: %d entries before, %d after", len(before), len(after))
			}
			if now, _ := os.ReadFile(tc.path); !bytes.Equal(now, content) {
				t.Errorf("Check changed %s", tc.name)
			}
		})
	}

	// Mapped tables are read from a database that must be there.
	m := &sqldir.MappedConfig{Users: sqldir.UserTable{Table: "app_users", Key: "id", Columns: map[string]string{provision.FieldUserName: "login"}}}
	for _, tc := range []struct{ name, path, want string }{
		{"MappedMissing", filepath.Join(dir, "missing.db"), "does not exist"},
		{"MappedTextFile", text, "not a database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := sqldir.Check(ctx, sqldir.Config{Dialect: sqldir.SQLite, Path: tc.path, Mapped: m})
			if len(ps) != 1 || ps[0].Key != "path" || !strings.Contains(ps[0].Err.Error(), tc.want) {
				t.Errorf("Check = %v, want one problem at path mentioning %q", ps, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
				t.Error("Check created the file")
			}
		})
	}
}
