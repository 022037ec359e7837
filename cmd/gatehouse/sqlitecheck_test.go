package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckSQLiteNotADatabase: check reads an existing store.sqlite.path
// and reports a file that is not a SQLite database at that key, where it
// used to say ok and serve then failed with "file is not a database".
func TestCheckSQLiteNotADatabase(t *testing.T) {
	t.Setenv("TEST_GATEHOUSE_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	path := writeConfig(t, goodConfig)
	db := filepath.Join(filepath.Dir(path), "gatehouse.db")
	text := []byte(strings.Repeat("this is a text file, not a database\n", 10))
	if err := os.WriteFile(db, text, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := check(t, path)
	if code != 1 || !strings.Contains(errOut, "store.sqlite.path: ") || !strings.Contains(errOut, "not a database") {
		t.Errorf("check with a text file at store.sqlite.path: exit %d\n%s", code, errOut)
	}
	if b, _ := os.ReadFile(db); string(b) != string(text) {
		t.Error("check changed the file")
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil { // an empty file is an empty database
		t.Fatal(err)
	}
	if code, out, errOut := check(t, path); code != 0 {
		t.Errorf("check with an empty file: exit %d\n%s%s", code, out, errOut)
	}
}
