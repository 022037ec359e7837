package sqldir

import (
	"context"
	"database/sql"
	"fmt"
	"gatehouse/provision"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

func (m *Mapped) readGroups(ctx context.Context, q querier, rec *mrecord, source string) error {
	g := m.groups
	rows, err := q.QueryContext(ctx, `SELECT `+m.d.text("g."+g.key)+`, `+m.d.text("g."+g.name)+` FROM `+g.mtable+` am JOIN `+g.table+
		` g ON g.`+g.key+` = am.`+g.mgroup+` WHERE am.`+g.muser+` = ?`, rec.user.ID)
	if err != nil {
		return fmt.Errorf("sqldir: read groups: %w", err)
	}
	byKey := map[string]string{}
	for rows.Next() {
		var k, name sql.NullString
		if err := rows.Scan(&k, &name); err != nil {
			rows.Close()
			return fmt.Errorf("sqldir: read groups: %w", err)
		}
		byKey[k.String] = name.String
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqldir: read groups: %w", err)
	}
	rec.user.Groups = provision.SortedUnique(slices.Collect(maps.Values(byKey)))
	rec.srcGroups, rec.groupKeys = map[string]string{}, map[string]string{}
	for k, name := range byKey {
		rec.groupKeys[provision.NormalizeName(name)] = k
	}
	rows, err = q.QueryContext(ctx, `SELECT group_key FROM gatehouse_mapped_memberships WHERE user_key = ? AND source = ?`, rec.user.ID, source)
	if err != nil {
		return fmt.Errorf("sqldir: read membership sources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return fmt.Errorf("sqldir: read membership sources: %w", err)
		}
		if name, ok := byKey[k]; ok { // a membership the application removed is gone
			rec.srcGroups[provision.NormalizeName(name)] = name
		}
	}
	return rows.Err()
}

// syncGroups adds and drops the memberships of one source. A membership
// row of the application is removed only when no source holds it any
// more; one the application had before gatehouse added the same is
// recorded as the application's and never removed.
func (m *Mapped) syncGroups(ctx context.Context, q querier, rec *mrecord, source string, add, drop []string, now time.Time) error {
	g := m.groups
	if g == nil {
		return nil
	}
	for _, n := range drop {
		gk, ok := rec.groupKeys[n]
		if !ok {
			continue
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_mapped_memberships WHERE user_key = ? AND group_key = ? AND source = ?`,
			rec.user.ID, gk, source); err != nil {
			return fmt.Errorf("sqldir: remove membership: %w", err)
		}
		var left int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_mapped_memberships WHERE user_key = ? AND group_key = ?`,
			rec.user.ID, gk).Scan(&left); err != nil {
			return fmt.Errorf("sqldir: read membership sources: %w", err)
		}
		if left == 0 {
			if _, err := q.ExecContext(ctx, `DELETE FROM `+g.mtable+` WHERE `+g.muser+` = ? AND `+g.mgroup+` = ?`, rec.user.ID, gk); err != nil {
				return m.mapWriteErr("remove membership in "+m.cfg.Memberships.Table, err)
			}
		}
	}
	for _, name := range add {
		gk, err := m.ensureGroup(ctx, q, name)
		if err != nil {
			return err
		}
		var have, sources int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+g.mtable+` WHERE `+g.muser+` = ? AND `+g.mgroup+` = ?`, rec.user.ID, gk).Scan(&have); err != nil {
			return fmt.Errorf("sqldir: read membership: %w", err)
		}
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_mapped_memberships WHERE user_key = ? AND group_key = ?`,
			rec.user.ID, gk).Scan(&sources); err != nil {
			return fmt.Errorf("sqldir: read membership sources: %w", err)
		}
		mark := func(src string) error {
			_, err := m.insertAbsent(ctx, q, "gatehouse_mapped_memberships", []string{"user_key", "group_key", "source", "created_at"},
				[]any{rec.user.ID, gk, src, m.d.time(now)}, []string{"user_key", "group_key", "source"})
			if err != nil {
				return fmt.Errorf("sqldir: record membership: %w", err)
			}
			return nil
		}
		switch {
		case have > 0 && sources == 0:
			if err := mark(sourceApp); err != nil {
				return err
			}
		case have == 0:
			if _, err := q.ExecContext(ctx, `INSERT INTO `+g.mtable+` (`+g.muser+`, `+g.mgroup+`) VALUES (?, ?)`, rec.user.ID, gk); err != nil {
				return m.mapWriteErr("add membership in "+m.cfg.Memberships.Table, err)
			}
		}
		if err := mark(source); err != nil {
			return err
		}
	}
	return nil
}

// ensureGroup finds the application's group by name, exactly or folded,
// or creates it. A lock on the folded name keeps two logins from creating
// the same group twice in a table that may have no unique constraint.
func (m *Mapped) ensureGroup(ctx context.Context, q querier, name string) (string, error) {
	g := m.groups
	norm := provision.NormalizeName(name)
	if stmt, arg := m.d.nameLock("gatehouse group " + norm); stmt != "" {
		if _, err := q.ExecContext(ctx, stmt, arg); err != nil {
			return "", fmt.Errorf("sqldir: lock group name: %w", err)
		}
	}
	find := func(where string, v string) (string, bool, error) {
		var k string
		rows, err := q.QueryContext(ctx, `SELECT `+m.d.text(g.key)+` FROM `+g.table+` WHERE `+where+` ORDER BY `+g.key, v)
		if err != nil {
			return "", false, fmt.Errorf("sqldir: find group: %w", err)
		}
		defer rows.Close()
		if !rows.Next() {
			return "", false, rows.Err()
		}
		if err := rows.Scan(&k); err != nil {
			return "", false, fmt.Errorf("sqldir: find group: %w", err)
		}
		return k, true, nil
	}
	if k, ok, err := find(g.name+" = ?", name); err != nil || ok {
		return k, err
	}
	if k, ok, err := find(m.d.fold(m.d.text(g.name))+" = ?", m.dbFold(name)); err != nil || ok {
		return k, err
	}
	cols, args := []string{g.name}, []any{name}
	if g.keyGen == keyFromUUID {
		id, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("sqldir: new key: %w", err)
		}
		cols, args = append(cols, g.key), append(args, id.String())
	}
	return m.insertReturningKey(ctx, q, g.table, g.key, cols, args, "create group in "+m.cfg.Groups.Table)
}
