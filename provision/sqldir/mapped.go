package sqldir

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/provision"
)

// colInfo is what the database says about one column.
type colInfo struct {
	typ       string
	nullable  bool
	maxLen    int // characters (UTF-16 units on SQL Server); 0: no limit
	generated bool
}

// mcol is one mapped user field.
type mcol struct {
	field string
	name  string // quoted
	raw   string // as configured
	info  colInfo
}

// Mapped is a provision.Store over an application's own tables.
type Mapped struct {
	*db
	cfg      MappedConfig
	users    string // quoted table
	key      string // quoted key column
	keyGen   string
	keyField string // the field whose column is the key, when keyGen is keyFromField
	cols     []mcol // sorted by field
	disabled *DisabledColumn
	disCol   mcol
	groups   *mappedGroups
	proc     *Procedure
}

type mappedGroups struct {
	table, key, name, keyGen string
	mtable, muser, mgroup    string
}

var _ provision.Store = (*Mapped)(nil)

// OpenMapped opens the database, checks the declared tables and columns,
// and creates or migrates gatehouse's own bookkeeping tables beside them.
func OpenMapped(ctx context.Context, cfg Config, opts ...Option) (*Mapped, error) {
	if cfg.Mapped == nil {
		return nil, errors.New("sqldir: no mapped tables are configured: use Open")
	}
	d, err := connect(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	m, problems, err := resolveMapped(ctx, d, *cfg.Mapped)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("sqldir: the mapped tables do not match the configuration:\n%w", errors.Join(problems...))
	}
	if err == nil {
		err = d.migrate(ctx, "mapped", d.d.expand(mappedMigrations))
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return m, nil
}

// Provision performs the JIT upsert into the application's table. A
// repeat login with nothing new reads and writes nothing else.
func (m *Mapped) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	l.Claims = m.restrict(l.Claims)
	source := provision.GroupSource(l.Key.IdP)
	if key, found, err := m.identity(ctx, m.reader(), l.Key, false); err != nil {
		return provision.Result{}, err
	} else if found {
		rec, ok, err := m.read(ctx, m.reader(), key, source, false)
		if err != nil {
			return provision.Result{}, err
		}
		if ok && !rec.user.Active {
			return provision.Result{User: rec.user}, fmt.Errorf("sqldir: user %s: %w", key, provision.ErrDisabled)
		}
		if ok && len(diff(record{user: rec.user, srcGroups: rec.srcGroups}, l).changed) == 0 {
			return provision.Result{User: rec.user, Outcome: provision.Unchanged}, nil
		}
	}
	var res provision.Result
	err := m.write(ctx, func(q querier, now time.Time) error {
		var err error
		res, err = m.provisionTx(ctx, q, l, source, now)
		return err
	})
	return res, err
}

func (m *Mapped) provisionTx(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (provision.Result, error) {
	key, found, err := m.identity(ctx, q, l.Key, true)
	if err != nil {
		return provision.Result{}, err
	}
	var rec mrecord
	if found {
		var ok bool
		if rec, ok, err = m.read(ctx, q, key, source, true); err != nil {
			return provision.Result{}, err
		}
		if !ok {
			// The application deleted the row: forget it and start over.
			if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_mapped_users WHERE user_key = ?`, key); err != nil {
				return provision.Result{}, fmt.Errorf("sqldir: forget deleted row: %w", err)
			}
			found = false
		}
	}
	linked := false
	if !found {
		if rec, linked, err = m.link(ctx, q, l, source, now); err != nil {
			return provision.Result{}, err
		}
		found = linked
	}
	if !found {
		if l.NoCreate {
			return provision.Result{}, fmt.Errorf("sqldir: user for %s %q: %w", l.Key.Kind, l.Key.Subject, provision.ErrNotFound)
		}
		return m.create(ctx, q, l, source, now)
	}
	if !rec.user.Active {
		return provision.Result{User: rec.user}, fmt.Errorf("sqldir: user %s: %w", rec.user.ID, provision.ErrDisabled)
	}
	p := diff(record{user: rec.user, srcGroups: rec.srcGroups}, l)
	if len(p.changed) == 0 {
		out := provision.Unchanged
		if linked {
			out = provision.Linked
		}
		return provision.Result{User: rec.user, Outcome: out}, nil
	}
	u := p.user
	if err := m.updateRow(ctx, q, rec.user, u); err != nil {
		return provision.Result{}, err
	}
	u.Version++
	u.Updated = truncStamp(now)
	if _, err := q.ExecContext(ctx, `UPDATE gatehouse_mapped_users SET user_name_norm = ?, version = ?, updated_at = ? WHERE user_key = ?`,
		provision.NormalizeName(u.UserName), u.Version, m.d.time(now), u.ID); err != nil {
		return provision.Result{}, m.mapWriteErr("update user state", err)
	}
	if err := m.syncGroups(ctx, q, &rec, source, p.addGroups, p.dropGroups, now); err != nil {
		return provision.Result{}, err
	}
	if m.groups != nil {
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return provision.Result{}, err
		}
		u.Groups = rec.user.Groups
	}
	out := provision.Updated
	if linked {
		out = provision.Linked
	}
	return provision.Result{User: u, Outcome: out, Changed: p.changed}, nil
}

// link lets the first login of a key claim a row no login has claimed:
// one the application had before gatehouse, or one SCIM created, matched
// by l.LinkBy.
func (m *Mapped) link(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (mrecord, bool, error) {
	key, ok, err := m.linkCandidate(ctx, q, l)
	if err != nil || !ok {
		return mrecord{}, false, err
	}
	rec, ok, err := m.read(ctx, q, key, source, true)
	if err != nil || !ok {
		return mrecord{}, false, err
	}
	if !rec.tracked {
		rec.user.Owner, rec.user.Version, rec.user.Created, rec.user.Updated = provision.OwnerJIT, 1, truncStamp(now), truncStamp(now)
		if err := m.track(ctx, q, rec.user, now); err != nil {
			return mrecord{}, false, err
		}
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO gatehouse_mapped_identities (idp, key_kind, subject, user_key, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, rec.user.ID, m.d.time(now)); err != nil {
		return mrecord{}, false, m.mapWriteErr("link identity", err)
	}
	return rec, true, nil
}

// linkCandidate finds the key of the one unclaimed row a login would
// link to.
func (m *Mapped) linkCandidate(ctx context.Context, q querier, l provision.Login) (string, bool, error) {
	var keys []string
	var err error
	v := l.Claims.Fields[l.LinkBy]
	switch {
	case v == "":
		return "", false, nil
	case l.LinkBy == provision.LinkByUserName:
		keys, err = m.findByName(ctx, q, v)
	case l.LinkBy == provision.LinkByExternalID && m.colOf(provision.FieldExternalID).name != "":
		keys, err = m.keysWhere(ctx, q, m.d.exact("a."+m.colOf(provision.FieldExternalID).name)+" = ?", v)
	}
	if err != nil || len(keys) == 0 {
		return "", false, err
	}
	if len(keys) > 1 {
		return "", false, fmt.Errorf("sqldir: several rows of %s have %s %q: %w", m.cfg.Users.Table, l.LinkBy, v, provision.ErrConflict)
	}
	var claimed int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM gatehouse_mapped_identities WHERE user_key = ?`, keys[0]).Scan(&claimed); err != nil {
		return "", false, fmt.Errorf("sqldir: read identities: %w", err)
	}
	if claimed > 0 {
		return "", false, nil // another login's user: create reports the clash
	}
	return keys[0], true, nil
}

// Plan says what Provision would do for l, reading only.
func (m *Mapped) Plan(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	l.Claims = m.restrict(l.Claims)
	source := provision.GroupSource(l.Key.IdP)
	q := m.reader()
	key, found, err := m.identity(ctx, q, l.Key, false)
	if err != nil {
		return provision.Result{}, err
	}
	out := provision.Updated
	if !found {
		if key, found, err = m.linkCandidate(ctx, q, l); err != nil {
			return provision.Result{}, err
		}
		out = provision.Linked
	}
	if found {
		rec, ok, err := m.read(ctx, q, key, source, false)
		if err != nil {
			return provision.Result{}, err
		}
		if ok {
			return planUpdate(record{user: rec.user, srcGroups: rec.srcGroups}, l, out)
		}
	}
	if taken, err := m.findByName(ctx, q, l.Claims.Fields[provision.FieldUserName]); err != nil {
		return provision.Result{}, err
	} else if len(taken) > 0 && !l.NoCreate {
		return provision.Result{}, fmt.Errorf("sqldir: user name %q is taken in %s: %w", l.Claims.Fields[provision.FieldUserName], m.cfg.Users.Table, provision.ErrConflict)
	}
	return planCreate(l)
}

// track records a row in gatehouse's bookkeeping. The unique folded user
// name is what keeps two concurrent first logins, or two spellings of one
// name, from making two rows.
func (m *Mapped) track(ctx context.Context, q querier, u provision.User, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO gatehouse_mapped_users (user_key, user_name_norm, owner, status, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, u.ID, provision.NormalizeName(u.UserName), u.Owner, status(u.Active), u.Version, m.d.time(now), m.d.time(now))
	if err != nil {
		return m.mapWriteErr("record user", err)
	}
	return nil
}

func (m *Mapped) create(ctx context.Context, q querier, l provision.Login, source string, now time.Time) (provision.Result, error) {
	u := provision.User{Active: true, Owner: provision.OwnerJIT, Version: 1, Created: truncStamp(now), Updated: truncStamp(now)}
	changed := u.Apply(l.Claims)
	if u.UserName == "" {
		return provision.Result{}, fmt.Errorf("sqldir: %w: empty user name", provision.ErrInvalid)
	}
	if taken, err := m.findByName(ctx, q, u.UserName); err != nil {
		return provision.Result{}, err
	} else if len(taken) > 0 {
		return provision.Result{}, fmt.Errorf("sqldir: user name %q is taken in %s: %w", u.UserName, m.cfg.Users.Table, provision.ErrConflict)
	}
	key, err := m.insertRow(ctx, q, u)
	if err != nil {
		return provision.Result{}, err
	}
	u.ID = key
	if err := m.track(ctx, q, u, now); err != nil {
		return provision.Result{}, err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO gatehouse_mapped_identities (idp, key_kind, subject, user_key, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, key, m.d.time(now)); err != nil {
		return provision.Result{}, m.mapWriteErr("create identity", err)
	}
	if len(l.Claims.Groups) > 0 && m.groups != nil {
		rec := mrecord{user: u}
		if err := m.syncGroups(ctx, q, &rec, source, l.Claims.Groups, nil, now); err != nil {
			return provision.Result{}, err
		}
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return provision.Result{}, err
		}
		u.Groups = rec.user.Groups
		changed = append(changed, provision.FieldGroups)
	}
	return provision.Result{User: u, Outcome: provision.Created, Changed: changed}, nil
}

// User returns the user whose row has the given key.
func (m *Mapped) User(ctx context.Context, id string) (provision.User, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	rec, ok, err := m.read(ctx, m.reader(), id, "", false)
	if err != nil {
		return provision.User{}, err
	}
	if !ok {
		return provision.User{}, fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
	}
	return rec.user, nil
}

// SetActive sets the application's disabled column (or, without one,
// gatehouse's own status); setting the state a user has writes nothing.
func (m *Mapped) SetActive(ctx context.Context, id string, active bool) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.write(ctx, func(q querier, now time.Time) error {
		rec, ok, err := m.read(ctx, q, id, "", true)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
		}
		if rec.user.Active == active {
			return nil
		}
		if m.disabled != nil {
			var v any = m.disabled.Value
			if active {
				v = nil
				if m.disabled.EnabledValue != "" {
					v = m.disabled.EnabledValue
				}
			}
			if _, err := q.ExecContext(ctx, `UPDATE `+m.users+` SET `+m.disCol.name+` = ? WHERE `+m.key+` = ?`, v, id); err != nil {
				return m.mapWriteErr("set disabled in "+m.cfg.Users.Table, err)
			}
		}
		if !rec.tracked {
			rec.user.Owner, rec.user.Version, rec.user.Active = provision.OwnerJIT, 1, active
			return m.track(ctx, q, rec.user, now)
		}
		_, err = q.ExecContext(ctx, `UPDATE gatehouse_mapped_users SET status = ?, version = version + 1, updated_at = ? WHERE user_key = ?`,
			status(active), m.d.time(now), id)
		if err != nil {
			return fmt.Errorf("sqldir: set status: %w", err)
		}
		return nil
	})
}
