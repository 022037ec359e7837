// Package sqldir is a provision.Store over database/sql. This version
// carries the embedded SQLite dialect (modernc.org/sqlite, no cgo), the
// default store; the schema is created and migrated by gatehouse itself.
//
// sqldir imports only provision from gatehouse.
package sqldir
