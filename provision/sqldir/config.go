package sqldir

import (
	"cmp"
	"errors"
	"fmt"
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
