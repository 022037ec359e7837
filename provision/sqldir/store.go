package sqldir

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"gatehouse/provision"
)

// Config selects and locates the database.
type Config struct {
	// Path is the SQLite database file; it is created when missing.
	Path string `yaml:"path"`
}

// Validate checks the configuration without touching the file system.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("path: required")
	}
	if strings.ContainsAny(c.Path, "?#") {
		return errors.New("path: must not contain '?' or '#'")
	}
	return nil
}

// Option adjusts a Store.
type Option func(*Store)

// WithClock sets the clock used for timestamps.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Store is a provision.Store on SQLite. Writes go through one connection
// that starts every transaction with BEGIN IMMEDIATE, so concurrent logins
// serialise on the write lock instead of failing with SQLITE_BUSY; reads
// use a separate pool and never block on writers (WAL).
type Store struct {
	w, r *sql.DB
	now  func() time.Time
}

var _ provision.Store = (*Store)(nil)

// Open opens (creating and migrating when needed) the SQLite database.
func Open(ctx context.Context, cfg Config, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sqldir: %w", err)
	}
	if err := registerFold(); err != nil {
		return nil, fmt.Errorf("sqldir: register %s: %w", foldFunc, err)
	}
	s := &Store{now: time.Now}
	for _, o := range opts {
		o(s)
	}
	dsn := func(txlock string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", txlock)
		return "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqldir: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqldir: open: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s.w, s.r = w, r
	return s, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	var have int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return fmt.Errorf("sqldir: read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("sqldir: database schema version %d is newer than this gatehouse (%d)", have, len(migrations))
	}
	for v := have; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqldir: migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqldir: migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqldir: migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqldir: migration %d: %w", v+1, err)
		}
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqldir: ping: %w", err)
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// record is a user as stored, with the memberships of the login's source.
type record struct {
	user      provision.User
	srcGroups map[string]string // normalised name -> name, for one source
}

const userColumns = `u.id, u.user_name, u.external_id, u.email, u.display_name, u.given_name, u.family_name, u.extra, u.status, u.owner, u.version, u.created_at, u.updated_at`

func scanUser(row interface{ Scan(...any) error }) (provision.User, error) {
	var u provision.User
	var extra, status, created, updated string
	err := row.Scan(&u.ID, &u.UserName, &u.ExternalID, &u.Email, &u.DisplayName, &u.GivenName, &u.FamilyName, &extra, &status, &u.Owner, &u.Version, &created, &updated)
	if err != nil {
		return u, err
	}
	if extra != "" && extra != "{}" {
		if err := json.Unmarshal([]byte(extra), &u.Extra); err != nil {
			return u, fmt.Errorf("extra attributes of user %s: %w", u.ID, err)
		}
	}
	u.Active = status == "active"
	u.Created, _ = time.Parse(time.RFC3339Nano, created)
	u.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	u.Created, u.Updated = u.Created.UTC(), u.Updated.UTC()
	return u, nil
}

// load reads a user and its groups; source selects which memberships are
// reported in srcGroups. found is false when no identity matches.
func load(ctx context.Context, q querier, key provision.Key, source string) (rec record, found bool, err error) {
	row := q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM user_identities i JOIN users u ON u.id = i.user_id
		WHERE i.idp = ? AND i.key_kind = ? AND i.subject = ?`, key.IdP, key.Kind, key.Subject)
	rec.user, err = scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("sqldir: read user: %w", err)
	}
	rec.user.Groups, rec.srcGroups, err = groupsOf(ctx, q, rec.user.ID, source)
	return rec, err == nil, err
}

func groupsOf(ctx context.Context, q querier, userID, source string) (all []string, src map[string]string, err error) {
	rows, err := q.QueryContext(ctx, `SELECT g.name, g.name_norm, m.source FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE m.user_id = ? ORDER BY g.name`, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("sqldir: read groups: %w", err)
	}
	defer rows.Close()
	src = map[string]string{}
	for rows.Next() {
		var name, nameNorm, s string
		if err := rows.Scan(&name, &nameNorm, &s); err != nil {
			return nil, nil, fmt.Errorf("sqldir: read groups: %w", err)
		}
		if len(all) == 0 || all[len(all)-1] != name {
			all = append(all, name)
		}
		if s == source {
			src[nameNorm] = name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqldir: read groups: %w", err)
	}
	return all, src, nil
}

// plan is the difference between a stored record and a login's claims.
type plan struct {
	user        provision.User // merged
	changed     []string
	addGroups   []string // names
	dropGroups  []string // normalised names
	fieldsDirty bool
}

func diff(rec record, l provision.Login) plan {
	c := l.Claims
	if rec.user.Owner == provision.OwnerSCIM && len(l.Reserved) > 0 {
		c = c.Without(l.Reserved)
	}
	p := plan{user: rec.user}
	p.user.Extra = maps.Clone(rec.user.Extra)
	p.changed = p.user.Apply(c)
	p.fieldsDirty = len(p.changed) > 0
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
// nothing new, is answered from the read pool without taking the write
// lock.
func (s *Store) Provision(ctx context.Context, l provision.Login) (provision.Result, error) {
	source := provision.GroupSource(l.Key.IdP)
	rec, found, err := load(ctx, s.r, l.Key, source)
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

	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock now
	if err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: begin: %w", err)
	}
	defer tx.Rollback()
	res, err := s.provisionTx(ctx, tx, l, source)
	if err != nil || res.Outcome == provision.Unchanged {
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return provision.Result{}, fmt.Errorf("sqldir: commit: %w", err)
	}
	return res, nil
}

func (s *Store) provisionTx(ctx context.Context, tx *sql.Tx, l provision.Login, source string) (provision.Result, error) {
	now := s.now().UTC()
	rec, found, err := load(ctx, tx, l.Key, source) // again, under the write lock
	if err != nil {
		return provision.Result{}, err
	}
	linked := false
	if !found {
		if err := checkTombstone(ctx, tx, l); err != nil {
			return provision.Result{}, err
		}
		rec, linked, err = link(ctx, tx, l, source, now)
		if err != nil {
			return provision.Result{}, err
		}
		found = linked
	}
	if !found {
		if l.NoCreate {
			return provision.Result{}, fmt.Errorf("sqldir: user for %s %q: %w", l.Key.Kind, l.Key.Subject, provision.ErrNotFound)
		}
		return s.create(ctx, tx, l, source, now)
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
	_, err = tx.ExecContext(ctx, `UPDATE users SET user_name = ?, user_name_norm = ?, external_id = ?, email = ?, display_name = ?,
		given_name = ?, family_name = ?, extra = ?, version = ?, updated_at = ? WHERE id = ?`,
		u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, u.DisplayName, u.GivenName, u.FamilyName,
		extra, u.Version, stamp(now), u.ID)
	if err != nil {
		return provision.Result{}, mapWriteErr("update user", err)
	}
	for _, n := range p.dropGroups {
		if _, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE user_id = ? AND source = ?
			AND group_id = (SELECT id FROM groups WHERE name_norm = ?)`, u.ID, source, n); err != nil {
			return provision.Result{}, fmt.Errorf("sqldir: remove membership: %w", err)
		}
	}
	if err := addMemberships(ctx, tx, u.ID, source, p.addGroups, now); err != nil {
		return provision.Result{}, err
	}
	if u.Groups, _, err = groupsOf(ctx, tx, u.ID, source); err != nil {
		return provision.Result{}, err
	}
	out := provision.Updated
	if linked {
		out = provision.Linked
	}
	return provision.Result{User: u, Outcome: out, Changed: p.changed}, nil
}

func (s *Store) create(ctx context.Context, tx *sql.Tx, l provision.Login, source string, now time.Time) (provision.Result, error) {
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
	_, err = tx.ExecContext(ctx, `INSERT INTO users (id, user_name, user_name_norm, external_id, email, display_name, given_name, family_name,
		extra, status, owner, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 'jit', 1, ?, ?)`,
		u.ID, u.UserName, provision.NormalizeName(u.UserName), u.ExternalID, u.Email, u.DisplayName, u.GivenName, u.FamilyName,
		extra, stamp(now), stamp(now))
	if err != nil {
		return provision.Result{}, mapWriteErr("create user", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO user_identities (idp, key_kind, subject, user_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, u.ID, stamp(now))
	if err != nil {
		return provision.Result{}, mapWriteErr("create identity", err)
	}
	if err := addMemberships(ctx, tx, u.ID, source, l.Claims.Groups, now); err != nil {
		return provision.Result{}, err
	}
	if len(l.Claims.Groups) > 0 {
		changed = append(changed, provision.FieldGroups)
		if u.Groups, _, err = groupsOf(ctx, tx, u.ID, source); err != nil {
			return provision.Result{}, err
		}
	}
	return provision.Result{User: u, Outcome: provision.Created, Changed: changed}, nil
}

func addMemberships(ctx context.Context, tx *sql.Tx, userID, source string, names []string, now time.Time) error {
	for _, name := range names {
		gid, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("sqldir: new id: %w", err)
		}
		norm := provision.NormalizeName(name)
		if _, err := tx.ExecContext(ctx, `INSERT INTO groups (id, name, name_norm, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name_norm) DO NOTHING`, gid.String(), name, norm, stamp(now), stamp(now)); err != nil {
			return fmt.Errorf("sqldir: create group: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (user_id, group_id, source, created_at)
			SELECT ?, id, ?, ? FROM groups WHERE name_norm = ? ON CONFLICT DO NOTHING`, userID, source, stamp(now), norm); err != nil {
			return fmt.Errorf("sqldir: add membership: %w", err)
		}
	}
	return nil
}

// User returns the user with the given ID.
func (s *Store) User(ctx context.Context, id string) (provision.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("sqldir: read user: %w", err)
	}
	u.Groups, _, err = groupsOf(ctx, s.r, id, "")
	return u, err
}

// SetActive activates or deactivates a user; setting the state it already
// has writes nothing.
func (s *Store) SetActive(ctx context.Context, id string, active bool) error {
	status := "deactivated"
	if active {
		status = "active"
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET status = ?, version = version + 1, updated_at = ?
		WHERE id = ? AND status <> ?`, status, stamp(s.now().UTC()), id, status)
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

// stampLayout is fixed width, so that text order is time order.
const stampLayout = "2006-01-02T15:04:05.000Z"

func stamp(t time.Time) string { return t.UTC().Format(stampLayout) }

func encodeExtra(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m) // map keys are sorted: stable text
	if err != nil {
		return "", fmt.Errorf("sqldir: encode extra attributes: %w", err)
	}
	return string(b), nil
}

// mapWriteErr turns a uniqueness violation into provision.ErrConflict.
func mapWriteErr(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return fmt.Errorf("sqldir: %s: %w", op, provision.ErrConflict)
	}
	return fmt.Errorf("sqldir: %s: %w", op, err)
}

// checkTombstone refuses the first login of a key, user name or external
// ID whose user was deleted over SCIM.
func checkTombstone(ctx context.Context, tx *sql.Tx, l provision.Login) error {
	name := provision.NormalizeName(l.Claims.Fields[provision.FieldUserName])
	ext := l.Claims.Fields[provision.FieldExternalID]
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM tombstones WHERE (idp = ? AND key_kind = ? AND subject = ?)
		OR (user_name_norm = ? AND ? <> '') OR (external_id = ? AND ? <> '') LIMIT 1`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, name, name, ext, ext).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("sqldir: read tombstones: %w", err)
	}
	return fmt.Errorf("sqldir: user for %s %q was deleted over SCIM: %w", l.Key.Kind, l.Key.Subject, provision.ErrDisabled)
}

// link lets the first login of a key claim a SCIM-owned user that no login
// has claimed, matched by l.LinkBy. The identity row is written in tx.
func link(ctx context.Context, tx *sql.Tx, l provision.Login, source string, now time.Time) (record, bool, error) {
	var where, v string
	switch l.LinkBy {
	case provision.LinkByUserName:
		where, v = "u.user_name_norm = ?", provision.NormalizeName(l.Claims.Fields[provision.FieldUserName])
	case provision.LinkByExternalID:
		where, v = "u.external_id = ?", l.Claims.Fields[provision.FieldExternalID]
	}
	if where == "" || v == "" {
		return record{}, false, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+userColumns+` FROM users u WHERE `+where+` AND u.owner = 'scim'
		AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.user_id = u.id) LIMIT 2`, v)
	if err != nil {
		return record{}, false, fmt.Errorf("sqldir: find user to link: %w", err)
	}
	var found []provision.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return record{}, false, fmt.Errorf("sqldir: find user to link: %w", err)
		}
		found = append(found, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return record{}, false, fmt.Errorf("sqldir: find user to link: %w", err)
	}
	switch len(found) {
	case 0:
		return record{}, false, nil
	case 1:
	default:
		return record{}, false, fmt.Errorf("sqldir: %d SCIM users have %s %q: %w", len(found), l.LinkBy, v, provision.ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_identities (idp, key_kind, subject, user_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Key.IdP, l.Key.Kind, l.Key.Subject, found[0].ID, stamp(now)); err != nil {
		return record{}, false, mapWriteErr("link identity", err)
	}
	rec := record{user: found[0]}
	rec.user.Groups, rec.srcGroups, err = groupsOf(ctx, tx, found[0].ID, source)
	return rec, err == nil, err
}
