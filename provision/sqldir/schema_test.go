package sqldir

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"gatehouse/provision"
)

// TestUpgradeFromUnprefixedTables: a database made by the release before
// the gatehouse_ prefix (schema version 2) opens, keeps its users, their
// identities and memberships, and answers logins as before.
func TestUpgradeFromUnprefixedTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sqliteMigrations[:2] {
		if _, err := old.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO users (id, user_name, user_name_norm, email, created_at, updated_at) VALUES ('u1', 'Alice', 'alice', 'a@x', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`,
		`INSERT INTO user_identities (idp, key_kind, subject, user_id, created_at) VALUES ('idp', 'nameid', 's1', 'u1', '2025-01-01T00:00:00.000Z')`,
		`INSERT INTO groups (id, name, name_norm, created_at, updated_at) VALUES ('g1', 'staff', 'staff', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`,
		`INSERT INTO memberships (user_id, group_id, source, created_at) VALUES ('u1', 'g1', 'jit:idp', '2025-01-01T00:00:00.000Z')`,
		`PRAGMA user_version = 2`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()

	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatalf("Open(version 2 database) err = %v", err)
	}
	defer s.Close()
	l := provision.Login{Key: provision.Key{IdP: "idp", Kind: "nameid", Subject: "s1"},
		Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: "Alice", provision.FieldEmail: "a@x"},
			Groups: []string{"staff"}, HasGroups: true}}
	res, err := s.Provision(context.Background(), l)
	if err != nil || res.Outcome != provision.Unchanged || res.User.ID != "u1" {
		t.Fatalf("login after the upgrade: %q %q %v, want unchanged u1", res.Outcome, res.User.ID, err)
	}
	// The foreign keys followed the renames: deleting the user cascades.
	if err := s.DeleteUser(context.Background(), "u1", 0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM gatehouse_identities`).Scan(&n); err != nil || n != 0 {
		t.Errorf("identities after deleting the user: %d (%v), want 0", n, err)
	}
}
