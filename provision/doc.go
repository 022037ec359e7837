// Package provision holds the user model that both doors into the
// application's user store share: just-in-time provisioning at login and
// SCIM. It defines User, the Store contract every backend implements, the
// sentinel errors callers branch on, the mapping from SAML attributes to
// user fields, and the one canonical form of identity values
// (CanonicalName, CanonicalValue and the uniqueness fold NormalizeName)
// that every door and every store applies.
//
// The JIT rule is written once, in Decide (jit.go): a store reads what one
// login needs into a Found, Decide returns the Plan (create, update, link,
// nothing, or a refusal), and the store carries it out. Stores only read
// and write; explain's preview asks Decide too.
//
// provision imports no other package of gatehouse.
package provision
