// Package ldapdir is a provision.Store over an LDAP directory: OpenLDAP
// (and directories like it, such as 389 DS) or Active Directory, chosen by
// a profile. It imports only provision and go-ldap.
//
// A user is found by an identity key scoped to its IdP, kept with a write
// counter and the memberships logins created in one state attribute that
// gatehouse owns. The user's ID is the directory's immutable anchor
// (entryUUID, objectGUID). A login reads the entry once and writes only
// the attributes that differ; an unchanged login sends no write at all.
// Concurrent first logins meet on the entry's deterministic DN: the loser's
// add fails with entryAlreadyExists and it continues as an update.
package ldapdir
