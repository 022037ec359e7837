package session

import (
	"errors"
	"net/http"
)

// Page names a browser-facing page a failure is shown with.
type Page int

const (
	// LoginFailed: the login could not be completed (bad or refused SAML
	// response, expired login state, unusable attributes).
	LoginFailed Page = iota
	// AccessDenied: the user is known but may not sign in (deactivated).
	AccessDenied
	// Unavailable: a dependency is down; try again later.
	Unavailable
	// LogoutFailed: a single-logout message could not be accepted (bad
	// signature, replay, no logout pending in this browser).
	LogoutFailed
)

// Failure is a failed request to one of the SP's endpoints.
type Failure struct {
	Page   Page
	Reason string // short, for logs and metrics: "replay", "audience", ...
	Err    error  // details for the log; never shown to the browser
	// ReturnTo is where the failed login was going, when known: the
	// page's "Try again" starts a fresh login to it.
	ReturnTo string
	// NoMessage marks a sign-in failure without a refused SAML message: a
	// login refused after its response was accepted (mapping, store,
	// disabled user...: a login outcome), or one started for an IdP that
	// does not exist (any web page can make browsers ask for that). It is
	// not counted as a SAML failure.
	NoMessage bool
	// Routine marks an Unavailable failure that any anonymous client can
	// cause at will and whose cause operators learn of elsewhere (a login
	// through an IdP whose metadata is not loaded: metrics, readiness):
	// it is logged as a warning, not an error.
	Routine bool
}

// Refusal is an error of a LoginFunc that says why the login was refused
// (mapping, disabled, not_provisioned, rejected, store...): the reason the
// ACS logs in "request refused" and counts. Wrap ErrAccessDenied or
// ErrUnavailable in Err to choose the page.
type Refusal struct {
	Reason string
	Err    error
}

func (e *Refusal) Error() string { return e.Err.Error() }
func (e *Refusal) Unwrap() error { return e.Err }

// Error is the reason, and the details when there are any: a *Failure is
// the error an endpoint's inner handler returns (see serve).
func (f *Failure) Error() string {
	if f.Err == nil {
		return f.Reason
	}
	return f.Reason + ": " + f.Err.Error()
}

// Unwrap returns the details.
func (f *Failure) Unwrap() error { return f.Err }

// serve adapts an endpoint's inner handler, which returns its failure
// instead of showing it, into a handler: it is the one place where a
// failure becomes a page (failureOf says which). An inner handler that
// answered the request itself (a redirect, the signed-out page, a 405)
// returns nil.
func (m *Manager) serve(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			m.pages.Problem(w, r, failureOf(err))
		}
	}
}

// failureOf is the failure an inner handler's error shows: the *Failure
// it is, or the one it wraps, then logged with the wrapping error's
// details; any other error is unexpected, shown as Unavailable with
// reason "internal".
func failureOf(err error) Failure {
	var f *Failure
	if !errors.As(err, &f) {
		return Failure{Page: Unavailable, Reason: "internal", Err: err}
	}
	out := *f
	if err != error(f) {
		out.Err = err
	}
	return out
}

// loginFailure is the failure of a LoginFunc's error: the page its
// ErrAccessDenied or ErrUnavailable chooses (else LoginFailed), the
// reason its Refusal gives (else "login"), and the way back to where the
// login was going.
func loginFailure(err error, returnTo string) *Failure {
	f := &Failure{Page: LoginFailed, Reason: "login", Err: err, ReturnTo: returnTo, NoMessage: true}
	switch {
	case errors.Is(err, ErrAccessDenied):
		f.Page = AccessDenied
	case errors.Is(err, ErrUnavailable):
		f.Page = Unavailable
	}
	var refusal *Refusal
	if errors.As(err, &refusal) && refusal.Reason != "" {
		f.Reason = refusal.Reason
	}
	return f
}
