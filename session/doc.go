// Package session is gatehouse's SAML 2.0 service provider and its browser
// session. It uses github.com/crewjam/saml (whose types stay inside this
// package) to build requests and read metadata and assertions, and applies
// the checks that library leaves out, in order of cost: limits on every
// XML document from outside, checked by a scan that builds nothing before
// any parser runs; the login state (or an IdP allowed to start logins)
// before a response is decoded; a query signature before a logout message
// is inflated; then a strict structural pre-check, exactly one assertion,
// signatures verified by goxmldsig with only the signed content read,
// mandatory audience and recipient, a configurable clock skew, and a
// replay cache for assertions and logout messages. Sessions are small
// AES-GCM sealed cookies bound to the SP's entity ID; logins in flight
// travel in a few sealed cookie slots; logouts are same-origin POSTs.
//
// session imports no other package of gatehouse.
package session
