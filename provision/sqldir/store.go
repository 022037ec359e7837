package sqldir

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	mssql "github.com/microsoft/go-mssqldb"
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"gatehouse/provision"
)

// Config selects and locates the database. cmd fills Dialect from the
// section name (store.sqlite, store.postgres, store.sqlserver).
type Config struct {
	Dialect string `yaml:"-"`
	// Path is the SQLite database file; it is created when missing.
	Path string `yaml:"path"`
	// DSN locates a server database; cmd resolves it from a ${ENV}
	// reference, and DSNFile names a file holding it instead.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// Pool settings for a server database.
	MaxOpenConns    int           `yaml:"max_open_conns"`
	MaxIdleConns    int           `yaml:"max_idle_conns"`
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime"`
	// Timeout bounds each store operation, within the request's own
	// deadline.
	Timeout time.Duration `yaml:"timeout"`
	// Mapped writes into an application's existing tables instead of
	// gatehouse's own (OpenMapped).
	Mapped *MappedConfig `yaml:"mapped"`
}

// Defaults of a server database's pool and of Timeout.
const (
	DefaultMaxOpenConns    = 10
	DefaultMaxIdleConns    = 5
	DefaultConnMaxLifetime = 30 * time.Minute
	DefaultTimeout         = 5 * time.Second
)

// WithDefaults fills the unset settings.
func (c Config) WithDefaults() Config {
	if c.Dialect == "" {
		c.Dialect = SQLite
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = min(DefaultMaxIdleConns, c.MaxOpenConns)
	}
	if c.ConnMaxLifetime == 0 {
		c.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate checks the configuration without touching the file system or
// the network.
func (c Config) Validate() error {
	var errs []error
	d, err := newDialect(cmp.Or(c.Dialect, SQLite))
	if err != nil {
		return err
	}
	if d.name == SQLite {
		if c.Path == "" {
			errs = append(errs, errors.New("path: required"))
		}
		if strings.ContainsAny(c.Path, "?#") {
			errs = append(errs, errors.New("path: must not contain '?' or '#'"))
		}
		if c.DSN != "" || c.DSNFile != "" {
			errs = append(errs, errors.New("dsn: SQLite takes path, not a DSN"))
		}
	} else {
		if (c.DSN == "") == (c.DSNFile == "") {
			errs = append(errs, errors.New("dsn: set dsn (a ${ENV} reference) or dsn_file, not both"))
		}
		if c.Path != "" {
			errs = append(errs, fmt.Errorf("path: only for SQLite; %s takes dsn or dsn_file", d.name))
		}
	}
	if c.MaxOpenConns < 0 || c.MaxIdleConns < 0 || c.ConnMaxLifetime < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("pool settings and timeout must not be negative"))
	}
	if c.MaxIdleConns > 0 && c.MaxOpenConns > 0 && c.MaxIdleConns > c.MaxOpenConns {
		errs = append(errs, errors.New("max_idle_conns: at most max_open_conns"))
	}
	if c.Mapped != nil {
		for _, e := range flatten(c.Mapped.validate(d)) {
			errs = append(errs, fmt.Errorf("mapped.%w", e))
		}
	}
	return errors.Join(errs...)
}

// flatten undoes errors.Join.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Option adjusts a Store.
type Option func(*options)

type options struct {
	now       func() time.Time
	noMigrate bool
	log       *zap.Logger
}

// WithClock sets the clock used for timestamps.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger of what a migration finds (rows whose names
// collide under a new fold); none by default.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithoutMigration opens a database whose schema is current without
// creating or migrating anything; otherwise Open fails. For commands that
// must not write.
func WithoutMigration() Option { return func(o *options) { o.noMigrate = true } }

// db is an open database: on SQLite one writer connection that starts
// every transaction with BEGIN IMMEDIATE, so that concurrent logins
// serialise on the write lock instead of failing with SQLITE_BUSY, and a
// reading pool that never blocks on it (WAL); on a server one pool.
type db struct {
	d         *dialect
	w, r      *sql.DB
	now       func() time.Time
	timeout   time.Duration
	noMigrate bool
	log       *zap.Logger
}

func connect(ctx context.Context, cfg Config, opts []Option) (*db, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sqldir: %w", err)
	}
	d, _ := newDialect(cfg.Dialect)
	o := options{now: time.Now, log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	out := &db{d: d, now: o.now, timeout: cfg.Timeout, noMigrate: o.noMigrate, log: o.log}
	if d.name == SQLite {
		if err := registerFold(); err != nil {
			return nil, fmt.Errorf("sqldir: register %s: %w", foldFunc, err)
		}
		dsn := func(txlock string) string {
			q := url.Values{}
			q.Add("_pragma", "busy_timeout(10000)")
			q.Add("_pragma", "foreign_keys(1)")
			if o.noMigrate {
				q.Set("mode", "ro") // never create the file or change its journal mode
			} else {
				q.Add("_pragma", "journal_mode(WAL)")
				q.Add("_pragma", "synchronous(NORMAL)")
			}
			q.Set("_txlock", txlock)
			return "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() + "?" + q.Encode()
		}
		w, err := sql.Open("sqlite", dsn("immediate"))
		if err != nil {
			return nil, fmt.Errorf("sqldir: open: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetConnMaxIdleTime(0)
		r, err := sql.Open("sqlite", dsn("deferred"))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqldir: open: %w", err)
		}
		r.SetMaxOpenConns(8)
		r.SetMaxIdleConns(8)
		out.w, out.r = w, r
		return out, nil
	}
	dsn := cfg.DSN
	if cfg.DSNFile != "" {
		b, err := os.ReadFile(cfg.DSNFile)
		if err != nil {
			return nil, fmt.Errorf("sqldir: dsn_file: %w", err)
		}
		dsn = strings.TrimSpace(string(b))
	}
	pool, err := openServer(d.name, dsn)
	if err != nil {
		return nil, err
	}
	pool.SetMaxOpenConns(cfg.MaxOpenConns)
	pool.SetMaxIdleConns(cfg.MaxIdleConns)
	pool.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	pool.SetConnMaxIdleTime(cfg.ConnMaxLifetime / 4)
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := pool.PingContext(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqldir: connect to %s: %w", d.name, err)
	}
	out.w, out.r = pool, pool
	return out, nil
}

// openServer opens a pool through the driver's connector. A DSN that does
// not parse is reported without the driver's message, which may quote the
// DSN and with it a password.
func openServer(dialect, dsn string) (*sql.DB, error) {
	switch dialect {
	case Postgres:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, errors.New("sqldir: postgres: the DSN cannot be parsed (want postgres://user@host:port/database?... or key=value pairs)")
		}
		return stdlib.OpenDB(*cfg), nil
	case SQLServer:
		c, err := mssql.NewConnector(dsn)
		if err != nil {
			return nil, errors.New("sqldir: sqlserver: the DSN cannot be parsed (want sqlserver://user@host:port?database=name&...)")
		}
		return sql.OpenDB(c), nil
	}
	return nil, fmt.Errorf("sqldir: %s is not a server database", dialect)
}

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

func (d *db) managedMigrations() []string {
	switch d.d.name {
	case Postgres:
		return postgresMigrations
	case SQLServer:
		return sqlserverMigrations
	}
	return sqliteMigrations
}

// migrate applies the migrations of one component that have not run. On
// SQLite the managed schema counts in PRAGMA user_version; everything
// else in gatehouse_schema, under a lock that keeps replicas starting
// together from migrating twice.
func (d *db) migrate(ctx context.Context, component string, migrations []string) error {
	if d.noMigrate {
		return d.schemaCurrent(ctx, component, len(migrations))
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldir: migrate: %w", err)
	}
	defer tx.Rollback()
	q := d.conn(tx)
	pragma := d.d.name == SQLite && component == "managed"
	var have int
	switch {
	case pragma:
		err = tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have)
	default:
		for _, stmt := range d.d.schemaTable() {
			if _, err = tx.ExecContext(ctx, stmt); err != nil {
				break
			}
		}
		if err == nil {
			err = q.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM gatehouse_schema WHERE component = ?", component).Scan(&have)
		}
	}
	if err != nil {
		return fmt.Errorf("sqldir: read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("sqldir: database schema version %d is newer than this gatehouse (%d)", have, len(migrations))
	}
	refolded := false
	for v := have; v < len(migrations); v++ {
		if migrations[v] == refoldStep {
			// Each refold computes the current fold: one is enough.
			if !refolded {
				err = d.refold(ctx, q, component)
			}
			refolded = true
		} else {
			_, err = tx.ExecContext(ctx, migrations[v])
		}
		if err != nil {
			return fmt.Errorf("sqldir: migration %s %d: %w", component, v+1, err)
		}
	}
	if have < len(migrations) {
		if pragma {
			_, err = tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)))
		} else {
			_, err = q.ExecContext(ctx, "INSERT INTO gatehouse_schema (component, version) VALUES (?, ?)", component, len(migrations))
		}
		if err != nil {
			return fmt.Errorf("sqldir: record schema version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldir: migrate: %w", err)
	}
	return nil
}

// schemaCurrent checks, reading only, that a component's schema is at
// version want.
func (d *db) schemaCurrent(ctx context.Context, component string, want int) error {
	var have int
	var err error
	if d.d.name == SQLite && component == "managed" {
		err = d.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have)
	} else {
		err = d.reader().QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM gatehouse_schema WHERE component = ?", component).Scan(&have)
	}
	if err != nil || have != want {
		return fmt.Errorf("sqldir: gatehouse's %s tables are not in this database at the current version (%d, want %d; %v): start gatehouse once to create them", component, have, want, err)
	}
	return nil
}

// Close closes the pools.
func (d *db) Close() error {
	if d.w == d.r {
		return d.w.Close()
	}
	return errors.Join(d.r.Close(), d.w.Close())
}

// Ping checks that the database answers.
func (d *db) Ping(ctx context.Context) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var one int
	if err := d.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqldir: ping: %w", err)
	}
	return nil
}

// bound applies the configured timeout to one operation.
func (d *db) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.timeout)
}

// reader is the pool for reads outside a transaction.
func (d *db) reader() querier { return d.conn(d.r) }

// conn rebinds the placeholders of every query for the dialect.
func (d *db) conn(q querier) querier { return rebound{q, d.d} }

type rebound struct {
	q querier
	d *dialect
}

func (r rebound) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return r.q.QueryContext(ctx, r.d.rebind(q), args...)
}

func (r rebound) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return r.q.QueryRowContext(ctx, r.d.rebind(q), args...)
}

func (r rebound) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return r.q.ExecContext(ctx, r.d.rebind(q), args...)
}

// maxAttempts bounds how often a write transaction runs: again after a
// deadlock or serialisation failure, and once again after a uniqueness
// violation, which on the servers is how a first login learns that a
// concurrent one created the row (it then finds that row).
const maxAttempts = 5

// write runs fn in one transaction, committing when it returns nil.
func (d *db) write(ctx context.Context, fn func(q querier, now time.Time) error) error {
	for attempt := 1; ; attempt++ {
		err := d.writeOnce(ctx, fn)
		if err == nil {
			return nil
		}
		retry := d.d.classify(err) == errRetry || errors.Is(err, provision.ErrConflict) && attempt == 1
		if !retry || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		// Back off with jitter, so that deadlock victims do not meet again.
		t := time.NewTimer(time.Duration(attempt)*5*time.Millisecond + time.Duration(rand.Int64N(int64(10*time.Millisecond))))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (d *db) writeOnce(ctx context.Context, fn func(q querier, now time.Time) error) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldir: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(d.conn(tx), d.now().UTC()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldir: commit: %w", err)
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
	var extra, status string
	err := row.Scan(&u.ID, &u.UserName, &u.ExternalID, &u.Email, &u.DisplayName, &u.GivenName, &u.FamilyName, &extra, &status, &u.Owner, &u.Version,
		timeScan{&u.Created}, timeScan{&u.Updated})
	if err != nil {
		return u, err
	}
	if extra != "" && extra != "{}" {
		if err := json.Unmarshal([]byte(extra), &u.Extra); err != nil {
			return u, fmt.Errorf("extra attributes of user %s: %w", u.ID, err)
		}
	}
	u.Active = status == "active"
	return u, nil
}

// timeScan reads a timestamp stored as text (SQLite) or as a timestamp
// type (the servers), in UTC.
type timeScan struct{ t *time.Time }

func (s timeScan) Scan(v any) error {
	switch v := v.(type) {
	case time.Time:
		*s.t = v.UTC()
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", v, err)
		}
		*s.t = t.UTC()
	case []byte:
		return s.Scan(string(v))
	case nil:
		*s.t = time.Time{}
	default:
		return fmt.Errorf("timestamp: unexpected %T", v)
	}
	return nil
}

// load reads a user and its groups; source selects which memberships are
// reported in srcGroups. found is false when no identity matches. lock
// takes the dialect's update locks, for a read that decides a write.
func (s *Store) load(ctx context.Context, q querier, key provision.Key, source string, lock bool) (rec record, found bool, err error) {
	th, qh := "", ""
	if lock {
		th, qh = s.d.lock()
	}
	row := q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM gatehouse_identities i`+th+` JOIN gatehouse_users u`+th+` ON u.id = i.user_id
		WHERE i.idp = ? AND i.key_kind = ? AND i.subject = ?`+qh, key.IdP, key.Kind, key.Subject)
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
	rows, err := q.QueryContext(ctx, `SELECT g.name, g.name_norm, m.source FROM gatehouse_memberships m JOIN gatehouse_groups g ON g.id = m.group_id
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

// insertAbsent inserts one row unless a row with the same key columns
// exists, and reports whether it inserted. SQLite and PostgreSQL use ON
// CONFLICT DO NOTHING; SQL Server checks under UPDLOCK, SERIALIZABLE,
// which holds the key range until the transaction ends, so that a
// concurrent insert of the same key waits instead of failing. table and
// columns are constants of this package.
func (d *db) insertAbsent(ctx context.Context, q querier, table string, cols []string, vals []any, key []string) (bool, error) {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	var stmt string
	args := vals
	if d.d.name == SQLServer {
		var cond []string
		for _, k := range key {
			cond = append(cond, k+" = ?")
			args = append(args, vals[slices.Index(cols, k)])
		}
		stmt = `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) SELECT ` + ph + ` WHERE NOT EXISTS (SELECT 1 FROM ` +
			table + ` WITH (UPDLOCK, SERIALIZABLE) WHERE ` + strings.Join(cond, " AND ") + `)`
	} else {
		stmt = `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + ph + `) ON CONFLICT (` + strings.Join(key, ", ") + `) DO NOTHING`
	}
	res, err := q.ExecContext(ctx, stmt, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// User returns the user with the given ID.
func (s *Store) User(ctx context.Context, id string) (provision.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.user(ctx, s.reader(), id, false)
}

// user reads one user with its groups; lock takes the dialect's update
// locks, for a read that decides a write.
func (s *Store) user(ctx context.Context, q querier, id string, lock bool) (provision.User, error) {
	th, qh := "", ""
	if lock {
		th, qh = s.d.lock()
	}
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM gatehouse_users u`+th+` WHERE u.id = ?`+qh, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("sqldir: user %s: %w", id, provision.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("sqldir: read user: %w", err)
	}
	u.Groups, _, err = groupsOf(ctx, q, id, "")
	return u, err
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

// mapWriteErr turns a uniqueness violation into provision.ErrConflict and
// a value the column cannot hold into provision.ErrInvalid, keeping the
// database's error for the log and for the retry decision.
func (d *db) mapWriteErr(op string, err error) error {
	switch d.d.classify(err) {
	case errUnique:
		return fmt.Errorf("sqldir: %s: %w: %w", op, provision.ErrConflict, err)
	case errTooLong:
		return fmt.Errorf("sqldir: %s: %w: a value is longer than its column allows: %w", op, provision.ErrInvalid, err)
	case errBadText:
		return fmt.Errorf("sqldir: %s: %w: a value does not fit its column's type: %w", op, provision.ErrInvalid, err)
	}
	return fmt.Errorf("sqldir: %s: %w", op, err)
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
