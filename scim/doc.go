// Package scim will serve SCIM 2.0 (RFC 7643, RFC 7644) under the reserved
// prefix, writing into the same provision.Store as JIT logins. It is built
// in its own issue; until then gatehouse answers 404 under
// /.gatehouse/scim/v2/ and never forwards those paths.
//
// scim imports only provision from gatehouse; never proxy.
package scim
