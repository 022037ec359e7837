package sqldir

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"gatehouse/provision"
)

// TestSCIMFieldsMigration: users SCIM wrote before the store recorded
// which fields it wrote keep SCIM as the owner of every field ("*");
// users only logins wrote own none.
func TestSCIMFieldsMigration(t *testing.T) {
	for _, tc := range []struct {
		name    string
		open    func(t *testing.T) (Config, *sql.DB)
		version string // sets the schema back to before scim_fields
	}{
		{"sqlite", rawSQLite, `PRAGMA user_version = 5`},
		{"postgres", rawPostgres, `UPDATE gatehouse_schema SET version = 3 WHERE component = 'managed'`},
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
				`INSERT INTO gatehouse_users (id, user_name, user_name_norm, owner, created_at, updated_at) VALUES ('u1', 'scimmy', 'scimmy', 'scim', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`,
				`INSERT INTO gatehouse_users (id, user_name, user_name_norm, owner, created_at, updated_at) VALUES ('u2', 'jitty', 'jitty', 'jit', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`,
				`ALTER TABLE gatehouse_users DROP COLUMN scim_fields`,
				tc.version,
			} {
				if q == tc.version {
					for _, u := range undoSearchSchema(tc.name) {
						mustExecRaw(t, raw, u)
					}
				}
				mustExecRaw(t, raw, q)
			}
			s, err = Open(ctx, cfg)
			if err != nil {
				t.Fatalf("Open after the schema went back: %v", err)
			}
			defer s.Close()
			for id, want := range map[string][]string{"u1": {provision.AllFields}, "u2": nil} {
				u, err := s.User(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(u.SCIMFields, want) {
					t.Errorf("%s: SCIMFields = %q, want %q", id, u.SCIMFields, want)
				}
			}
		})
	}
}

// TestSCIMFieldsRoundTrip: what SCIM says it wrote is what the store
// keeps, and a login leaves exactly those fields alone.
func TestSCIMFieldsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "users.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.CreateUser(ctx, provision.User{UserName: "carol", Email: "carol@example.com", DisplayName: "Carol", Active: true,
		SCIMFields: []string{provision.FieldEmail, provision.FieldUserName}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{provision.FieldEmail, provision.FieldUserName}; !slices.Equal(got.SCIMFields, want) {
		t.Fatalf("SCIMFields = %q, want %q", got.SCIMFields, want)
	}
	got.SCIMFields = nil
	if _, err := s.ReplaceUser(ctx, got, got.Version); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.User(ctx, u.ID); again.SCIMFields != nil || again.Version != got.Version+1 {
		t.Fatalf("after clearing: SCIMFields %q version %d, want none at %d", again.SCIMFields, again.Version, got.Version+1)
	}
}
