package sqldir

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	"go.uber.org/zap"
)

// CheckMapped connects and reports every mismatch between the mapped
// configuration and the database, without creating anything. Each
// problem's key is within the store's section (mapped.users.columns.email);
// a failure to connect or to ask has no key. A SQLite file is only read
// (see inspectSQLite).
func CheckMapped(ctx context.Context, cfg Config) []Problem {
	if cfg.Mapped == nil {
		return []Problem{problemf("mapped", "no mapped tables are configured")}
	}
	var d *db
	var err error
	if cmp.Or(cfg.Dialect, SQLite) == SQLite {
		d, err = inspectSQLite(cfg)
	} else {
		d, err = connect(ctx, cfg, nil)
	}
	if err != nil {
		return []Problem{{Err: err}}
	}
	defer d.Close()
	_, problems, err := resolveMapped(ctx, d, *cfg.Mapped)
	if err != nil {
		return []Problem{{Err: err}}
	}
	out := make([]Problem, 0, len(problems))
	for _, e := range problems {
		var p Problem
		if !errors.As(e, &p) {
			p = Problem{Err: e}
		} else {
			p.Key = "mapped." + p.Key
		}
		out = append(out, p)
	}
	return out
}

// Check connects to the database of a managed store and reports whether
// gatehouse's schema is there or would be created, without creating it;
// with mapped tables it is CheckMapped. An existing SQLite file is opened
// read-only and read: one that is not a SQLite database, or holds a
// schema newer than this gatehouse, is a problem at path (a missing one is
// none: serve creates it).
func Check(ctx context.Context, cfg Config) []Problem {
	if cmp.Or(cfg.Dialect, SQLite) == SQLite {
		if _, err := os.Stat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
			if cfg.Mapped != nil {
				return []Problem{problemf("path", "%s does not exist: mapped tables are read from an existing database", cfg.Path)}
			}
			return nil
		}
		if ps := checkSQLiteFile(ctx, cfg); ps != nil {
			return ps
		}
	}
	if cfg.Mapped != nil {
		return CheckMapped(ctx, cfg)
	}
	if cmp.Or(cfg.Dialect, SQLite) == SQLite {
		return nil
	}
	d, err := connect(ctx, cfg, nil)
	if err != nil {
		return []Problem{{Err: err}}
	}
	defer d.Close()
	if err := d.Ping(ctx); err != nil {
		return []Problem{{Err: err}}
	}
	return nil
}

// checkSQLiteFile reads an existing SQLite file's header, its schema and
// the managed schema's version.
func checkSQLiteFile(ctx context.Context, cfg Config) []Problem {
	d, err := inspectSQLite(cfg)
	if err != nil {
		return []Problem{{Err: err}}
	}
	defer d.Close()
	ctx, cancel := d.bound(ctx)
	defer cancel()
	var version, objects int
	err = d.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version)
	if err == nil {
		err = d.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&objects)
	}
	if err != nil {
		return []Problem{problemf("path", "%s cannot be read as a SQLite database: %v", cfg.Path, err)}
	}
	if cfg.Mapped == nil && version > len(sqliteMigrations) {
		return []Problem{problemf("path", "%s holds gatehouse's schema version %d, newer than this gatehouse (%d)", cfg.Path, version, len(sqliteMigrations))}
	}
	return nil
}

// inspectSQLite opens a SQLite file to read it and nothing else:
// read-only and immutable, so that no lock is taken and not even a -shm
// or -wal file appears beside a WAL database (a check run as another user
// must leave nothing behind that the server then cannot open), and a
// missing file is not created. A server writing the file meanwhile is not
// seen; a check needs only what is on disk.
func inspectSQLite(cfg Config) (*db, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sqldir: %w", err)
	}
	if err := registerFold(); err != nil {
		return nil, fmt.Errorf("sqldir: register %s: %w", foldFunc, err)
	}
	d, err := newDialect(SQLite)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("immutable", "1")
	pool, err := sql.Open("sqlite", "file:"+(&url.URL{Path: cfg.Path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqldir: open: %w", err)
	}
	pool.SetMaxOpenConns(1)
	return &db{d: d, w: pool, r: pool, now: time.Now, timeout: cfg.Timeout, noMigrate: true, log: zap.NewNop()}, nil
}
