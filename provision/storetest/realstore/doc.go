// Package realstore opens real provision stores for the tests of packages
// that consume provision.Store, such as scim: an SQLite database in the
// test's temporary directory, or a fresh database on the test binary's
// shared PostgreSQL cluster (test/pgtest). It hands back provision.Store,
// so those tests reach the store only through the interface and never
// name a backend.
//
// realstore is test support: only tests import it. It imports provision,
// provision/sqldir and test/pgtest; backends' own tests use storetest
// instead, so that no backend's tests build another backend.
package realstore
