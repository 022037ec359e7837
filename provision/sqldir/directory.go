package sqldir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"gatehouse/provision"
)

var (
	_ provision.Directory      = (*Store)(nil)
	_ provision.GroupDirectory = (*Store)(nil)
)

// Supports reports whether a field can be stored: every core field and any
// extra field name.
func (s *Store) Supports(field string) bool {
	_, err := s.d.userColumn(field)
	return err == nil && field != provision.FieldID
}

// FindUsers runs q as one SQL query (and a count). Groups are not loaded.
func (s *Store) FindUsers(ctx context.Context, q provision.Query) (provision.Page[provision.User], error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	page, err := find(bounded, s.db, q, "gatehouse_users u", userColumns, "u.id", s.d.userColumn, scanUser, func(u provision.User) string { return u.ID })
	return page, s.tooLong(ctx, bounded, err)
}

// find counts and pages the rows of one table that match q: the filter
// and sort become SQL with bound parameters. Pages in ID order continue
// from where the page before ended (pages.go).
func find[T any](ctx context.Context, d *db, q provision.Query, from, columns, id string,
	column func(string) (column, error), scan func(interface{ Scan(...any) error }) (T, error), idOf func(T) string) (provision.Page[T], error) {
	var page provision.Page[T]
	w := where{d: d.d, column: column}
	if err := w.filter(q.Filter); err != nil {
		return page, fmt.Errorf("sqldir: %w", err)
	}
	db := d.reader()
	now := time.Now()
	gen := d.gen.Load() // before the count: see write
	var key [32]byte
	var mark pageMark
	walk, continued := q.Walk != "" && q.Limit > 0 && (q.SortBy == "" || q.SortBy == provision.FieldID), false
	if walk {
		key = queryKey(q.Limit, from, w.sb.String(), w.args, q.Descending)
		if q.Offset > 0 {
			mark, continued = d.pages.get(q.Walk, pageKey{key, q.Offset}, now)
		}
	}
	if continued && mark.gen == gen && now.Sub(mark.counted) < countReuse {
		page.Total = mark.total
	} else {
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+from+` WHERE `+w.sb.String(), w.args...).Scan(&page.Total); err != nil {
			return page, fmt.Errorf("sqldir: count: %w", err)
		}
		mark.total, mark.gen, mark.counted = page.Total, gen, now
	}
	if q.Limit <= 0 || !continued && q.Offset >= page.Total {
		return page, nil
	}
	order, orderArgs, err := d.d.orderBy(q, column, d.d.orderID(id, w.selective))
	if err != nil {
		return page, fmt.Errorf("sqldir: %w", err)
	}
	cond, args := w.sb.String(), slices.Clone(w.args)
	var paging string
	var pageArgs []any
	if continued {
		op := ">"
		if q.Descending {
			op = "<"
		}
		if mark.inclusive {
			op += "="
		}
		cond, args = "("+cond+") AND "+id+" "+op+" ?", append(args, mark.id)
		paging, pageArgs = d.d.page(q.Limit, 0)
	} else {
		paging, pageArgs = d.d.page(q.Limit, q.Offset)
	}
	args = append(append(args, orderArgs...), pageArgs...)
	rows, err := db.QueryContext(ctx, `SELECT `+columns+` FROM `+from+` WHERE `+cond+order+paging, args...)
	if err != nil {
		return page, fmt.Errorf("sqldir: query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return page, fmt.Errorf("sqldir: query: %w", err)
		}
		page.Items = append(page.Items, item)
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("sqldir: query: %w", err)
	}
	if walk && len(page.Items) > 0 {
		// The next page of a walk starts after this one; this page, asked
		// again, starts at its first row.
		next, same := mark, mark
		next.key, next.id, next.inclusive, next.at = pageKey{key, q.Offset + len(page.Items)}, idOf(page.Items[len(page.Items)-1]), false, now
		same.key, same.id, same.inclusive, same.at = pageKey{key, q.Offset}, idOf(page.Items[0]), true, now
		d.pages.put(q.Walk, next)
		if q.Offset > 0 {
			d.pages.put(q.Walk, same)
		}
	}
	return page, nil
}

// CreateUser stores a new SCIM-owned user.
func (s *Store) CreateUser(ctx context.Context, in provision.User) (provision.User, error) {
	if err := provision.CheckUser(in); err != nil {
		return provision.User{}, fmt.Errorf("sqldir: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return provision.User{}, fmt.Errorf("sqldir: new id: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u := in
	u.ID, u.Owner, u.Version, u.Groups = id.String(), provision.OwnerSCIM, 1, nil
	u.SCIMFields = provision.SortedUnique(u.SCIMFields)
	err = s.write(ctx, func(q querier, now time.Time) error {
		u.Created, u.Updated = now, now
		extra, err := encodeExtra(u.Extra)
		if err != nil {
			return err
		}
		emailNorm, displayNorm := userFolds(u)
		_, err = q.ExecContext(ctx, `INSERT INTO gatehouse_users (id, user_name, user_name_norm, external_id, email, email_norm, display_name,
			display_name_norm, given_name, family_name, extra, status, owner, scim_fields, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scim', ?, 1, ?, ?)`,
			u.ID, u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, emailNorm, u.DisplayName, displayNorm,
			u.GivenName, u.FamilyName, extra, status(u.Active), encodeFields(u.SCIMFields), s.d.time(now), s.d.time(now))
		if err != nil {
			return s.mapWriteErr("create user", err)
		}
		if err := syncValues(ctx, q, u.ID, nil, searchValues(u)); err != nil {
			return err
		}
		return liftTombstones(ctx, q, provision.NormalizeName(u.UserName), u.ExternalID)
	})
	if err != nil {
		return provision.User{}, err
	}
	u.Created, u.Updated = truncStamp(u.Created), truncStamp(u.Updated)
	return u, nil
}

// ReplaceUser writes every field of in; nothing when nothing differs.
func (s *Store) ReplaceUser(ctx context.Context, in provision.User, ifVersion int64) (provision.User, error) {
	if err := provision.CheckUser(in); err != nil {
		return provision.User{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out provision.User
	err := s.write(ctx, func(q querier, now time.Time) error {
		cur, err := s.user(ctx, q, in.ID, true)
		if err != nil {
			return err
		}
		if err := provision.CheckVersion("sqldir: user "+in.ID, cur.Version, ifVersion); err != nil {
			return err
		}
		cur.Groups = nil
		u := in
		u.Owner, u.Created, u.Groups = provision.OwnerSCIM, cur.Created, nil
		u.SCIMFields = provision.SortedUnique(u.SCIMFields)
		if sameUser(cur, u) {
			out = cur
			return nil
		}
		u.Version, u.Updated = cur.Version+1, now
		extra, err := encodeExtra(u.Extra)
		if err != nil {
			return err
		}
		emailNorm, displayNorm := userFolds(u)
		_, err = q.ExecContext(ctx, `UPDATE gatehouse_users SET user_name = ?, user_name_norm = ?, external_id = ?, email = ?, email_norm = ?,
			display_name = ?, display_name_norm = ?, given_name = ?, family_name = ?, extra = ?, status = ?, owner = 'scim', scim_fields = ?,
			version = ?, updated_at = ? WHERE id = ?`,
			u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, emailNorm, u.DisplayName, displayNorm,
			u.GivenName, u.FamilyName, extra, status(u.Active), encodeFields(u.SCIMFields), u.Version, s.d.time(now), u.ID)
		if err != nil {
			return s.mapWriteErr("update user", err)
		}
		if err := syncValues(ctx, q, u.ID, searchValues(cur), searchValues(u)); err != nil {
			return err
		}
		u.Updated = truncStamp(now)
		out = u
		return nil
	})
	return out, err
}

func sameUser(a, b provision.User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.Email == b.Email && a.DisplayName == b.DisplayName &&
		a.GivenName == b.GivenName && a.FamilyName == b.FamilyName && a.Active == b.Active && a.Owner == b.Owner &&
		maps.Equal(a.Extra, b.Extra) && slices.Equal(provision.SortedUnique(a.SCIMFields), provision.SortedUnique(b.SCIMFields))
}

// DeleteUser removes the user, its identities and memberships, and leaves
// a tombstone per identity (and one for the user name and external ID).
func (s *Store) DeleteUser(ctx context.Context, id string, ifVersion int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.write(ctx, func(q querier, now time.Time) error {
		cur, err := s.user(ctx, q, id, true)
		if err != nil {
			return err
		}
		if err := provision.CheckVersion("sqldir: user "+id, cur.Version, ifVersion); err != nil {
			return err
		}
		keys, err := identitiesOf(ctx, q, "gatehouse_identities", "user_id", id)
		if err != nil {
			return err
		}
		if err := writeTombstones(ctx, q, s.d, "gatehouse_tombstones", provision.NormalizeName(cur.UserName), cur.ExternalID, keys, now); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_users WHERE id = ?`, id); err != nil {
			return fmt.Errorf("sqldir: delete user: %w", err)
		}
		return nil
	})
}

// identitiesOf lists the login keys of one user.
func identitiesOf(ctx context.Context, q querier, table, userCol, id string) ([]provision.Key, error) {
	rows, err := q.QueryContext(ctx, `SELECT idp, key_kind, subject FROM `+table+` WHERE `+userCol+` = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqldir: read identities: %w", err)
	}
	defer rows.Close()
	var keys []provision.Key
	for rows.Next() {
		var k provision.Key
		if err := rows.Scan(&k.IdP, &k.Kind, &k.Subject); err != nil {
			return nil, fmt.Errorf("sqldir: read identities: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqldir: read identities: %w", err)
	}
	return keys, nil
}

// writeTombstones records a deleted user: one row per login key, or one
// without a key when it had none, each with the user name and external ID.
func writeTombstones(ctx context.Context, q querier, d *dialect, table, nameNorm, externalID string, keys []provision.Key, now time.Time) error {
	stmt := `INSERT INTO ` + table + ` (user_name_norm, external_id, idp, key_kind, subject, deleted_at) VALUES (?, ?, ?, ?, ?, ?)`
	if len(keys) == 0 {
		if _, err := q.ExecContext(ctx, stmt, nameNorm, externalID, nil, nil, nil, d.time(now)); err != nil {
			return fmt.Errorf("sqldir: write tombstone: %w", err)
		}
	}
	for _, k := range keys {
		if _, err := q.ExecContext(ctx, stmt, nameNorm, externalID, k.IdP, k.Kind, k.Subject, d.time(now)); err != nil {
			return fmt.Errorf("sqldir: write tombstone: %w", err)
		}
	}
	return nil
}

func status(active bool) string {
	if active {
		return "active"
	}
	return "deactivated"
}

// truncStamp gives t the precision it has once stored.
func truncStamp(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

const groupColumns = `g.id, g.name, g.external_id, g.version, g.created_at, g.updated_at`

func scanGroup(row interface{ Scan(...any) error }) (provision.Group, error) {
	var g provision.Group
	err := row.Scan(&g.ID, &g.Name, &g.ExternalID, &g.Version, timeScan{&g.Created}, timeScan{&g.Updated})
	return g, err
}

// FindGroups runs q as one SQL query (and a count).
func (s *Store) FindGroups(ctx context.Context, q provision.Query) (provision.Page[provision.Group], error) {
	bounded, cancel := s.bound(ctx)
	defer cancel()
	page, err := find(bounded, s.db, q, "gatehouse_groups g", groupColumns, "g.id", s.d.groupColumn, scanGroup, func(g provision.Group) string { return g.ID })
	if err != nil || !q.Members {
		return page, s.tooLong(ctx, bounded, err)
	}
	ctx = bounded
	for i := range page.Items {
		if page.Items[i].Members, err = members(ctx, s.reader(), page.Items[i].ID); err != nil {
			return page, err
		}
	}
	return page, nil
}

func members(ctx context.Context, q querier, groupID string) ([]provision.Member, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT u.id, u.user_name FROM gatehouse_memberships m JOIN gatehouse_users u ON u.id = m.user_id
		WHERE m.group_id = ? ORDER BY u.id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("sqldir: read members: %w", err)
	}
	defer rows.Close()
	out := []provision.Member{}
	for rows.Next() {
		var m provision.Member
		if err := rows.Scan(&m.UserID, &m.UserName); err != nil {
			return nil, fmt.Errorf("sqldir: read members: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqldir: read members: %w", err)
	}
	return out, nil
}

// Group returns one group, with its members when asked.
func (s *Store) Group(ctx context.Context, id string, withMembers bool) (provision.Group, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.group(ctx, s.reader(), id, withMembers, false)
}

func (s *Store) group(ctx context.Context, q querier, id string, withMembers, lock bool) (provision.Group, error) {
	th, qh := "", ""
	if lock {
		th, qh = s.d.lock()
	}
	g, err := scanGroup(q.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM gatehouse_groups g`+th+` WHERE g.id = ?`+qh, id))
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("sqldir: group %s: %w", id, provision.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("sqldir: read group: %w", err)
	}
	if withMembers {
		g.Members, err = members(ctx, q, id)
	}
	return g, err
}

// CreateGroup creates a group with SCIM memberships.
func (s *Store) CreateGroup(ctx context.Context, in provision.Group) (provision.Group, error) {
	if _, err := provision.CanonicalGroup(in.Name); err != nil {
		return provision.Group{}, fmt.Errorf("sqldir: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return provision.Group{}, fmt.Errorf("sqldir: new id: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out provision.Group
	err = s.write(ctx, func(q querier, now time.Time) error {
		_, err := q.ExecContext(ctx, `INSERT INTO gatehouse_groups (id, name, name_norm, external_id, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?)`, id.String(), in.Name, provision.NormalizeName(in.Name), in.ExternalID, s.d.time(now), s.d.time(now))
		if err != nil {
			return s.mapWriteErr("create group", err)
		}
		var ids []string
		for _, m := range in.Members {
			ids = append(ids, m.UserID)
		}
		if _, err := s.addMembers(ctx, q, id.String(), ids, now); err != nil {
			return err
		}
		out, err = s.group(ctx, q, id.String(), true, false)
		return err
	})
	return out, err
}

// addMembers adds SCIM memberships; it reports whether any was new.
func (s *Store) addMembers(ctx context.Context, q querier, groupID string, userIDs []string, now time.Time) (bool, error) {
	changed := false
	for _, uid := range userIDs {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_users WHERE id = ?`, uid).Scan(&n); err != nil {
			return false, fmt.Errorf("sqldir: add member: %w", err)
		}
		if n == 0 {
			return false, fmt.Errorf("sqldir: %w: member %q is not a user", provision.ErrInvalid, uid)
		}
		added, err := s.insertAbsent(ctx, q, "gatehouse_memberships", []string{"user_id", "group_id", "source", "created_at"},
			[]any{uid, groupID, provision.SCIMSource, s.d.time(now)}, []string{"user_id", "group_id", "source"})
		if err != nil {
			return false, fmt.Errorf("sqldir: add member: %w", err)
		}
		changed = changed || added
	}
	return changed, nil
}

// UpdateGroup renames the group and adds or removes SCIM memberships;
// each member added costs one user lookup and one insert, each removed one
// delete, whatever the size of the group.
func (s *Store) UpdateGroup(ctx context.Context, id string, c provision.GroupChange, ifVersion int64) (provision.Group, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out provision.Group
	err := s.write(ctx, func(q querier, now time.Time) error {
		cur, err := s.group(ctx, q, id, false, true)
		if err != nil {
			return err
		}
		if err := provision.CheckVersion("sqldir: group "+id, cur.Version, ifVersion); err != nil {
			return err
		}
		changed := false
		if c.Name != nil && *c.Name != cur.Name {
			if _, err := provision.CanonicalGroup(*c.Name); err != nil {
				return fmt.Errorf("sqldir: %w", err)
			}
			if _, err := q.ExecContext(ctx, `UPDATE gatehouse_groups SET name = ?, name_norm = ? WHERE id = ?`,
				*c.Name, provision.NormalizeName(*c.Name), id); err != nil {
				return s.mapWriteErr("rename group", err)
			}
			changed = true
		}
		if c.ExternalID != nil && *c.ExternalID != cur.ExternalID {
			if _, err := q.ExecContext(ctx, `UPDATE gatehouse_groups SET external_id = ? WHERE id = ?`, *c.ExternalID, id); err != nil {
				return s.mapWriteErr("update group", err)
			}
			changed = true
		}
		for _, uid := range c.Remove {
			res, err := q.ExecContext(ctx, `DELETE FROM gatehouse_memberships WHERE group_id = ? AND user_id = ? AND source = ?`, id, uid, provision.SCIMSource)
			if err != nil {
				return fmt.Errorf("sqldir: remove member: %w", err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				changed = true
			}
		}
		added, err := s.addMembers(ctx, q, id, c.Add, now)
		if err != nil {
			return err
		}
		if changed || added {
			if _, err := q.ExecContext(ctx, `UPDATE gatehouse_groups SET version = version + 1, updated_at = ? WHERE id = ?`, s.d.time(now), id); err != nil {
				return fmt.Errorf("sqldir: update group: %w", err)
			}
		}
		// The member list only when asked: reading it would make a
		// one-member change cost the size of the group, inside the
		// write transaction.
		out, err = s.group(ctx, q, id, c.Members, false)
		return err
	})
	return out, err
}

// DeleteGroup removes the group and every membership in it.
func (s *Store) DeleteGroup(ctx context.Context, id string, ifVersion int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.write(ctx, func(q querier, _ time.Time) error {
		cur, err := s.group(ctx, q, id, false, true)
		if err != nil {
			return err
		}
		if err := provision.CheckVersion("sqldir: group "+id, cur.Version, ifVersion); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_groups WHERE id = ?`, id); err != nil {
			return fmt.Errorf("sqldir: delete group: %w", err)
		}
		return nil
	})
}

// liftTombstones forgets what a user SCIM creates again re-claims: the
// tombstone of its user name, that of its external ID, and those of the
// login keys of the deleted users that had either. A part that does not
// match stays: re-creating a user with a deleted user's external ID does
// not free that user's name, as the directory store keeps it too.
func liftTombstones(ctx context.Context, q querier, nameNorm, externalID string) error {
	claims, args := "user_name_norm = ?", []any{nameNorm}
	if externalID != "" {
		claims, args = claims+" OR external_id = ?", append(args, externalID)
	}
	type stmt struct {
		q    string
		args []any
	}
	stmts := []stmt{
		{`UPDATE gatehouse_tombstones SET idp = NULL, key_kind = NULL, subject = NULL WHERE ` + claims, args},
		{`UPDATE gatehouse_tombstones SET user_name_norm = '' WHERE user_name_norm = ?`, []any{nameNorm}},
		{`UPDATE gatehouse_tombstones SET external_id = '' WHERE external_id = ?`, []any{externalID}},
		{`DELETE FROM gatehouse_tombstones WHERE user_name_norm = '' AND external_id = '' AND idp IS NULL`, nil},
	}
	if externalID == "" {
		stmts = slices.Delete(stmts, 2, 3)
	}
	for _, st := range stmts {
		if _, err := q.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("sqldir: lift tombstones: %w", err)
		}
	}
	return nil
}
