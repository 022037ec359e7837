// Package proxy is gatehouse's http.Handler: it routes the reserved path
// prefix to gatehouse's own endpoints (never to the upstream), gates every
// other request on a session, runs the JIT upsert when a login completes,
// strips client-sent identity headers and sets them from the provisioned
// user record, and forwards with httputil.ReverseProxy (Rewrite).
//
// proxy imports session and provision; never scim.
package proxy
