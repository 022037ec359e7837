package sqldir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"gatehouse/provision"
	"slices"
	"strings"
)

// sourceApp marks a membership the application had before gatehouse
// added the same one: no gatehouse source may remove it.
const sourceApp = "app"

// mrecord is a mapped user as read: the application's row and
// gatehouse's bookkeeping of it.
type mrecord struct {
	user      provision.User
	tracked   bool              // gatehouse_mapped_users has the row
	srcGroups map[string]string // normalised name -> name, for one source
	groupKeys map[string]string // normalised name -> the application's group key
}

// appColumns is the SELECT list reading one user row: the key, each
// mapped column and the disabled flag, all as text.
func (m *Mapped) appColumns() string {
	parts := []string{m.d.text("a." + m.key)}
	for _, c := range m.cols {
		parts = append(parts, m.d.text("a."+c.name))
	}
	if m.disabled != nil {
		parts = append(parts, m.d.text("a."+m.disCol.name))
	}
	return strings.Join(parts, ", ")
}

// readRow reads the application's row with the given key.
func (m *Mapped) readRow(ctx context.Context, q querier, key string, lock bool) (provision.User, bool, error) {
	th, qh := "", ""
	if lock {
		th, qh = m.d.lock()
	}
	vals := make([]sql.NullString, len(m.cols)+2)
	ptrs := make([]any, 0, len(vals))
	for i := range vals {
		if i < len(m.cols)+1 || m.disabled != nil {
			ptrs = append(ptrs, &vals[i])
		}
	}
	err := q.QueryRowContext(ctx, `SELECT `+m.appColumns()+` FROM `+m.users+` a`+th+` WHERE a.`+m.key+` = ?`+qh, key).Scan(ptrs...)
	// An ID that cannot be a value of the key's type names no row.
	if errors.Is(err, sql.ErrNoRows) || err != nil && m.d.classify(err) == errBadText {
		return provision.User{}, false, nil
	}
	if err != nil {
		return provision.User{}, false, fmt.Errorf("sqldir: read %s: %w", m.cfg.Users.Table, err)
	}
	u := provision.User{ID: vals[0].String, Active: true}
	for i, c := range m.cols {
		u.SetField(c.field, vals[i+1].String)
	}
	if m.disabled != nil {
		d := vals[len(m.cols)+1]
		u.Active = !(d.Valid && d.String == m.disabled.Value)
	}
	return u, true, nil
}

// read loads a user by key: the row, gatehouse's bookkeeping, and the
// groups (all of them, and those of source).
func (m *Mapped) read(ctx context.Context, q querier, key, source string, lock bool) (mrecord, bool, error) {
	var rec mrecord
	u, ok, err := m.readRow(ctx, q, key, lock)
	if err != nil || !ok {
		return rec, false, err
	}
	rec.user = u
	var status string
	err = q.QueryRowContext(ctx, `SELECT owner, status, version, created_at, updated_at FROM gatehouse_mapped_users WHERE user_key = ?`, key).
		Scan(&rec.user.Owner, &status, &rec.user.Version, timeScan{&rec.user.Created}, timeScan{&rec.user.Updated})
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return rec, false, fmt.Errorf("sqldir: read user state: %w", err)
	default:
		rec.tracked = true
		if m.disabled == nil {
			rec.user.Active = status == "active"
		}
	}
	if m.groups != nil {
		if err := m.readGroups(ctx, q, &rec, source); err != nil {
			return rec, false, err
		}
	}
	return rec, true, nil
}

// identity finds the key of the row a login key is linked to.
func (m *Mapped) identity(ctx context.Context, q querier, k provision.Key, lock bool) (string, bool, error) {
	th, qh := "", ""
	if lock {
		th, qh = m.d.lock()
	}
	var key string
	err := q.QueryRowContext(ctx, `SELECT user_key FROM gatehouse_mapped_identities`+th+` WHERE idp = ? AND key_kind = ? AND subject = ?`+qh,
		k.IdP, k.Kind, k.Subject).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sqldir: read identity: %w", err)
	}
	return key, true, nil
}

// restrict drops the claims the mapping has no column for, so that they
// never count as changes.
func (m *Mapped) restrict(c provision.Claims) provision.Claims {
	var drop []string
	for f := range c.Fields {
		if !slices.ContainsFunc(m.cols, func(mc mcol) bool { return mc.field == f }) {
			drop = append(drop, f)
		}
	}
	for f := range c.Extra {
		if !slices.ContainsFunc(m.cols, func(mc mcol) bool { return mc.field == f }) {
			drop = append(drop, f)
		}
	}
	if len(drop) > 0 {
		c = c.Without(drop)
	}
	if m.groups == nil {
		c.Groups, c.HasGroups = nil, false
	}
	return c
}

// findByName finds the keys of rows whose user name is name: exactly
// (which an index on the column serves); else among the rows gatehouse
// tracks, by the Go fold of provision (NFKC and case); else folded by the
// database (on SQLite the same Go fold, on the servers lower case).
func (m *Mapped) findByName(ctx context.Context, q querier, name string) ([]string, error) {
	col := m.colOf(provision.FieldUserName)
	keys, err := m.keysWhere(ctx, q, "a."+col.name+" = ?", name)
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	if keys, err = m.trackedByName(ctx, q, name); err != nil || len(keys) > 0 {
		return keys, err
	}
	return m.keysWhere(ctx, q, m.d.fold(m.d.text("a."+col.name))+" = ?", m.dbFold(name))
}

// dbFold folds a value the way the database's fold expression (d.fold)
// folds a column.
func (m *Mapped) dbFold(s string) string {
	if m.d.name == SQLite {
		return provision.NormalizeName(s)
	}
	return lowerFold(s)
}

// trackedByName finds the rows gatehouse tracks whose folded user name
// equals name's, and which the application still has.
func (m *Mapped) trackedByName(ctx context.Context, q querier, name string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_key FROM gatehouse_mapped_users WHERE user_name_norm = ?`, provision.NormalizeName(name))
	if err != nil {
		return nil, fmt.Errorf("sqldir: find user: %w", err)
	}
	var tracked []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqldir: find user: %w", err)
		}
		tracked = append(tracked, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqldir: find user: %w", err)
	}
	var keys []string
	for _, k := range tracked {
		found, err := m.keysWhere(ctx, q, "a."+m.key+" = ?", k)
		if err != nil && m.d.classify(err) != errBadText {
			return nil, err
		}
		keys = append(keys, found...)
	}
	return keys, nil
}

func (m *Mapped) keysWhere(ctx context.Context, q querier, where string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+m.d.text("a."+m.key)+` FROM `+m.users+` a WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqldir: find user: %w", err)
	}
	defer rows.Close()
	var keys []string
	for len(keys) < 2 && rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("sqldir: find user: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func (m *Mapped) colOf(field string) mcol {
	i := slices.IndexFunc(m.cols, func(c mcol) bool { return c.field == field })
	if i < 0 {
		return mcol{}
	}
	return m.cols[i]
}
