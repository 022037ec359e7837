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

// Provision performs the JIT upsert into the application's table: it
// reads what the login needs, asks provision.Decide, and carries out the
// plan. A repeat login with nothing new reads and writes nothing else.
func (m *Mapped) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	l.Claims = m.restrict(l.Claims)
	source := provision.GroupSource(l.Key.IdP)
	var rec mrecord // the row the write transaction acts on
	return m.upsert(ctx, l,
		func() (*provision.Found, error) {
			key, found, err := m.identity(ctx, m.reader(), l.Key, false)
			if err != nil || !found {
				return nil, err
			}
			rec, ok, err := m.read(ctx, m.reader(), key, source, false)
			if err != nil || !ok {
				return nil, err
			}
			return &provision.Found{User: &rec.user, Groups: rec.srcGroups}, nil
		},
		func(q querier) (f provision.Found, err error) {
			f, rec, err = m.find(ctx, q, l, source, true)
			return f, err
		},
		func(q querier, p provision.Plan, now time.Time) (provision.Result, error) {
			return m.apply(ctx, q, l, p, rec, source, now)
		})
}

// Plan says what Provision would do for l, reading only.
func (m *Mapped) Plan(ctx context.Context, l provision.Login) (provision.Result, error) {
	if err := l.Claims.Check(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: %w", err)
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	l.Claims = m.restrict(l.Claims)
	f, _, err := m.find(ctx, m.reader(), l, provision.GroupSource(l.Key.IdP), false)
	return preview(l, f, err)
}

// find reads what a login needs (provision.Found), and the row it acts on
// (the user its key names, or the row it would link to). Inside a write
// (lock), a key whose row the application deleted is forgotten; a read
// only skips it.
func (m *Mapped) find(ctx context.Context, q querier, l provision.Login, source string, lock bool) (provision.Found, mrecord, error) {
	var f provision.Found
	key, found, err := m.identity(ctx, q, l.Key, lock)
	if err != nil {
		return f, mrecord{}, err
	}
	if found {
		rec, ok, err := m.read(ctx, q, key, source, lock)
		if err != nil {
			return f, mrecord{}, err
		}
		if ok {
			f.User, f.Groups = &rec.user, rec.srcGroups
			return f, rec, nil
		}
		if lock {
			// The application deleted the row: forget it and start over.
			if _, err := q.ExecContext(ctx, `DELETE FROM gatehouse_mapped_users WHERE user_key = ?`, key); err != nil {
				return f, mrecord{}, fmt.Errorf("sqldir: forget deleted row: %w", err)
			}
		}
	}
	if key, ok, err := m.linkCandidate(ctx, q, l); err != nil {
		return f, mrecord{}, err
	} else if ok {
		rec, ok, err := m.read(ctx, q, key, source, lock)
		if err != nil || ok {
			f.Link, f.LinkGroups = &rec.user, rec.srcGroups
			return f, rec, err
		}
	}
	// The application's table has no unique index gatehouse can rely on:
	// a name held by any row is taken.
	if name := l.Claims.Fields[provision.FieldUserName]; name != "" {
		taken, err := m.findByName(ctx, q, name)
		if err != nil {
			return f, mrecord{}, err
		}
		f.NameTaken = len(taken) > 0
	}
	return f, mrecord{}, nil
}

// apply carries out a plan in the write transaction q; rec is the row it
// acts on, as find read it.
func (m *Mapped) apply(ctx context.Context, q querier, l provision.Login, p provision.Plan, rec mrecord, source string, now time.Time) (provision.Result, error) {
	u := p.After
	switch p.Action {
	case provision.ActNothing:
		return p.Result(), nil
	case provision.ActCreate:
		return m.create(ctx, q, l, p, source, now)
	case provision.ActLink:
		if !rec.tracked {
			// A row the application had before gatehouse: gatehouse starts
			// keeping its books on it.
			rec.user.Owner, rec.user.Version, rec.user.Created, rec.user.Updated = provision.OwnerJIT, 1, truncStamp(now), truncStamp(now)
			if err := m.track(ctx, q, rec.user, now); err != nil {
				return provision.Result{}, err
			}
			u.Owner, u.Version, u.Created, u.Updated = rec.user.Owner, rec.user.Version, rec.user.Created, rec.user.Updated
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO gatehouse_mapped_identities (idp, key_kind, subject, user_key, created_at) VALUES (?, ?, ?, ?, ?)`,
			l.Key.IdP, l.Key.Kind, l.Key.Subject, rec.user.ID, m.d.time(now)); err != nil {
			return provision.Result{}, m.mapWriteErr("link identity", err)
		}
		if len(p.Changed) == 0 {
			res := p.Result()
			res.User = rec.user
			return res, nil
		}
	}
	if err := m.updateRow(ctx, q, rec.user, u); err != nil {
		return provision.Result{}, err
	}
	u.Version++
	u.Updated = truncStamp(now)
	if _, err := q.ExecContext(ctx, `UPDATE gatehouse_mapped_users SET user_name_norm = ?, version = ?, updated_at = ? WHERE user_key = ?`,
		provision.NormalizeName(u.UserName), u.Version, m.d.time(now), u.ID); err != nil {
		return provision.Result{}, m.mapWriteErr("update user state", err)
	}
	if err := m.syncGroups(ctx, q, &rec, source, p.AddGroups, p.DropGroups, now); err != nil {
		return provision.Result{}, err
	}
	if m.groups != nil {
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return provision.Result{}, err
		}
		u.Groups = rec.user.Groups
	}
	res := p.Result()
	res.User = u
	return res, nil
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

// create writes the row a plan creates, gatehouse's books on it, its
// identity and its groups.
func (m *Mapped) create(ctx context.Context, q querier, l provision.Login, p provision.Plan, source string, now time.Time) (provision.Result, error) {
	u := p.After
	u.Created, u.Updated = truncStamp(now), truncStamp(now)
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
	if len(p.AddGroups) > 0 && m.groups != nil {
		rec := mrecord{user: u}
		if err := m.syncGroups(ctx, q, &rec, source, p.AddGroups, nil, now); err != nil {
			return provision.Result{}, err
		}
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return provision.Result{}, err
		}
		u.Groups = rec.user.Groups
	}
	res := p.Result()
	res.User = u
	return res, nil
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
