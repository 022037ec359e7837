// Package sqldir is a provision.Store over database/sql, in three
// dialects: sqlite (modernc.org/sqlite, no cgo; the default store),
// postgres (pgx) and sqlserver (go-mssqldb). Queries are written once;
// dialect.go holds what must differ. Store keeps users in gatehouse's own
// tables, which it creates and migrates; Mapped writes into an
// application's existing tables through declared columns and never
// alters them.
//
// sqldir imports only provision from gatehouse.
package sqldir
