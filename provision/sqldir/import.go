package sqldir

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"gatehouse/provision"
)

var _ provision.Importer = (*Store)(nil)

// maxParams bounds the bound parameters of one statement: SQL Server
// takes at most 2,100, the lowest of the three databases.
const maxParams = 2000

// ImportUsers creates each user, or replaces the user holding its user
// name (compared folded, as the unique index does), as CreateUser and
// ReplaceUser would: the same checks, SCIM ownership, version bump only
// on a change, and tombstone lifting for the users it creates (a replace
// lifts none, as ReplaceUser lifts none). The batch is one transaction:
// one read of the users it names, one of the tombstones those it creates
// left, multi-row inserts for the new users and one update per changed
// user; an unchanged user costs nothing.
//
// A user whose ID is set was read by the caller before the batch (a
// replace decoded over the stored user, as a SCIM PUT is): it must still
// be the user holding that name, at u.Version when that is not 0, or it
// gets provision.ErrVersion. A user name that a user earlier in the same
// batch already holds gets provision.ErrConflict: the earlier one wins.
//
// When the database refuses the batch for one user's sake (a value too
// long for its column, a name another writer took meanwhile), the batch
// is run again one user per transaction, so that only that user fails.
func (s *Store) ImportUsers(ctx context.Context, users []provision.User) ([]provision.Imported, error) {
	out, err := s.importBatch(ctx, users)
	if err == nil || len(users) < 2 || !(errors.Is(err, provision.ErrInvalid) || errors.Is(err, provision.ErrConflict)) {
		return out, err
	}
	out = make([]provision.Imported, len(users))
	for i, u := range users {
		one, err := s.importBatch(ctx, []provision.User{u})
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			one = []provision.Imported{{Err: err}}
		}
		out[i] = one[0]
	}
	return out, nil
}

// importBatch writes one batch in one transaction. A returned error is the
// transaction's; per-user refusals are in the results.
func (s *Store) importBatch(ctx context.Context, users []provision.User) ([]provision.Imported, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// Check and fold outside the transaction: it is pure work.
	type item struct {
		u    provision.User
		norm string
	}
	items := make([]item, len(users))
	checked := make([]error, len(users))
	for i, in := range users {
		if err := provision.CheckUser(in); err != nil {
			checked[i] = fmt.Errorf("sqldir: %w", err)
			continue
		}
		u := in
		u.Owner, u.Groups = provision.OwnerSCIM, nil
		u.SCIMFields = provision.SortedUnique(u.SCIMFields)
		items[i] = item{u: u, norm: provision.NormalizeName(u.UserName)}
	}
	var out []provision.Imported
	err := s.write(ctx, func(q querier, now time.Time) error {
		out = make([]provision.Imported, len(users))
		var names []string
		for i, it := range items {
			if checked[i] == nil {
				names = append(names, it.norm)
			}
		}
		existing, err := s.usersByName(ctx, q, names, true)
		if err != nil {
			return err
		}
		seen := make(map[string]bool, len(users))
		var created, changed []provision.User
		var before []map[string]string // the search values of each changed user
		for i, it := range items {
			if checked[i] != nil {
				out[i].Err = checked[i]
				continue
			}
			if seen[it.norm] {
				out[i].Err = fmt.Errorf("sqldir: user name %q: an earlier user of the batch holds it: %w", it.u.UserName, provision.ErrConflict)
				continue
			}
			seen[it.norm] = true
			cur, ok := existing[it.norm]
			u := it.u
			if u.ID != "" && (!ok || cur.ID != u.ID) {
				out[i].Err = fmt.Errorf("sqldir: user %q changed since it was read: %w", u.UserName, provision.ErrVersion)
				continue
			}
			if !ok {
				id, err := uuid.NewV7()
				if err != nil {
					return fmt.Errorf("sqldir: new id: %w", err)
				}
				u.ID, u.Version, u.Created, u.Updated = id.String(), 1, now, now
				created = append(created, u)
				out[i] = provision.Imported{Action: provision.ActCreate, ID: u.ID}
				continue
			}
			if err := provision.CheckVersion("sqldir: user "+cur.ID, cur.Version, u.Version); err != nil {
				out[i].Err = err
				continue
			}
			u.ID, u.Created = cur.ID, cur.Created
			if sameUser(cur, u) {
				out[i] = provision.Imported{Action: provision.ActNothing, ID: cur.ID}
				continue
			}
			u.Version, u.Updated = cur.Version+1, now
			changed, before = append(changed, u), append(before, searchValues(cur))
			out[i] = provision.Imported{Action: provision.ActUpdate, ID: u.ID}
		}
		if err := s.insertUserRows(ctx, q, created); err != nil {
			return err
		}
		if err := insertValueRows(ctx, q, created); err != nil {
			return err
		}
		for i, u := range changed {
			if err := s.updateUserRow(ctx, q, u); err != nil {
				return err
			}
			if err := syncValues(ctx, q, u.ID, before[i], searchValues(u)); err != nil {
				return err
			}
		}
		return s.liftImported(ctx, q, created)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UsersByName reads the users holding the given user names, compared
// folded (provision.NormalizeName), keyed by that fold; groups are not
// loaded. It is the read an import makes before decoding each existing
// user over its stored record, as a SCIM PUT does: one indexed query per
// 2,000 names, where a filter of as many or-ed comparisons costs the
// database far more to plan.
func (s *Store) UsersByName(ctx context.Context, names []string) (map[string]provision.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	norms := make([]string, len(names))
	for i, n := range names {
		norms[i] = provision.NormalizeName(n)
	}
	return s.usersByName(ctx, s.reader(), norms, false)
}

// usersByName reads the users holding the folded names, keyed by fold,
// under the dialect's update locks when lock is set.
func (s *Store) usersByName(ctx context.Context, q querier, norms []string, lock bool) (map[string]provision.User, error) {
	found := make(map[string]provision.User, len(norms))
	th, qh := "", ""
	if lock {
		th, qh = s.d.lock()
	}
	for chunk := range slices.Chunk(norms, maxParams) {
		rows, err := q.QueryContext(ctx, `SELECT `+userColumns+`, u.user_name_norm FROM gatehouse_users u`+th+
			` WHERE u.user_name_norm IN (`+marks(len(chunk))+`)`+qh, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("sqldir: read users: %w", err)
		}
		for rows.Next() {
			var norm string
			u, err := scanUser(scanWith{rows, &norm})
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqldir: read users: %w", err)
			}
			found[norm] = u
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqldir: read users: %w", err)
		}
	}
	return found, nil
}

// scanWith scans the columns scanUser reads, then more.
type scanWith struct {
	row  interface{ Scan(...any) error }
	more *string
}

func (s scanWith) Scan(dest ...any) error { return s.row.Scan(append(dest, s.more)...) }

// userWriteColumns are the columns an import writes, in the order
// userRow gives their values. Every write of gatehouse_users rows here
// goes through insertUserRows and updateUserRow, which use this list.
var userWriteColumns = []string{"id", "user_name", "user_name_norm", "external_id", "email", "email_norm", "display_name",
	"display_name_norm", "given_name", "family_name", "extra", "status", "owner", "scim_fields", "version", "created_at", "updated_at"}

// userRow gives u's values for userWriteColumns.
func (s *Store) userRow(u provision.User) ([]any, error) {
	extra, err := encodeExtra(u.Extra)
	if err != nil {
		return nil, err
	}
	emailNorm, displayNorm := userFolds(u)
	return []any{u.ID, u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, emailNorm, u.DisplayName, displayNorm,
		u.GivenName, u.FamilyName, extra, status(u.Active), provision.OwnerSCIM, encodeFields(u.SCIMFields), u.Version,
		s.d.time(u.Created), s.d.time(u.Updated)}, nil
}

// insertValueRows indexes the extra values of new users (search.go), with
// multi-row INSERTs.
func insertValueRows(ctx context.Context, q querier, users []provision.User) error {
	var args []any
	for _, u := range users {
		values := searchValues(u)
		for _, f := range slices.Sorted(maps.Keys(values)) {
			if v := values[f]; v != "" {
				args = append(args, u.ID, f, provision.NormalizeName(v))
			}
		}
	}
	for chunk := range slices.Chunk(args, maxParams/3*3) {
		stmt := `INSERT INTO gatehouse_user_values (user_id, field, value_norm) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(chunk)/3), ", ")
		if _, err := q.ExecContext(ctx, stmt, chunk...); err != nil {
			return fmt.Errorf("sqldir: index extra values: %w", err)
		}
	}
	return nil
}

// insertUserRows inserts users with multi-row INSERTs, as many rows per
// statement as the parameter bound allows.
func (s *Store) insertUserRows(ctx context.Context, q querier, users []provision.User) error {
	cols := len(userWriteColumns)
	row := "(" + marks(cols) + ")"
	for chunk := range slices.Chunk(users, maxParams/cols) {
		args := make([]any, 0, len(chunk)*cols)
		for _, u := range chunk {
			vals, err := s.userRow(u)
			if err != nil {
				return err
			}
			args = append(args, vals...)
		}
		stmt := `INSERT INTO gatehouse_users (` + strings.Join(userWriteColumns, ", ") + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(row+", ", len(chunk)), ", ")
		if _, err := q.ExecContext(ctx, stmt, args...); err != nil {
			return s.mapWriteErr("import users", err)
		}
	}
	return nil
}

// updateUserRow writes every column of an existing user but its ID and
// creation time.
func (s *Store) updateUserRow(ctx context.Context, q querier, u provision.User) error {
	vals, err := s.userRow(u)
	if err != nil {
		return err
	}
	var set strings.Builder
	var args []any
	for i, c := range userWriteColumns {
		if c == "id" || c == "created_at" {
			continue
		}
		if set.Len() > 0 {
			set.WriteString(", ")
		}
		set.WriteString(c + " = ?")
		args = append(args, vals[i])
	}
	if _, err := q.ExecContext(ctx, `UPDATE gatehouse_users SET `+set.String()+` WHERE id = ?`, append(args, u.ID)...); err != nil {
		return s.mapWriteErr("update user", err)
	}
	return nil
}

// liftImported lifts the tombstones of the created users that have one,
// as CreateUser does for each: one read finds them, so that a batch of
// users nobody deleted costs one query.
func (s *Store) liftImported(ctx context.Context, q querier, created []provision.User) error {
	if len(created) == 0 {
		return nil
	}
	var names, exts []string
	for _, u := range created {
		names = append(names, provision.NormalizeName(u.UserName))
		if u.ExternalID != "" {
			exts = append(exts, u.ExternalID)
		}
	}
	deadNames, err := tombstonedValues(ctx, q, "user_name_norm", names)
	if err != nil {
		return err
	}
	deadExts, err := tombstonedValues(ctx, q, "external_id", exts)
	if err != nil {
		return err
	}
	if len(deadNames) == 0 && len(deadExts) == 0 {
		return nil
	}
	for _, u := range created {
		norm := provision.NormalizeName(u.UserName)
		if deadNames[norm] || u.ExternalID != "" && deadExts[u.ExternalID] {
			if err := liftTombstones(ctx, q, norm, u.ExternalID); err != nil {
				return err
			}
		}
	}
	return nil
}

// tombstonedValues says which of values a tombstone holds in column.
func tombstonedValues(ctx context.Context, q querier, column string, values []string) (map[string]bool, error) {
	found := map[string]bool{}
	for chunk := range slices.Chunk(values, maxParams) {
		rows, err := q.QueryContext(ctx, `SELECT DISTINCT `+column+` FROM gatehouse_tombstones WHERE `+column+` IN (`+marks(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("sqldir: read tombstones: %w", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqldir: read tombstones: %w", err)
			}
			found[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqldir: read tombstones: %w", err)
		}
	}
	return found, nil
}

// marks is n comma-separated placeholders.
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
