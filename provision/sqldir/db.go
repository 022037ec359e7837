package sqldir

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"gatehouse/provision"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/zap"
)

// db is an open database: on SQLite one writer connection that starts
// every transaction with BEGIN IMMEDIATE, behind gatehouse's own queue
// (writeGate), so that concurrent logins take turns in order instead of
// racing for the connection or the file's lock, and a reading pool that
// never blocks on it (WAL); on a server one pool.
type db struct {
	d         *dialect
	w, r      *sql.DB
	gate      *writeGate // SQLite only: one write transaction at a time, in order
	now       func() time.Time
	timeout   time.Duration
	noMigrate bool
	log       *zap.Logger
	// gen counts the write transactions this process committed: a count
	// taken at one generation is current while it stays (pages.go).
	gen   atomic.Uint64
	pages pageCache
	// rstmts and wstmts are the login path's statements, prepared on r
	// and on w (stmts.go); the same on a server.
	rstmts, wstmts prepared
	// unprepared, when set, learns of every query that a pool or
	// transaction with prepared statements ran without one (tests).
	unprepared func(q string)
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
		// Each connection, the writer and every reader, has an equal
		// share of cache_bytes, in pages.
		pages := max(cfg.CacheBytes/pageCost/int64(cfg.MaxOpenConns+1), 10)
		dsn := func(txlock string) string {
			q := url.Values{}
			q.Add("_pragma", "busy_timeout(10000)")
			q.Add("_pragma", "foreign_keys(1)")
			q.Add("_pragma", fmt.Sprintf("cache_size(%d)", pages))
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
		// Readers stay open: a new one would parse the schema and prepare
		// the statements again.
		r.SetMaxOpenConns(cfg.MaxOpenConns)
		r.SetMaxIdleConns(cfg.MaxOpenConns)
		out.w, out.r, out.gate = w, r, newWriteGate()
		return out, nil
	}
	if cfg.DSN == "" {
		// The caller reads dsn_file into DSN; sqldir reads no secret.
		return nil, errors.New("sqldir: dsn: empty (the caller reads dsn_file into DSN)")
	}
	pool, err := openServer(d.name, cfg.DSN)
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

// pageCost is what one page in SQLite's cache costs: its 4 KiB (SQLite's
// default page size, which gatehouse keeps) and a header of SQLite's,
// which modernc's allocator rounds up to its next size class, a power of
// two. Measured: the memory outside Go's heap grows by twice the pages'
// own size.
const pageCost = 8 << 10

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

// Close closes the prepared statements and the pools.
func (d *db) Close() error {
	err := d.rstmts.close()
	if d.w == d.r {
		return errors.Join(err, d.w.Close())
	}
	return errors.Join(err, d.wstmts.close(), d.r.Close(), d.w.Close())
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

// tooLong names the failure of a query that ran past the store's own
// time bound while the caller still had time: a filter that reads too
// many rows (a co over every user, say) is refused as too costly rather
// than reported as a store outage.
func (d *db) tooLong(caller, bounded context.Context, err error) error {
	if err != nil && errors.Is(bounded.Err(), context.DeadlineExceeded) && caller.Err() == nil {
		return fmt.Errorf("sqldir: %w: the query ran past the store's time bound of %s", provision.ErrTooMany, d.timeout)
	}
	return err
}

// reader is the pool for reads outside a transaction.
func (d *db) reader() querier {
	return rebound{q: d.r, d: d.d, stmts: d.rstmts, unprepared: d.unprepared}
}

// conn rebinds the placeholders of every query for the dialect.
func (d *db) conn(q querier) querier { return rebound{q: q, d: d.d} }

// rebound runs queries on a pool or a transaction: a prepared statement
// when the query is one (stmts.go), otherwise the query with its
// placeholders rebound for the dialect.
type rebound struct {
	q          querier
	d          *dialect
	stmts      prepared // on the pool q is, or that tx runs on
	tx         *sql.Tx  // set when q is this transaction
	unprepared func(q string)
}

// stmt is the prepared statement of q, nil when there is none.
func (r rebound) stmt(ctx context.Context, q string) *sql.Stmt {
	st := r.stmts[q]
	if st == nil && r.unprepared != nil {
		r.unprepared(q)
	}
	if st != nil && r.tx != nil {
		st = r.tx.StmtContext(ctx, st) // the transaction's connection has it prepared after its first use
	}
	return st
}

func (r rebound) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.q.QueryContext(ctx, r.d.rebind(q), args...)
}

func (r rebound) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := r.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.q.QueryRowContext(ctx, r.d.rebind(q), args...)
}

func (r rebound) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := r.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
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
	if d.gate != nil {
		if err := d.gate.acquire(ctx); err != nil {
			return err
		}
		defer d.gate.release() // after the rollback below: deferred first, runs last
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldir: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(rebound{q: tx, d: d.d, stmts: d.wstmts, tx: tx, unprepared: d.unprepared}, d.now().UTC()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldir: commit: %w", err)
	}
	// After the commit: a count that read the old rows began before this
	// and recorded the generation before it.
	d.gen.Add(1)
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// insertAbsent inserts one row unless a row with the same key columns
// exists, and reports whether it inserted. SQLite and PostgreSQL use ON
// CONFLICT DO NOTHING; SQL Server checks under UPDLOCK, SERIALIZABLE,
// which holds the key range until the transaction ends, so that a
// concurrent insert of the same key waits instead of failing. table and
// columns are constants of this package.
func (d *db) insertAbsent(ctx context.Context, q querier, table string, cols []string, vals []any, key []string) (bool, error) {
	args := vals
	if d.d.name == SQLServer {
		for _, k := range key {
			args = append(args, vals[slices.Index(cols, k)])
		}
	}
	res, err := q.ExecContext(ctx, d.d.absentSQL(table, cols, key), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
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
