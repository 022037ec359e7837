package sqldir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"gatehouse/provision"
)

// Store is a provision.Store in gatehouse's own tables, which it creates
// and migrates: on SQLite (the default), PostgreSQL or SQL Server.
type Store struct {
	*db
}

var _ provision.Store = (*Store)(nil)

// Open opens the database, creating and migrating gatehouse's tables when
// needed.
func Open(ctx context.Context, cfg Config, opts ...Option) (*Store, error) {
	if cfg.Mapped != nil {
		return nil, errors.New("sqldir: the configuration maps an application's table: use OpenMapped")
	}
	d, err := connect(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := d.migrate(ctx, "managed", d.managedMigrations()); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.prepareLogins(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return &Store{d}, nil
}

// Provision performs the JIT upsert: it reads what the login needs, asks
// provision.Decide, and carries out the plan. The common case, a repeat
// login with nothing new, is one read outside any transaction: no lock,
// no write. Otherwise the login runs in a write transaction that reads
// again under the dialect's locks; a concurrent first login of the same
// key shows up as a uniqueness violation, and the retry finds the
// winner's row.
func (s *Store) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	source := provision.GroupSource(l.Key.IdP)
	return s.upsert(ctx, l,
		func() (*provision.Found, error) {
			rec, found, err := s.load(ctx, s.reader(), l.Key, source, false)
			if err != nil || !found {
				return nil, err
			}
			return &provision.Found{User: &rec.user, Groups: rec.srcGroups}, nil
		},
		func(q querier) (provision.Found, error) { return s.find(ctx, q, l, source, true) },
		func(q querier, p provision.Plan, now time.Time) (provision.Result, error) {
			return s.apply(ctx, q, l, p, source, now)
		})
}

// Plan says what Provision would do for l, reading only.
func (s *Store) Plan(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := s.reader()
	f, err := s.find(ctx, q, l, provision.GroupSource(l.Key.IdP), false)
	if err != nil {
		return provision.Result{}, err
	}
	if f.User == nil && f.Link == nil && !f.Tombstoned {
		// A write would learn this from the unique index.
		name := provision.NormalizeName(l.Claims.Fields[provision.FieldUserName])
		var n int
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_users WHERE user_name_norm = ?`, name).Scan(&n); err != nil {
			return provision.Result{}, fmt.Errorf("sqldir: read user: %w", err)
		}
		f.NameTaken = n > 0
	}
	return preview(l, f, nil)
}

// find reads what a login needs (provision.Found): the user its key
// names; when none, whether a tombstone refuses it and which user it
// would link to. lock takes the dialect's update locks, for a read that
// decides a write.
func (s *Store) find(ctx context.Context, q querier, l provision.Login, source string, lock bool) (provision.Found, error) {
	var f provision.Found
	rec, found, err := s.load(ctx, q, l.Key, source, lock)
	if err != nil || found {
		f.User, f.Groups = &rec.user, rec.srcGroups
		return f, err
	}
	if f.Tombstoned, err = tombstoned(ctx, q, l); err != nil || f.Tombstoned {
		return f, err
	}
	u, ok, err := s.linkCandidate(ctx, q, l, lock)
	if err != nil || !ok {
		return f, err
	}
	if u.Groups, f.LinkGroups, err = groupsOf(ctx, q, u.ID, source); err != nil {
		return f, err
	}
	f.Link = &u
	return f, nil
}

// apply carries out a plan in the write transaction q.
func (s *Store) apply(ctx context.Context, q querier, l provision.Login, p provision.Plan, source string, now time.Time) (provision.Result, error) {
	switch p.Action {
	case provision.ActNothing:
		return p.Result(), nil
	case provision.ActCreate:
		return s.create(ctx, q, l, p, source, now)
	case provision.ActLink:
		if _, err := q.ExecContext(ctx, insertIdentitySQL, l.Key.IdP, l.Key.Kind, l.Key.Subject, p.Before.ID, s.d.time(now)); err != nil {
			return provision.Result{}, s.mapWriteErr("link identity", err)
		}
		if len(p.Changed) == 0 {
			return p.Result(), nil
		}
	}
	u := p.After
	u.Version++
	u.Updated = truncStamp(now)
	extra, err := encodeExtra(u.Extra)
	if err != nil {
		return provision.Result{}, err
	}
	emailNorm, displayNorm := userFolds(u)
	_, err = q.ExecContext(ctx, updateUserSQL, u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, emailNorm, u.DisplayName, displayNorm,
		u.GivenName, u.FamilyName, extra, u.Version, s.d.time(now), u.ID)
	if err != nil {
		return provision.Result{}, s.mapWriteErr("update user", err)
	}
	if err := syncValues(ctx, q, u.ID, searchValues(p.Before), searchValues(u)); err != nil {
		return provision.Result{}, err
	}
	for _, n := range p.DropGroups {
		if _, err := q.ExecContext(ctx, dropMembershipSQL, u.ID, source, n); err != nil {
			return provision.Result{}, fmt.Errorf("sqldir: remove membership: %w", err)
		}
	}
	if err := s.addMemberships(ctx, q, u.ID, source, p.AddGroups, now); err != nil {
		return provision.Result{}, err
	}
	if u.Groups, _, err = groupsOf(ctx, q, u.ID, source); err != nil {
		return provision.Result{}, err
	}
	res := p.Result()
	res.User = u
	return res, nil
}

// create writes the user a plan creates, with its identity and groups.
func (s *Store) create(ctx context.Context, q querier, l provision.Login, p provision.Plan, source string, now time.Time) (provision.Result, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: new id: %w", err)
	}
	u := p.After
	u.ID, u.Created, u.Updated = id.String(), truncStamp(now), truncStamp(now)
	extra, err := encodeExtra(u.Extra)
	if err != nil {
		return provision.Result{}, err
	}
	emailNorm, displayNorm := userFolds(u)
	_, err = q.ExecContext(ctx, insertUserSQL, u.ID, u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, emailNorm, u.DisplayName, displayNorm,
		u.GivenName, u.FamilyName, extra, s.d.time(now), s.d.time(now))
	if err != nil {
		return provision.Result{}, s.mapWriteErr("create user", err)
	}
	if err := syncValues(ctx, q, u.ID, nil, searchValues(u)); err != nil {
		return provision.Result{}, err
	}
	_, err = q.ExecContext(ctx, insertIdentitySQL, l.Key.IdP, l.Key.Kind, l.Key.Subject, u.ID, s.d.time(now))
	if err != nil {
		return provision.Result{}, s.mapWriteErr("create identity", err)
	}
	if err := s.addMemberships(ctx, q, u.ID, source, p.AddGroups, now); err != nil {
		return provision.Result{}, err
	}
	if len(p.AddGroups) > 0 {
		if u.Groups, _, err = groupsOf(ctx, q, u.ID, source); err != nil {
			return provision.Result{}, err
		}
	}
	res := p.Result()
	res.User = u
	return res, nil
}

// addMemberships adds the memberships of one source, creating groups that
// do not exist yet. A group is looked up first: most logins name groups
// that exist. SQL Server inserts first, under the key-range lock that
// keeps the group from going away before the transaction ends.
func (s *Store) addMemberships(ctx context.Context, q querier, userID, source string, names []string, now time.Time) error {
	for _, name := range names {
		norm := provision.NormalizeName(name)
		var groupID string
		err := sql.ErrNoRows
		if s.d.name != SQLServer {
			err = q.QueryRowContext(ctx, groupIDSQL, norm).Scan(&groupID)
		}
		if errors.Is(err, sql.ErrNoRows) {
			gid, idErr := uuid.NewV7()
			if idErr != nil {
				return fmt.Errorf("sqldir: new id: %w", idErr)
			}
			if _, err := s.insertAbsent(ctx, q, "gatehouse_groups", groupCols,
				[]any{gid.String(), name, norm, s.d.time(now), s.d.time(now)}, groupKey); err != nil {
				return s.mapWriteErr("create group", err)
			}
			err = q.QueryRowContext(ctx, groupIDSQL, norm).Scan(&groupID)
		}
		if err != nil {
			return fmt.Errorf("sqldir: read group: %w", err)
		}
		if _, err := s.insertAbsent(ctx, q, "gatehouse_memberships", membershipCols,
			[]any{userID, groupID, source, s.d.time(now)}, membershipKey); err != nil {
			return fmt.Errorf("sqldir: add membership: %w", err)
		}
	}
	return nil
}

// SetActive activates or deactivates a user; setting the state it already
// has writes nothing.
func (s *Store) SetActive(ctx context.Context, id string, active bool) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	st := status(active)
	var n int64
	err := s.write(ctx, func(q querier, now time.Time) error {
		res, err := q.ExecContext(ctx, `UPDATE gatehouse_users SET status = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND status <> ?`, st, s.d.time(now), id, st)
		if err != nil {
			return fmt.Errorf("sqldir: set status: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := s.User(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// tombstoned reports whether the login's key, user name or external ID
// belonged to a user deleted over SCIM.
func tombstoned(ctx context.Context, q querier, l provision.Login) (bool, error) {
	args := []any{l.Key.IdP, l.Key.Kind, l.Key.Subject}
	name, ext := provision.NormalizeName(l.Claims.Fields[provision.FieldUserName]), l.Claims.Fields[provision.FieldExternalID]
	if name != "" {
		args = append(args, name)
	}
	if ext != "" {
		args = append(args, ext)
	}
	var n int
	if err := q.QueryRowContext(ctx, tombstoneSQL(name != "", ext != ""), args...).Scan(&n); err != nil {
		return false, fmt.Errorf("sqldir: read tombstones: %w", err)
	}
	return n > 0, nil
}

// linkCandidate finds the one unclaimed SCIM user a login would link to.
func (s *Store) linkCandidate(ctx context.Context, q querier, l provision.Login, lock bool) (provision.User, bool, error) {
	var col, v string
	switch l.LinkBy {
	case provision.LinkByUserName:
		col, v = "u.user_name_norm", provision.NormalizeName(l.Claims.Fields[provision.FieldUserName])
	case provision.LinkByExternalID:
		col, v = "u.external_id", l.Claims.Fields[provision.FieldExternalID]
	}
	if col == "" || v == "" {
		return provision.User{}, false, nil
	}
	rows, err := q.QueryContext(ctx, s.d.linkSQL(col, lock), v)
	if err != nil {
		return provision.User{}, false, fmt.Errorf("sqldir: find user to link: %w", err)
	}
	var found []provision.User
	for len(found) < 2 && rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return provision.User{}, false, fmt.Errorf("sqldir: find user to link: %w", err)
		}
		found = append(found, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return provision.User{}, false, fmt.Errorf("sqldir: find user to link: %w", err)
	}
	switch len(found) {
	case 0:
		return provision.User{}, false, nil
	case 1:
		return found[0], true, nil
	}
	return provision.User{}, false, fmt.Errorf("sqldir: several SCIM users have %s %q: %w", l.LinkBy, v, provision.ErrConflict)
}
