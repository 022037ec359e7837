package sqldir

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"gatehouse/provision"
)

// SCIM clients find users by more than their name: by e-mail, display
// name, external ID, an extra attribute, a prefix or a time. Each of these
// is answered from an index (see query.go):
//
//   - email_norm and display_name_norm hold the fold of the e-mail and
//     display name (provision.NormalizeName), as user_name_norm holds the
//     name's, so that a case-insensitive comparison is an index lookup on
//     every database and folds exactly as Go does;
//   - gatehouse_user_values holds the fold of every other text a filter
//     may compare case-insensitively (the given and family names, and
//     every extra value), one row per user and field, so that a filter on
//     an extra attribute (a home e-mail, a department) is a lookup in one
//     index instead of a read of every user's JSON.
//
// Every case-insensitive comparison reads these folds, whatever its
// operator, so that it folds as provision.NormalizeName does on every
// database (a server's lower() folds otherwise). Every write of a user
// keeps them current: userFolds gives the columns' values, searchValues
// the fields of the rows and syncValues writes them.

// searchStep is a migration run in Go: it fills the stored folds of
// every user. A migration list names it where the stored folds are
// introduced, and again wherever provision.NormalizeName changes (with
// refoldStep).
const searchStep = "-- gatehouse: compute the stored search folds in Go"

// userFolds are the stored folds of a user's e-mail and display name.
func userFolds(u provision.User) (email, displayName string) {
	return provision.NormalizeName(u.Email), provision.NormalizeName(u.DisplayName)
}

// searchValues are the fields of a user whose folds gatehouse_user_values
// holds: the given and family names and every extra value. Extra field
// names never name a core field.
func searchValues(u provision.User) map[string]string {
	out := make(map[string]string, len(u.Extra)+2)
	maps.Copy(out, u.Extra)
	out[provision.FieldGivenName], out[provision.FieldFamilyName] = u.GivenName, u.FamilyName
	return out
}

// syncValues brings a user's rows of gatehouse_user_values from the extra
// values before to those after: only changed fields are written. A new
// user has no before.
func syncValues(ctx context.Context, q querier, userID string, before, after map[string]string) error {
	for _, f := range slices.Sorted(maps.Keys(before)) {
		if v, ok := after[f]; ok && v != "" && provision.NormalizeName(v) == provision.NormalizeName(before[f]) {
			continue
		}
		if _, err := q.ExecContext(ctx, deleteValueSQL, userID, f); err != nil {
			return fmt.Errorf("sqldir: index extra values: %w", err)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(after)) {
		v := after[f]
		if v == "" {
			continue
		}
		if old, ok := before[f]; ok && old != "" && provision.NormalizeName(old) == provision.NormalizeName(v) {
			continue
		}
		if _, err := q.ExecContext(ctx, insertValueSQL, userID, f, provision.NormalizeName(v)); err != nil {
			return fmt.Errorf("sqldir: index extra values: %w", err)
		}
	}
	return nil
}

// rebuildSearch recomputes every user's stored folds and extra value
// rows: the searchStep migration.
func (d *db) rebuildSearch(ctx context.Context, q querier) error {
	rows, err := q.QueryContext(ctx, `SELECT `+userColumns+` FROM gatehouse_users u`)
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	var users []provision.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("read users: %w", err)
		}
		users = append(users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_user_values`); err != nil {
		return err
	}
	for _, u := range users {
		email, display := userFolds(u)
		if _, err := q.ExecContext(ctx, `UPDATE gatehouse_users SET email_norm = ?, display_name_norm = ? WHERE id = ?`, email, display, u.ID); err != nil {
			return err
		}
		if err := syncValues(ctx, q, u.ID, nil, searchValues(u)); err != nil {
			return err
		}
	}
	return nil
}
