package sqldir

import (
	"context"
	"fmt"
	"slices"
)

func (d *db) managedMigrations() []string {
	switch d.d.name {
	case Postgres:
		return postgresMigrations
	case SQLServer:
		return sqlserverMigrations
	}
	return sqliteMigrations
}

// migrate applies the migrations of one component that have not run. On
// SQLite the managed schema counts in PRAGMA user_version; everything
// else in gatehouse_schema, under a lock that keeps replicas starting
// together from migrating twice.
func (d *db) migrate(ctx context.Context, component string, migrations []string) error {
	if d.noMigrate {
		return d.schemaCurrent(ctx, component, len(migrations))
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldir: migrate: %w", err)
	}
	defer tx.Rollback()
	q := d.conn(tx)
	pragma := d.d.name == SQLite && component == "managed"
	var have int
	switch {
	case pragma:
		err = tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have)
	default:
		for _, stmt := range d.d.schemaTable() {
			if _, err = tx.ExecContext(ctx, stmt); err != nil {
				break
			}
		}
		if err == nil {
			err = q.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM gatehouse_schema WHERE component = ?", component).Scan(&have)
		}
	}
	if err != nil {
		return fmt.Errorf("sqldir: read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("sqldir: database schema version %d is newer than this gatehouse (%d)", have, len(migrations))
	}
	refolded := false
	for v := have; v < len(migrations); v++ {
		switch {
		case migrations[v] == refoldStep:
			// Each refold computes the current fold: one is enough.
			if !refolded {
				err = d.refold(ctx, q, component)
			}
			refolded = true
		case migrations[v] == searchStep:
			// The same holds for the search folds; a later step of the
			// same list computes them from the final schema.
			if !slices.Contains(migrations[v+1:], searchStep) {
				err = d.rebuildSearch(ctx, q)
			}
		default:
			_, err = tx.ExecContext(ctx, migrations[v])
		}
		if err != nil {
			return fmt.Errorf("sqldir: migration %s %d: %w", component, v+1, err)
		}
	}
	if have < len(migrations) {
		if pragma {
			_, err = tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)))
		} else {
			_, err = q.ExecContext(ctx, "INSERT INTO gatehouse_schema (component, version) VALUES (?, ?)", component, len(migrations))
		}
		if err != nil {
			return fmt.Errorf("sqldir: record schema version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldir: migrate: %w", err)
	}
	return nil
}

// schemaCurrent checks, reading only, that a component's schema is at
// version want.
func (d *db) schemaCurrent(ctx context.Context, component string, want int) error {
	var have int
	var err error
	if d.d.name == SQLite && component == "managed" {
		err = d.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have)
	} else {
		err = d.reader().QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM gatehouse_schema WHERE component = ?", component).Scan(&have)
	}
	if err != nil || have != want {
		return fmt.Errorf("sqldir: gatehouse's %s tables are not in this database at the current version (%d, want %d; %v): start gatehouse once to create them", component, have, want, err)
	}
	return nil
}
