package sqldir_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"gatehouse/provision"
	"gatehouse/provision/sqldir"
)

// TestRefoldMigrationMapped: the folds gatehouse keeps beside an
// application's table are recomputed when a store written by an older
// release opens, on SQLite and PostgreSQL; look-alikes then collide.
func TestRefoldMigrationMapped(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) (*sqldir.Mapped, *sql.DB, sqldir.Config){
		"sqlite": openMappedSQLite, "postgres": openMappedPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, raw, cfg := open(t)
			res, err := s.Provision(ctx, mappedLogin("s-bob", "Ｂob"))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			// As the previous release left it: the old fold, schema 1.
			for _, q := range []string{
				`UPDATE gatehouse_mapped_users SET user_name_norm = 'ｂob'`,
				`UPDATE gatehouse_schema SET version = 1 WHERE component = 'mapped'`,
			} {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			s, err = sqldir.OpenMapped(ctx, cfg)
			if err != nil {
				t.Fatalf("OpenMapped(old folds) err = %v", err)
			}
			defer s.Close()
			var fold string
			if err := raw.QueryRow(`SELECT user_name_norm FROM gatehouse_mapped_users`).Scan(&fold); err != nil || fold != "bob" {
				t.Errorf("fold after the migration = %q (%v), want bob", fold, err)
			}
			if _, err := s.Provision(ctx, mappedLogin("s-mallory", "BOB")); !errors.Is(err, provision.ErrConflict) {
				t.Errorf("Provision(BOB) after %s err = %v, want ErrConflict", res.User.ID, err)
			}
		})
	}
}

// TestRefoldMigrationMappedAccents: the folds kept beside an application's
// table lose their accents when a store from before opens.
func TestRefoldMigrationMappedAccents(t *testing.T) {
	ctx := context.Background()
	s, raw, cfg := openMappedSQLite(t)
	if _, err := s.Provision(ctx, mappedLogin("s-alice", "Àlice")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, q := range []string{
		`UPDATE gatehouse_mapped_users SET user_name_norm = 'àlice'`,
		`UPDATE gatehouse_schema SET version = 2 WHERE component = 'mapped'`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err := sqldir.OpenMapped(ctx, cfg)
	if err != nil {
		t.Fatalf("OpenMapped(folds with accents) err = %v", err)
	}
	defer s.Close()
	var fold string
	if err := raw.QueryRow(`SELECT user_name_norm FROM gatehouse_mapped_users`).Scan(&fold); err != nil || fold != "alice" {
		t.Errorf("fold after the migration = %q (%v), want alice", fold, err)
	}
	if _, err := s.Provision(ctx, mappedLogin("s-mallory", "alice")); !errors.Is(err, provision.ErrConflict) {
		t.Errorf("Provision(alice) err = %v, want ErrConflict", err)
	}
}
