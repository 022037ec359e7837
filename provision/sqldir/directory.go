package sqldir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
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
	_, err := userColumn(field)
	return err == nil && field != provision.FieldID
}

// FindUsers runs q as one SQL query (and a count). Groups are not loaded.
func (s *Store) FindUsers(ctx context.Context, q provision.Query) (provision.Page[provision.User], error) {
	return find(ctx, s.r, q, "users u", userColumns, "u.id", userColumn, scanUser)
}

// find counts and pages the rows of one table that match q: the filter
// and sort become SQL with bound parameters.
func find[T any](ctx context.Context, db querier, q provision.Query, from, columns, id string,
	column func(string) (column, error), scan func(interface{ Scan(...any) error }) (T, error)) (provision.Page[T], error) {
	var page provision.Page[T]
	w := where{column: column}
	if err := w.filter(q.Filter); err != nil {
		return page, fmt.Errorf("sqldir: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+from+` WHERE `+w.sb.String(), w.args...).Scan(&page.Total); err != nil {
		return page, fmt.Errorf("sqldir: count: %w", err)
	}
	if q.Limit <= 0 || q.Offset >= page.Total {
		return page, nil
	}
	order, orderArgs, err := orderBy(q, column, id)
	if err != nil {
		return page, fmt.Errorf("sqldir: %w", err)
	}
	args := append(append(w.args, orderArgs...), q.Limit, q.Offset)
	rows, err := db.QueryContext(ctx, `SELECT `+columns+` FROM `+from+` WHERE `+w.sb.String()+order+` LIMIT ? OFFSET ?`, args...)
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
	return page, nil
}

// write runs fn in one write transaction.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx, now time.Time) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldir: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx, s.now().UTC()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldir: commit: %w", err)
	}
	return nil
}

// CreateUser stores a new SCIM-owned user.
func (s *Store) CreateUser(ctx context.Context, in provision.User) (provision.User, error) {
	if in.UserName == "" {
		return provision.User{}, fmt.Errorf("sqldir: %w: empty user name", provision.ErrInvalid)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return provision.User{}, fmt.Errorf("sqldir: new id: %w", err)
	}
	u := in
	u.ID, u.Owner, u.Version, u.Groups = id.String(), provision.OwnerSCIM, 1, nil
	err = s.write(ctx, func(tx *sql.Tx, now time.Time) error {
		u.Created, u.Updated = now, now
		extra, err := encodeExtra(u.Extra)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO users (id, user_name, user_name_norm, external_id, email, display_name, given_name,
			family_name, extra, status, owner, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scim', 1, ?, ?)`,
			u.ID, u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, u.DisplayName, u.GivenName, u.FamilyName,
			extra, status(u.Active), stamp(now), stamp(now))
		if err != nil {
			return mapWriteErr("create user", err)
		}
		// Re-creating a deleted user lifts its tombstones.
		_, err = tx.ExecContext(ctx, `DELETE FROM tombstones WHERE user_name_norm = ? OR (external_id = ? AND ? <> '')`,
			provision.NormalizeName(u.UserName), u.ExternalID, u.ExternalID)
		if err != nil {
			return fmt.Errorf("sqldir: lift tombstones: %w", err)
		}
		return nil
	})
	if err != nil {
		return provision.User{}, err
	}
	u.Created, u.Updated = truncStamp(u.Created), truncStamp(u.Updated)
	return u, nil
}

// ReplaceUser writes every field of in; nothing when nothing differs.
func (s *Store) ReplaceUser(ctx context.Context, in provision.User, ifVersion int64) (provision.User, error) {
	if in.UserName == "" {
		return provision.User{}, fmt.Errorf("sqldir: %w: empty user name", provision.ErrInvalid)
	}
	var out provision.User
	err := s.write(ctx, func(tx *sql.Tx, now time.Time) error {
		cur, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, in.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqldir: user %s: %w", in.ID, provision.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqldir: read user: %w", err)
		}
		if err := provision.CheckVersion("sqldir: user "+in.ID, cur.Version, ifVersion); err != nil {
			return err
		}
		u := in
		u.Owner, u.Created, u.Groups = provision.OwnerSCIM, cur.Created, nil
		if sameUser(cur, u) {
			out = cur
			return nil
		}
		u.Version, u.Updated = cur.Version+1, now
		extra, err := encodeExtra(u.Extra)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET user_name = ?, user_name_norm = ?, external_id = ?, email = ?, display_name = ?,
			given_name = ?, family_name = ?, extra = ?, status = ?, owner = 'scim', version = ?, updated_at = ? WHERE id = ?`,
			u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, u.DisplayName, u.GivenName, u.FamilyName,
			extra, status(u.Active), u.Version, stamp(now), u.ID)
		if err != nil {
			return mapWriteErr("update user", err)
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
		maps.Equal(a.Extra, b.Extra)
}

// DeleteUser removes the user, its identities and memberships, and leaves
// a tombstone per identity (and one for the user name and external ID).
func (s *Store) DeleteUser(ctx context.Context, id string, ifVersion int64) error {
	return s.write(ctx, func(tx *sql.Tx, now time.Time) error {
		cur, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqldir: read user: %w", err)
		}
		if err := provision.CheckVersion("sqldir: user "+id, cur.Version, ifVersion); err != nil {
			return err
		}
		norm := provision.NormalizeName(cur.UserName)
		if _, err := tx.ExecContext(ctx, `INSERT INTO tombstones (user_name_norm, external_id, idp, key_kind, subject, deleted_at)
			SELECT ?, ?, idp, key_kind, subject, ? FROM user_identities WHERE user_id = ?
			UNION ALL SELECT ?, ?, NULL, NULL, NULL, ? WHERE NOT EXISTS (SELECT 1 FROM user_identities WHERE user_id = ?)`,
			norm, cur.ExternalID, stamp(now), id, norm, cur.ExternalID, stamp(now), id); err != nil {
			return fmt.Errorf("sqldir: write tombstone: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
			return fmt.Errorf("sqldir: delete user: %w", err)
		}
		return nil
	})
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
	var created, updated string
	if err := row.Scan(&g.ID, &g.Name, &g.ExternalID, &g.Version, &created, &updated); err != nil {
		return g, err
	}
	g.Created, _ = time.Parse(time.RFC3339Nano, created)
	g.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	g.Created, g.Updated = g.Created.UTC(), g.Updated.UTC()
	return g, nil
}

// FindGroups runs q as one SQL query (and a count).
func (s *Store) FindGroups(ctx context.Context, q provision.Query) (provision.Page[provision.Group], error) {
	page, err := find(ctx, s.r, q, "groups g", groupColumns, "g.id", groupColumn, scanGroup)
	if err != nil || !q.Members {
		return page, err
	}
	for i := range page.Items {
		if page.Items[i].Members, err = members(ctx, s.r, page.Items[i].ID); err != nil {
			return page, err
		}
	}
	return page, nil
}

func members(ctx context.Context, q querier, groupID string) ([]provision.Member, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT u.id, u.user_name FROM memberships m JOIN users u ON u.id = m.user_id
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
	return group(ctx, s.r, id, withMembers)
}

func group(ctx context.Context, q querier, id string, withMembers bool) (provision.Group, error) {
	g, err := scanGroup(q.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM groups g WHERE g.id = ?`, id))
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
	if err := provision.CheckValue("group name", in.Name); err != nil || in.Name == "" {
		return provision.Group{}, fmt.Errorf("sqldir: %w: group name must be non-empty text", provision.ErrInvalid)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return provision.Group{}, fmt.Errorf("sqldir: new id: %w", err)
	}
	var out provision.Group
	err = s.write(ctx, func(tx *sql.Tx, now time.Time) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO groups (id, name, name_norm, external_id, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?)`, id.String(), in.Name, provision.NormalizeName(in.Name), in.ExternalID, stamp(now), stamp(now))
		if err != nil {
			return mapWriteErr("create group", err)
		}
		var ids []string
		for _, m := range in.Members {
			ids = append(ids, m.UserID)
		}
		if _, err := addMembers(ctx, tx, id.String(), ids, now); err != nil {
			return err
		}
		out, err = group(ctx, tx, id.String(), true)
		return err
	})
	return out, err
}

// addMembers adds SCIM memberships; it reports whether any was new.
func addMembers(ctx context.Context, tx *sql.Tx, groupID string, userIDs []string, now time.Time) (bool, error) {
	changed := false
	for _, uid := range userIDs {
		res, err := tx.ExecContext(ctx, `INSERT INTO memberships (user_id, group_id, source, created_at)
			SELECT id, ?, ?, ? FROM users WHERE id = ? ON CONFLICT DO NOTHING`, groupID, provision.SCIMSource, stamp(now), uid)
		if err != nil {
			return false, fmt.Errorf("sqldir: add member: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
			continue
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, uid).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("sqldir: %w: member %q is not a user", provision.ErrInvalid, uid)
		} else if err != nil {
			return false, fmt.Errorf("sqldir: add member: %w", err)
		}
	}
	return changed, nil
}

// UpdateGroup renames the group and adds or removes SCIM memberships.
func (s *Store) UpdateGroup(ctx context.Context, id string, c provision.GroupChange, ifVersion int64) (provision.Group, error) {
	var out provision.Group
	err := s.write(ctx, func(tx *sql.Tx, now time.Time) error {
		cur, err := group(ctx, tx, id, false)
		if err != nil {
			return err
		}
		if err := provision.CheckVersion("sqldir: group "+id, cur.Version, ifVersion); err != nil {
			return err
		}
		changed := false
		if c.Name != nil && *c.Name != cur.Name {
			if err := provision.CheckValue("group name", *c.Name); err != nil || *c.Name == "" {
				return fmt.Errorf("sqldir: %w: group name must be non-empty text", provision.ErrInvalid)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE groups SET name = ?, name_norm = ? WHERE id = ?`,
				*c.Name, provision.NormalizeName(*c.Name), id); err != nil {
				return mapWriteErr("rename group", err)
			}
			changed = true
		}
		if c.ExternalID != nil && *c.ExternalID != cur.ExternalID {
			if _, err := tx.ExecContext(ctx, `UPDATE groups SET external_id = ? WHERE id = ?`, *c.ExternalID, id); err != nil {
				return fmt.Errorf("sqldir: update group: %w", err)
			}
			changed = true
		}
		for _, uid := range c.Remove {
			res, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE group_id = ? AND user_id = ? AND source = ?`, id, uid, provision.SCIMSource)
			if err != nil {
				return fmt.Errorf("sqldir: remove member: %w", err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				changed = true
			}
		}
		added, err := addMembers(ctx, tx, id, c.Add, now)
		if err != nil {
			return err
		}
		if changed || added {
			if _, err := tx.ExecContext(ctx, `UPDATE groups SET version = version + 1, updated_at = ? WHERE id = ?`, stamp(now), id); err != nil {
				return fmt.Errorf("sqldir: update group: %w", err)
			}
		}
		out, err = group(ctx, tx, id, true)
		return err
	})
	return out, err
}

// DeleteGroup removes the group and every membership in it.
func (s *Store) DeleteGroup(ctx context.Context, id string, ifVersion int64) error {
	return s.write(ctx, func(tx *sql.Tx, _ time.Time) error {
		cur, err := group(ctx, tx, id, false)
		if err != nil {
			return err
		}
		if err := provision.CheckVersion("sqldir: group "+id, cur.Version, ifVersion); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE id = ?`, id); err != nil {
			return fmt.Errorf("sqldir: delete group: %w", err)
		}
		return nil
	})
}
