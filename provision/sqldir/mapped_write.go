package sqldir

import (
	"context"
	"database/sql"
	"fmt"
	"gatehouse/provision"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/google/uuid"
)

// value is what a field's value is written as: NULL for an empty value
// in a nullable column. A value longer than the column allows is refused
// before the database truncates or rejects it.
func (m *Mapped) value(c mcol, v string) (any, error) {
	if c.info.maxLen > 0 {
		n := len([]rune(v))
		if m.d.name == SQLServer {
			n = len(utf16.Encode([]rune(v)))
		}
		if n > c.info.maxLen {
			return nil, fmt.Errorf("sqldir: %w: %s has %d characters; column %s holds %d", provision.ErrInvalid, c.field, n, c.raw, c.info.maxLen)
		}
	}
	if v == "" && c.info.nullable {
		return nil, nil
	}
	return v, nil
}

// insertRow writes a new row (or calls the procedure) and returns its key.
func (m *Mapped) insertRow(ctx context.Context, q querier, u provision.User) (string, error) {
	if m.proc != nil {
		return m.call(ctx, q, "", u)
	}
	var cols []string
	var args []any
	for _, c := range m.cols {
		v := u.Field(c.field)
		if v == "" && c.info.nullable {
			continue // leave it to the column's default
		}
		a, err := m.value(c, v)
		if err != nil {
			return "", err
		}
		cols, args = append(cols, c.name), append(args, a)
	}
	if m.keyGen == keyFromUUID {
		id, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("sqldir: new key: %w", err)
		}
		cols, args = append(cols, m.key), append(args, id.String())
	}
	if m.disabled != nil && m.disabled.EnabledValue != "" {
		cols, args = append(cols, m.disCol.name), append(args, m.disabled.EnabledValue)
	}
	return m.insertReturningKey(ctx, q, m.users, m.key, cols, args, "create user in "+m.cfg.Users.Table)
}

// insertReturningKey inserts one row and reads back its key as text. On
// SQL Server the key comes through OUTPUT ... INTO a table variable: a
// bare OUTPUT clause fails on tables with triggers, which legacy tables
// often have.
func (m *Mapped) insertReturningKey(ctx context.Context, q querier, table, key string, cols []string, args []any, what string) (string, error) {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	stmt := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + ph + `) RETURNING ` + m.d.text(key)
	if m.d.name == SQLServer {
		stmt = `DECLARE @k TABLE (k nvarchar(4000)); INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) OUTPUT ` +
			`CAST(INSERTED.` + key + ` AS nvarchar(4000)) INTO @k VALUES (` + ph + `); SELECT k FROM @k;`
	}
	var k string
	if err := q.QueryRowContext(ctx, stmt, args...).Scan(&k); err != nil {
		return "", m.mapWriteErr(what, err)
	}
	return k, nil
}

// updateRow writes the changed fields (or calls the procedure).
func (m *Mapped) updateRow(ctx context.Context, q querier, old, u provision.User) error {
	var sets []string
	var args []any
	for _, c := range m.cols {
		if old.Field(c.field) == u.Field(c.field) {
			continue
		}
		if c.field == m.keyField && m.keyGen == keyFromField {
			return fmt.Errorf("sqldir: %w: %s is the key of %s, which gatehouse does not change", provision.ErrInvalid, c.field, m.cfg.Users.Table)
		}
		a, err := m.value(c, u.Field(c.field))
		if err != nil {
			return err
		}
		sets, args = append(sets, c.name+" = ?"), append(args, a)
	}
	if len(sets) == 0 {
		return nil // only memberships changed
	}
	if provision.NormalizeName(old.UserName) != provision.NormalizeName(u.UserName) {
		// gatehouse's unique index covers only the rows it tracks.
		keys, err := m.findByName(ctx, q, u.UserName)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(keys, func(k string) bool { return k != u.ID }) {
			return fmt.Errorf("sqldir: user name %q is taken in %s: %w", u.UserName, m.cfg.Users.Table, provision.ErrConflict)
		}
	}
	if m.proc != nil {
		_, err := m.call(ctx, q, u.ID, u)
		return err
	}
	args = append(args, u.ID)
	if _, err := q.ExecContext(ctx, `UPDATE `+m.users+` SET `+strings.Join(sets, ", ")+` WHERE `+m.key+` = ?`, args...); err != nil {
		return m.mapWriteErr("update user in "+m.cfg.Users.Table, err)
	}
	return nil
}

// call runs the stored procedure for one user: key is "" for a new one.
// It returns the first column of the first row the procedure returns.
func (m *Mapped) call(ctx context.Context, q querier, key string, u provision.User) (string, error) {
	stmt, args := m.d.callProcedure(m.proc, key, func(f string) (any, error) { return m.value(m.colOf(f), u.Field(f)) })
	if stmt == "" {
		return "", fmt.Errorf("sqldir: %w: stored procedures on %s", provision.ErrUnsupported, m.d.name)
	}
	vals, err := args()
	if err != nil {
		return "", err
	}
	rows, err := q.QueryContext(ctx, stmt, vals...)
	if err != nil {
		return "", m.mapWriteErr("call "+m.proc.Name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", m.mapWriteErr("call "+m.proc.Name, err)
		}
		return "", fmt.Errorf("sqldir: %s returned no row: it must return the user's key", m.proc.Name)
	}
	cols, _ := rows.Columns()
	dest := make([]any, len(cols))
	var got sql.NullString
	dest[0] = &got
	for i := 1; i < len(dest); i++ {
		dest[i] = new(any)
	}
	if err := rows.Scan(dest...); err != nil {
		return "", fmt.Errorf("sqldir: read the result of %s: %w", m.proc.Name, err)
	}
	if !got.Valid || got.String == "" {
		return "", fmt.Errorf("sqldir: %s returned an empty key", m.proc.Name)
	}
	return got.String, nil
}
