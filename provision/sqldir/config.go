package sqldir

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Config selects and locates the database. cmd fills Dialect from the
// section name (store.sqlite, store.postgres, store.sqlserver).
type Config struct {
	Dialect string `yaml:"-"`
	// Path is the SQLite database file; it is created when missing.
	Path string `yaml:"path"`
	// DSN locates a server database. It is the value itself: the caller
	// (cmd) resolves a ${ENV} reference, or reads DSNFile into it and
	// clears DSNFile; sqldir reads no file.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsn_file"`
	// Pool settings for a server database. On SQLite, MaxOpenConns is the
	// number of reading connections (the one writer comes on top) and
	// they are kept open; the other two are not used.
	MaxOpenConns    int           `yaml:"max_open_conns"`
	MaxIdleConns    int           `yaml:"max_idle_conns"`
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime"`
	// Timeout bounds each store operation, within the request's own
	// deadline.
	Timeout time.Duration `yaml:"timeout"`
	// CacheBytes bounds the database pages SQLite keeps in memory, over
	// all of the store's connections: each gets an equal share as its
	// cache_size. Pages beyond it are read again from the file, which
	// the operating system caches. SQLite only.
	CacheBytes int64 `yaml:"cache_bytes"`
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

// Defaults and bounds of SQLite's reading connections (the default is
// this or the number of CPUs Go uses, whichever is more) and page cache.
const (
	DefaultSQLiteReaders = 4
	DefaultCacheBytes    = 4 << 20
	minCacheBytes        = 1 << 20
	maxCacheBytes        = 4 << 30
)

// WithDefaults fills the unset settings.
func (c Config) WithDefaults() Config {
	if c.Dialect == "" {
		c.Dialect = SQLite
	}
	if c.Dialect == SQLite {
		if c.MaxOpenConns == 0 {
			c.MaxOpenConns = max(DefaultSQLiteReaders, runtime.GOMAXPROCS(0))
		}
		if c.CacheBytes == 0 {
			c.CacheBytes = DefaultCacheBytes
		}
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = min(DefaultMaxIdleConns, max(c.MaxOpenConns, 0)) // a negative max_open_conns is reported alone
	}
	if c.ConnMaxLifetime == 0 {
		c.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Problem is one thing wrong with a store's configuration, or between the
// configuration and the database. Key is the setting's path within the
// store's section ("dsn", "mapped.users.columns.email"); it is "" when no
// one setting is at fault (the database cannot be reached).
type Problem struct {
	Key string
	Err error
}

func (p Problem) Error() string {
	switch {
	case p.Err == nil:
		return p.Key
	case p.Key == "":
		return p.Err.Error()
	}
	return p.Key + ": " + p.Err.Error()
}

func (p Problem) Unwrap() error { return p.Err }

// problemf is a Problem at key with a formatted message.
func problemf(key, format string, a ...any) Problem {
	return Problem{Key: key, Err: fmt.Errorf(format, a...)}
}

// Validate checks the configuration without touching the file system or
// the network: Problems, joined.
func (c Config) Validate() error {
	var errs []error
	for _, p := range c.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// Problems is every problem Validate finds, each with its key. DSN is the
// resolved value and DSNFile is only what the file said: the caller reads
// the file into DSN and clears DSNFile.
func (c Config) Problems() []Problem {
	var out []Problem
	bad := func(key, format string, a ...any) { out = append(out, problemf(key, format, a...)) }
	d, err := newDialect(cmp.Or(c.Dialect, SQLite))
	if err != nil {
		return []Problem{{Err: err}}
	}
	if d.name == SQLite {
		if c.Path == "" {
			bad("path", "required")
		}
		if strings.ContainsAny(c.Path, "?#") {
			bad("path", "must not contain '?' or '#'")
		}
		if c.DSN != "" || c.DSNFile != "" {
			bad("dsn", "SQLite takes path, not a DSN")
		}
		if c.CacheBytes != 0 && (c.CacheBytes < minCacheBytes || c.CacheBytes > maxCacheBytes) {
			bad("cache_bytes", "must be between %d (1 MiB) and %d (4 GiB), got %d", minCacheBytes, int64(maxCacheBytes), c.CacheBytes)
		}
	} else {
		if (c.DSN == "") == (c.DSNFile == "") {
			bad("dsn", "set dsn (a ${ENV} reference) or dsn_file, not both")
		}
		if c.Path != "" {
			bad("path", "only for SQLite; %s takes dsn or dsn_file", d.name)
		}
		if c.CacheBytes != 0 {
			bad("cache_bytes", "only for SQLite; %s caches pages in its server", d.name)
		}
	}
	for _, n := range []struct {
		key      string
		negative bool
	}{{"max_open_conns", c.MaxOpenConns < 0}, {"max_idle_conns", c.MaxIdleConns < 0},
		{"conn_max_lifetime", c.ConnMaxLifetime < 0}, {"timeout", c.Timeout < 0}} {
		if n.negative {
			bad(n.key, "must not be negative")
		}
	}
	if c.MaxIdleConns > 0 && c.MaxOpenConns > 0 && c.MaxIdleConns > c.MaxOpenConns {
		bad("max_idle_conns", "at most max_open_conns")
	}
	if c.Mapped != nil {
		for _, p := range c.Mapped.validate(d) {
			out = append(out, Problem{Key: "mapped." + p.Key, Err: p.Err})
		}
	}
	return out
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
