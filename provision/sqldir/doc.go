// Package sqldir is a provision.Store over database/sql, in three
// dialects: sqlite (modernc.org/sqlite, no cgo; the default store),
// postgres (pgx) and sqlserver (go-mssqldb). Queries are written once;
// dialect.go holds what must differ. Store keeps users in gatehouse's own
// tables, which it creates and migrates; Mapped writes into an
// application's existing tables through declared columns and never
// alters them.
//
// Neither store decides what a login does: both read a provision.Found,
// ask provision.Decide and carry out its Plan (jit.go runs that sequence).
// The files, by job:
//
//	config.go, check.go       settings, their problems, read-only checks
//	db.go, writegate.go       connections, transactions, retries, the SQLite writer queue
//	schema.go, migrate.go     gatehouse's tables and their migrations (refold.go: name folds)
//	store.go, users.go        the managed store: a login's reads and writes; reading users
//	directory.go, query.go    SCIM: users and groups by ID, filters as SQL
//	mapped.go                 the mapped store: a login's reads and writes
//	mapped_config.go, mapped_schema.go   the mapping and its check against the database
//	mapped_rows.go, mapped_write.go, mapped_groups.go   the application's rows, writes (or procedures), groups
//
// sqldir imports only provision from gatehouse.
package sqldir
