// Package session is gatehouse's SAML 2.0 service provider and its browser
// session. It wraps github.com/crewjam/saml (whose types stay inside this
// package) with the checks that library leaves out: a strict structural
// pre-check of every response, exactly one assertion, mandatory audience
// and recipient, a configurable clock skew, a replay cache, sealed
// login state bound to the browser, and IdP-initiated logins only where an
// IdP is configured for them. Sessions are small AES-GCM sealed cookies.
//
// session imports no other package of gatehouse.
package session
