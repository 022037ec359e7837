// Package scim serves SCIM 2.0 (RFC 7643, RFC 7644) under the reserved
// prefix (/.gatehouse/scim/v2, never forwarded upstream), writing into the
// same provision.Store as JIT logins; the store must be a
// provision.Directory. Clients authenticate with a bearer token, given in
// clear or as a SHA-256 digest.
//
// Server answers /Users, and /Groups when the store is also a
// provision.GroupDirectory: list (filter, sortBy, paging, attributes)
// and POST .search, get, create, replace, PATCH and delete, with ETags
// and If-Match for conditional writes; and the discovery endpoints
// /ServiceProviderConfig, /ResourceTypes and /Schemas. /Bulk and /Me
// answer 501. Filters are mapped onto provision.Filter and evaluated by
// the store; PATCH path filters and type values compare in memory with
// provision's operators (provision.CompareValues), so both mean the same.
// Quirks (on by default) accept what Okta and Entra ID send beyond the RFC.
//
// scim imports only provision from gatehouse; never proxy.
package scim
