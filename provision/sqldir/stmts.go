package sqldir

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The statements of a login (and of the reads of one user) are prepared
// once, when the store opens, on each pool that runs them: parsing one on
// SQLite costs about as much as running it, and a first login runs a
// dozen. A query whose text is one of them runs the prepared statement
// (rebound); any other query, a SCIM filter say, is parsed as it comes.
// The set is fixed, so what the statements hold is bounded: on SQLite a
// few kilobytes each, on each connection that has run it.

// Statement texts of the login path, written once with ? placeholders.
const (
	groupsSQL = `SELECT g.name, g.name_norm, m.source FROM gatehouse_memberships m JOIN gatehouse_groups g ON g.id = m.group_id
		WHERE m.user_id = ? ORDER BY g.name`
	insertUserSQL = `INSERT INTO gatehouse_users (id, user_name, user_name_norm, external_id, email, email_norm, display_name,
		display_name_norm, given_name, family_name, extra, status, owner, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 'jit', 1, ?, ?)`
	updateUserSQL = `UPDATE gatehouse_users SET user_name = ?, user_name_norm = ?, external_id = ?, email = ?, email_norm = ?,
		display_name = ?, display_name_norm = ?, given_name = ?, family_name = ?, extra = ?, version = ?, updated_at = ? WHERE id = ?`
	insertIdentitySQL = `INSERT INTO gatehouse_identities (idp, key_kind, subject, user_id, created_at) VALUES (?, ?, ?, ?, ?)`
	dropMembershipSQL = `DELETE FROM gatehouse_memberships WHERE user_id = ? AND source = ?
			AND group_id = (SELECT id FROM gatehouse_groups WHERE name_norm = ?)`
	groupIDSQL     = `SELECT id FROM gatehouse_groups WHERE name_norm = ?`
	insertValueSQL = `INSERT INTO gatehouse_user_values (user_id, field, value_norm) VALUES (?, ?, ?)`
	deleteValueSQL = `DELETE FROM gatehouse_user_values WHERE user_id = ? AND field = ?`
)

// The key columns of the rows a login adds when absent (insertAbsent).
var (
	groupCols      = []string{"id", "name", "name_norm", "created_at", "updated_at"}
	groupKey       = []string{"name_norm"}
	membershipCols = []string{"user_id", "group_id", "source", "created_at"}
	membershipKey  = []string{"user_id", "group_id", "source"}
)

// loadSQL reads the user a login key names; lock takes the dialect's
// update locks.
func (d *dialect) loadSQL(lock bool) string {
	th, qh := d.lockIf(lock)
	return `SELECT ` + userColumns + ` FROM gatehouse_identities i` + th + ` JOIN gatehouse_users u` + th + ` ON u.id = i.user_id
		WHERE i.idp = ? AND i.key_kind = ? AND i.subject = ?` + qh
}

// userSQL reads one user by ID.
func (d *dialect) userSQL(lock bool) string {
	th, qh := d.lockIf(lock)
	return `SELECT ` + userColumns + ` FROM gatehouse_users u` + th + ` WHERE u.id = ?` + qh
}

// linkSQL finds the unclaimed SCIM users whose column col (u.user_name_norm
// or u.external_id) has a value.
func (d *dialect) linkSQL(col string, lock bool) string {
	th, qh := d.lockIf(lock)
	return `SELECT ` + userColumns + ` FROM gatehouse_users u` + th + ` WHERE ` + col + ` = ? AND u.owner = 'scim'
		AND NOT EXISTS (SELECT 1 FROM gatehouse_identities i WHERE i.user_id = u.id)` + qh
}

// tombstoneSQL counts the tombstones of a login key, and of a user name
// and an external ID when the login has them.
func tombstoneSQL(name, ext bool) string {
	q := "SELECT count(*) FROM gatehouse_tombstones WHERE (idp = ? AND key_kind = ? AND subject = ?)"
	if name {
		q += " OR user_name_norm = ?"
	}
	if ext {
		q += " OR external_id = ?"
	}
	return q
}

// absentSQL inserts one row unless a row with the same key columns exists
// (insertAbsent). table and the columns are constants of this package.
func (d *dialect) absentSQL(table string, cols, key []string) string {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	if d.name == SQLServer {
		cond := make([]string, len(key))
		for i, k := range key {
			cond[i] = k + " = ?"
		}
		return `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) SELECT ` + ph + ` WHERE NOT EXISTS (SELECT 1 FROM ` +
			table + ` WITH (UPDLOCK, SERIALIZABLE) WHERE ` + strings.Join(cond, " AND ") + `)`
	}
	return `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + ph + `) ON CONFLICT (` + strings.Join(key, ", ") + `) DO NOTHING`
}

func (d *dialect) lockIf(lock bool) (table, query string) {
	if !lock {
		return "", ""
	}
	return d.lock()
}

// readSQL are the statements a login and a read of one user run outside
// a transaction; writeSQL those a login runs in its write transaction.
func (d *dialect) readSQL() []string {
	return []string{d.loadSQL(false), groupsSQL, d.userSQL(false)}
}

func (d *dialect) writeSQL() []string {
	return []string{d.loadSQL(true), groupsSQL, tombstoneSQL(false, false), tombstoneSQL(true, false), tombstoneSQL(false, true),
		tombstoneSQL(true, true), d.linkSQL("u.user_name_norm", true), d.linkSQL("u.external_id", true),
		d.userSQL(true), insertUserSQL, updateUserSQL, insertIdentitySQL, dropMembershipSQL, groupIDSQL, insertValueSQL, deleteValueSQL,
		d.absentSQL("gatehouse_groups", groupCols, groupKey), d.absentSQL("gatehouse_memberships", membershipCols, membershipKey)}
}

// prepared are statements prepared on one pool, by their text before
// rebinding.
type prepared map[string]*sql.Stmt

// prepareLogins prepares the statements of the login path: on SQLite the
// reads on the reading pool and the writes on the writer, on a server
// both on its one pool.
func (d *db) prepareLogins(ctx context.Context) error {
	var err error
	if d.w == d.r {
		d.rstmts, err = d.prepare(ctx, d.w, slices.Concat(d.d.readSQL(), d.d.writeSQL()))
		d.wstmts = d.rstmts
		return err
	}
	if d.rstmts, err = d.prepare(ctx, d.r, d.d.readSQL()); err != nil {
		return err
	}
	d.wstmts, err = d.prepare(ctx, d.w, d.d.writeSQL())
	return err
}

func (d *db) prepare(ctx context.Context, pool *sql.DB, texts []string) (prepared, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	out := make(prepared, len(texts))
	for _, t := range texts {
		if out[t] != nil {
			continue
		}
		st, err := pool.PrepareContext(ctx, d.d.rebind(t))
		if err != nil {
			out.close()
			return nil, fmt.Errorf("sqldir: prepare: %w", err)
		}
		out[t] = st
	}
	return out, nil
}

func (p prepared) close() error {
	var errs []error
	for _, st := range p {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
