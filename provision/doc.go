// Package provision holds the user model that both doors into the
// application's user store share: just-in-time provisioning at login and
// (later) SCIM. It defines User, the Store contract every backend
// implements, the sentinel errors callers branch on, the mapping from SAML
// attributes to user fields, the merge rules of a JIT upsert, and the one
// canonical form of identity values (CanonicalName, CanonicalValue and the
// uniqueness fold NormalizeName) that every door and every store applies.
//
// provision imports no other package of gatehouse.
package provision
