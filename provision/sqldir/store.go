package sqldir

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	return &Store{d}, nil
}

// plan is the difference between a stored record and a login's claims.
type plan struct {
	user       provision.User // merged
	changed    []string
	addGroups  []string // names
	dropGroups []string // normalised names
}

func diff(rec record, l provision.Login) plan {
	c := l.Claims
	if rec.user.Owner == provision.OwnerSCIM && len(l.Reserved) > 0 {
		c = c.Without(l.Reserved)
	}
	p := plan{user: rec.user}
	p.user.Extra = maps.Clone(rec.user.Extra)
	p.changed = p.user.Apply(c)
	if c.HasGroups {
		want := map[string]string{}
		for _, g := range c.Groups {
			if n := provision.NormalizeName(g); want[n] == "" {
				want[n] = g
			}
		}
		have := slices.Sorted(maps.Keys(rec.srcGroups))
		add, drop := provision.DiffGroups(have, slices.Sorted(maps.Keys(want)))
		for _, n := range add {
			p.addGroups = append(p.addGroups, want[n])
		}
		p.dropGroups = drop
		if len(add)+len(drop) > 0 {
			p.changed = append(p.changed, provision.FieldGroups)
		}
	}
	return p
}

// Provision performs the JIT upsert. The common case, a repeat login with
// nothing new, is one read outside any transaction: no lock, no write.
// Otherwise the login runs in a write transaction that reads again under
// the dialect's locks; a concurrent first login of the same key shows up
// as a uniqueness violation, and the retry finds the winner's row.
func (s *Store) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	source := provision.GroupSource(l.Key.IdP)
	rec, found, err := s.load(ctx, s.reader(), l.Key, source, false)
	if err != nil {
		return provision.Result{}, err
	}
	if found {
		if !rec.user.Active {
			return provision.Result{User: rec.user}, fmt.Errorf("sqldir: user %s: %w", rec.user.ID, provision.ErrDisabled)
		}
		if p := diff(rec, l); len(p.changed) == 0 {
			return provision.Result{User: rec.user, Outcome: provision.Unchanged}, nil
		}
	}
	var res provision.Result
	err = s.write(ctx, func(q querier, now time.Time) error {
		var err error
		res, err = s.provisionTx(ctx, q, l, source, now)
		return err
	})
	return res, err
}

func (s *Store) provisionTx(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (provision.Result, error) {
	rec, found, err := s.load(ctx, q, l.Key, source, true) // again, under the write lock
	if err != nil {
		return provision.Result{}, err
	}
	linked := false
	if !found {
		if err := checkTombstone(ctx, q, l); err != nil {
			return provision.Result{}, err
		}
		rec, linked, err = s.link(ctx, q, l, source, now)
		if err != nil {
			return provision.Result{}, err
		}
		found = linked
	}
	if !found {
		if l.NoCreate {
			return provision.Result{}, fmt.Errorf("sqldir: user for %s %q: %w", l.Key.Kind, l.Key.Subject, provision.ErrNotFound)
		}
		return s.create(ctx, q, l, source, now)
	}
	if !rec.user.Active {
		return provision.Result{User: rec.user}, fmt.Errorf("sqldir: user %s: %w", rec.user.ID, provision.ErrDisabled)
	}
	p := diff(rec, l)
	if len(p.changed) == 0 {
		if linked {
			return provision.Result{User: rec.user, Outcome: provision.Linked}, nil
		}
		return provision.Result{User: rec.user, Outcome: provision.Unchanged}, nil
	}
	u := p.user
	u.Version++
	u.Updated = truncStamp(now)
	extra, err := encodeExtra(u.Extra)
	if err != nil {
		return provision.Result{}, err
	}
	_, err = q.ExecContext(ctx, `UPDATE gatehouse_users SET user_name = ?, user_name_norm = ?, external_id = ?, email = ?, display_name = ?,
		given_name = ?, family_name = ?, extra = ?, version = ?, updated_at = ? WHERE id = ?`,
		u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, u.DisplayName, u.GivenName, u.FamilyName,
		extra, u.Version, s.d.time(now), u.ID)
	if err != nil {
		return provision.Result{}, s.mapWriteErr("update user", err)
	}
	for _, n := range p.dropGroups {
		if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_memberships WHERE user_id = ? AND source = ?
			AND group_id = (SELECT id FROM gatehouse_groups WHERE name_norm = ?)`, u.ID, source, n); err != nil {
			return provision.Result{}, fmt.Errorf("sqldir: remove membership: %w", err)
		}
	}
	if err := s.addMemberships(ctx, q, u.ID, source, p.addGroups, now); err != nil {
		return provision.Result{}, err
	}
	if u.Groups, _, err = groupsOf(ctx, q, u.ID, source); err != nil {
		return provision.Result{}, err
	}
	out := provision.Updated
	if linked {
		out = provision.Linked
	}
	return provision.Result{User: u, Outcome: out, Changed: p.changed}, nil
}

func (s *Store) create(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (provision.Result, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: new id: %w", err)
	}
	u := provision.User{ID: id.String(), Active: true, Owner: provision.OwnerJIT, Version: 1, Created: truncStamp(now), Updated: truncStamp(now)}
	changed := u.Apply(l.Claims)
	if u.UserName == "" {
		return provision.Result{}, fmt.Errorf("sqldir: %w: empty user name", provision.ErrInvalid)
	}
	extra, err := encodeExtra(u.Extra)
	if err != nil {
		return provision.Result{}, err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO gatehouse_users (id, user_name, user_name_norm, external_id, email, display_name, given_name, family_name,
		extra, status, owner, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 'jit', 1, ?, ?)`,
		u.ID, u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, u.DisplayName, u.GivenName, u.FamilyName,
		extra, s.d.time(now), s.d.time(now))
	if err != nil {
		return provision.Result{}, s.mapWriteErr("create user", err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO gatehouse_identities (idp, key_kind, subject, user_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, u.ID, s.d.time(now))
	if err != nil {
		return provision.Result{}, s.mapWriteErr("create identity", err)
	}
	if err := s.addMemberships(ctx, q, u.ID, source, l.Claims.Groups, now); err != nil {
		return provision.Result{}, err
	}
	if len(l.Claims.Groups) > 0 {
		changed = append(changed, provision.FieldGroups)
		if u.Groups, _, err = groupsOf(ctx, q, u.ID, source); err != nil {
			return provision.Result{}, err
		}
	}
	return provision.Result{User: u, Outcome: provision.Created, Changed: changed}, nil
}

// addMemberships adds the memberships of one source, creating groups that
// do not exist yet.
func (s *Store) addMemberships(ctx context.Context, q querier, userID, source string, names []string, now time.Time) error {
	for _, name := range names {
		gid, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("sqldir: new id: %w", err)
		}
		norm := provision.NormalizeName(name)
		if _, err := s.insertAbsent(ctx, q, "gatehouse_groups", []string{"id", "name", "name_norm", "created_at", "updated_at"},
			[]any{gid.String(), name, norm, s.d.time(now), s.d.time(now)}, []string{"name_norm"}); err != nil {
			return s.mapWriteErr("create group", err)
		}
		var groupID string
		if err := q.QueryRowContext(ctx, `SELECT id FROM gatehouse_groups WHERE name_norm = ?`, norm).Scan(&groupID); err != nil {
			return fmt.Errorf("sqldir: read group: %w", err)
		}
		if _, err := s.insertAbsent(ctx, q, "gatehouse_memberships", []string{"user_id", "group_id", "source", "created_at"},
			[]any{userID, groupID, source, s.d.time(now)}, []string{"user_id", "group_id", "source"}); err != nil {
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
	res, err := s.conn(s.w).ExecContext(ctx, `UPDATE gatehouse_users SET status = ?, version = version + 1, updated_at = ?
		WHERE id = ? AND status <> ?`, st, s.d.time(s.now()), id, st)
	if err != nil {
		return fmt.Errorf("sqldir: set status: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.User(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// checkTombstone refuses the first login of a key, user name or external
// ID whose user was deleted over SCIM.
func checkTombstone(ctx context.Context, q querier, l provision.Login) error {
	where := "(idp = ? AND key_kind = ? AND subject = ?)"
	args := []any{l.Key.IdP, l.Key.Kind, l.Key.Subject}
	if name := provision.NormalizeName(l.Claims.Fields[provision.FieldUserName]); name != "" {
		where += " OR user_name_norm = ?"
		args = append(args, name)
	}
	if ext := l.Claims.Fields[provision.FieldExternalID]; ext != "" {
		where += " OR external_id = ?"
		args = append(args, ext)
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_tombstones WHERE `+where, args...).Scan(&n); err != nil {
		return fmt.Errorf("sqldir: read tombstones: %w", err)
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("sqldir: user for %s %q was deleted over SCIM: %w", l.Key.Kind, l.Key.Subject, provision.ErrDisabled)
}

// link lets the first login of a key claim a SCIM-owned user that no login
// has claimed, matched by l.LinkBy. The identity row is written in q.
func (s *Store) link(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (record, bool, error) {
	u, ok, err := s.linkCandidate(ctx, q, l, true)
	if err != nil || !ok {
		return record{}, false, err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO gatehouse_identities (idp, key_kind, subject, user_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, u.ID, s.d.time(now)); err != nil {
		return record{}, false, s.mapWriteErr("link identity", err)
	}
	rec := record{user: u}
	rec.user.Groups, rec.srcGroups, err = groupsOf(ctx, q, u.ID, source)
	return rec, err == nil, err
}

// linkCandidate finds the one unclaimed SCIM user a login would link to.
func (s *Store) linkCandidate(ctx context.Context, q querier, l provision.Login, lock bool) (provision.User, bool, error) {
	var where, v string
	switch l.LinkBy {
	case provision.LinkByUserName:
		where, v = "u.user_name_norm = ?", provision.NormalizeName(l.Claims.Fields[provision.FieldUserName])
	case provision.LinkByExternalID:
		where, v = "u.external_id = ?", l.Claims.Fields[provision.FieldExternalID]
	}
	if where == "" || v == "" {
		return provision.User{}, false, nil
	}
	th, qh := "", ""
	if lock {
		th, qh = s.d.lock()
	}
	rows, err := q.QueryContext(ctx, `SELECT `+userColumns+` FROM gatehouse_users u`+th+` WHERE `+where+` AND u.owner = 'scim'
		AND NOT EXISTS (SELECT 1 FROM gatehouse_identities i WHERE i.user_id = u.id)`+qh, v)
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

// Plan says what Provision would do for l, reading only.
func (s *Store) Plan(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	source := provision.GroupSource(l.Key.IdP)
	q := s.reader()
	rec, found, err := s.load(ctx, q, l.Key, source, false)
	if err != nil {
		return provision.Result{}, err
	}
	out := provision.Updated
	if !found {
		if err := checkTombstone(ctx, q, l); err != nil {
			return provision.Result{}, err
		}
		u, ok, err := s.linkCandidate(ctx, q, l, false)
		if err != nil {
			return provision.Result{}, err
		}
		if !ok {
			var n int
			name := provision.NormalizeName(l.Claims.Fields[provision.FieldUserName])
			if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_users WHERE user_name_norm = ?`, name).Scan(&n); err != nil {
				return provision.Result{}, fmt.Errorf("sqldir: read user: %w", err)
			}
			if n > 0 && !l.NoCreate {
				return provision.Result{}, fmt.Errorf("sqldir: user name %q is taken: %w", l.Claims.Fields[provision.FieldUserName], provision.ErrConflict)
			}
			return planCreate(l)
		}
		rec.user, out = u, provision.Linked
		if rec.user.Groups, rec.srcGroups, err = groupsOf(ctx, q, u.ID, source); err != nil {
			return provision.Result{}, err
		}
	}
	return planUpdate(rec, l, out)
}

// planCreate is the plan of a login that creates its user.
func planCreate(l provision.Login) (provision.Result, error) {
	if l.NoCreate {
		return provision.Result{}, fmt.Errorf("sqldir: user for %s %q: %w", l.Key.Kind, l.Key.Subject, provision.ErrNotFound)
	}
	u := provision.User{Active: true, Owner: provision.OwnerJIT, Version: 1, Groups: l.Claims.Groups}
	changed := u.Apply(l.Claims)
	if u.UserName == "" {
		return provision.Result{}, fmt.Errorf("sqldir: %w: empty user name", provision.ErrInvalid)
	}
	if len(l.Claims.Groups) > 0 {
		changed = append(changed, provision.FieldGroups)
	}
	return provision.Result{User: u, Outcome: provision.Created, Changed: changed}, nil
}

// planUpdate is the plan of a login of a stored (or linked) user.
func planUpdate(rec record, l provision.Login, out provision.Outcome) (provision.Result, error) {
	if !rec.user.Active {
		return provision.Result{User: rec.user}, fmt.Errorf("sqldir: user %s: %w", rec.user.ID, provision.ErrDisabled)
	}
	p := diff(rec, l)
	if len(p.changed) == 0 && out != provision.Linked {
		out = provision.Unchanged
	}
	u := p.user
	if len(p.addGroups)+len(p.dropGroups) > 0 {
		drop := map[string]bool{}
		for _, n := range p.dropGroups {
			drop[n] = true
		}
		var groups []string
		for _, g := range rec.user.Groups {
			if !drop[provision.NormalizeName(g)] {
				groups = append(groups, g)
			}
		}
		u.Groups = provision.SortedUnique(append(groups, p.addGroups...))
	}
	return provision.Result{User: u, Outcome: out, Changed: p.changed}, nil
}
