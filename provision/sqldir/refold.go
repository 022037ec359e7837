package sqldir

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"gatehouse/provision"
)

// refoldStep is a migration that runs in Go rather than SQL: it recomputes
// every stored name fold (the *_norm columns) with provision.NormalizeName,
// whose definition changed from NFC and lower case to NFKC and full case
// folding, and then again to remove accents. A migration list names it
// wherever the fold changed: a store runs it once per change, when it
// opens at a schema version from before it.
const refoldStep = "-- gatehouse: recompute the stored name folds in Go"

// foldTable is one table holding a fold column.
type foldTable struct {
	table, norm string
	// id is the key column; "" for tombstones, refolded value by value.
	id string
	// name is the column the fold is computed from. When "", the table
	// keeps only the fold (mapped bookkeeping) and the new fold is
	// computed from the old one: NormalizeName folds it to the same value
	// as the name it came from.
	name    string
	created string // the column ordering rows oldest first
}

var foldTables = map[string][]foldTable{
	"managed": {
		{table: "gatehouse_users", id: "id", name: "user_name", norm: "user_name_norm", created: "created_at"},
		{table: "gatehouse_groups", id: "id", name: "name", norm: "name_norm", created: "created_at"},
		{table: "gatehouse_tombstones", norm: "user_name_norm"},
	},
	"mapped": {
		{table: "gatehouse_mapped_users", id: "user_key", norm: "user_name_norm", created: "created_at"},
	},
}

// foldRow is one row of a fold table as read.
type foldRow struct {
	id, name, norm string
	want           string // the new fold
}

// refold runs the refold step for the tables of one component.
func (d *db) refold(ctx context.Context, q querier, component string) error {
	for _, t := range foldTables[component] {
		if err := d.refoldTable(ctx, q, t); err != nil {
			return fmt.Errorf("refold %s: %w", t.table, err)
		}
	}
	return nil
}

func (d *db) refoldTable(ctx context.Context, q querier, t foldTable) error {
	if t.id == "" {
		return refoldValues(ctx, q, t)
	}
	rows, err := d.foldRows(ctx, q, t)
	if err != nil {
		return err
	}
	// Rows whose new folds collide: the one that already holds the fold,
	// or else the oldest, keeps it; every other one is kept too, with a
	// fold marked as a collision that no name can equal (names hold no
	// control characters), and is logged so that an operator can rename
	// or remove it. No row is lost.
	byFold := map[string][]*foldRow{}
	for i := range rows {
		byFold[rows[i].want] = append(byFold[rows[i].want], &rows[i])
	}
	for fold, rs := range byFold {
		if len(rs) < 2 {
			continue
		}
		keep := slices.IndexFunc(rs, func(r *foldRow) bool { return r.norm == fold })
		if keep < 0 {
			keep = 0 // rows come oldest first
		}
		ids := make([]string, 0, len(rs))
		for i, r := range rs {
			ids = append(ids, r.id)
			if i != keep {
				r.want = collisionFold(r.id, fold)
			}
		}
		d.log.Warn("stored names fold to one name under the new fold; all rows are kept, only the first is found by name",
			zap.String("table", t.table), zap.Strings("ids", ids))
	}
	// Two passes, so that no intermediate state breaks the unique
	// constraint: every changing row first takes a fold of its own.
	changed := slices.DeleteFunc(rows, func(r foldRow) bool { return r.want == r.norm })
	for _, r := range changed {
		if _, err := q.ExecContext(ctx, `UPDATE `+t.table+` SET `+t.norm+` = ? WHERE `+t.id+` = ?`, "\x1frefold "+r.id, r.id); err != nil {
			return err
		}
	}
	for _, r := range changed {
		if _, err := q.ExecContext(ctx, `UPDATE `+t.table+` SET `+t.norm+` = ? WHERE `+t.id+` = ?`, r.want, r.id); err != nil {
			return err
		}
	}
	if len(changed) > 0 {
		d.log.Info("recomputed stored name folds", zap.String("table", t.table), zap.Int("rows", len(changed)))
	}
	return nil
}

// collisionFold is the fold kept by a row whose name collides with
// another's: unique by the row's ID, equal to no name's fold (names hold
// no control characters), and within the narrowest fold column (SQL
// Server's 256 characters).
func collisionFold(id, fold string) string {
	s := []rune("\x1fcollision " + id + " " + fold)
	return string(s[:min(len(s), 200)])
}

// foldRows reads a table's rows, oldest first, with their new folds.
func (d *db) foldRows(ctx context.Context, q querier, t foldTable) ([]foldRow, error) {
	name := cmp.Or(t.name, t.norm)
	rs, err := q.QueryContext(ctx, `SELECT `+t.id+`, `+name+`, `+t.norm+` FROM `+t.table+` ORDER BY `+t.created+`, `+t.id)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var rows []foldRow
	for rs.Next() {
		var r foldRow
		if err := rs.Scan(&r.id, &r.name, &r.norm); err != nil {
			return nil, err
		}
		r.want = provision.NormalizeName(r.name)
		rows = append(rows, r)
	}
	return rows, rs.Err()
}

// refoldValues refolds a fold column without a unique constraint or a
// name beside it, value by value.
func refoldValues(ctx context.Context, q querier, t foldTable) error {
	rs, err := q.QueryContext(ctx, `SELECT DISTINCT `+t.norm+` FROM `+t.table)
	if err != nil {
		return err
	}
	var olds []string
	for rs.Next() {
		var v string
		if err := rs.Scan(&v); err != nil {
			rs.Close()
			return err
		}
		olds = append(olds, v)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	for _, old := range olds {
		if n := provision.NormalizeName(old); n != old {
			if _, err := q.ExecContext(ctx, `UPDATE `+t.table+` SET `+t.norm+` = ? WHERE `+t.norm+` = ?`, n, old); err != nil {
				return err
			}
		}
	}
	return nil
}
