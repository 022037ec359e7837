package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestServeMapsErrors checks the one adapter from an inner handler's
// error to the page: each kind of error gives its page (and so its
// status: recordingPages writes proxy's), its reason and its details.
func TestServeMapsErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		page    Page
		reason  string
		errText string // the logged details
		routine bool
	}{
		{name: "NoError", err: nil, status: http.StatusFound},
		{name: "Failure", err: &Failure{Page: LoginFailed, Reason: "replay", Err: boom}, status: http.StatusForbidden, page: LoginFailed, reason: "replay", errText: "boom"},
		{name: "AccessDenied", err: &Failure{Page: AccessDenied, Reason: "disabled", Err: boom}, status: http.StatusForbidden, page: AccessDenied, reason: "disabled", errText: "boom"},
		{name: "RoutineUnavailable", err: &Failure{Page: Unavailable, Reason: "metadata", Err: boom, Routine: true}, status: http.StatusServiceUnavailable,
			page: Unavailable, reason: "metadata", errText: "boom", routine: true},
		{name: "WrappedFailure", err: fmt.Errorf("logout: %w", &Failure{Page: Unavailable, Reason: "seal", Err: boom}), status: http.StatusServiceUnavailable,
			page: Unavailable, reason: "seal", errText: "logout: seal: boom"},
		{name: "OtherError", err: fmt.Errorf("send: %w", boom), status: http.StatusServiceUnavailable, page: Unavailable, reason: "internal", errText: "send: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages := &recordingPages{}
			m := &Manager{pages: pages}
			w := httptest.NewRecorder()
			m.serve(func(w http.ResponseWriter, r *http.Request) error {
				if tc.err == nil {
					http.Redirect(w, r, "/next", http.StatusFound)
				}
				return tc.err
			})(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			shown := pages.take()
			if tc.err == nil {
				if len(shown) != 0 {
					t.Errorf("a page was shown for no error: %+v", shown)
				}
				return
			}
			if len(shown) != 1 {
				t.Fatalf("%d pages shown, want 1", len(shown))
			}
			f := shown[0]
			if f.Page != tc.page || f.Reason != tc.reason || f.Routine != tc.routine {
				t.Errorf("page %v, reason %q, routine %v; want %v, %q, %v", f.Page, f.Reason, f.Routine, tc.page, tc.reason, tc.routine)
			}
			if f.Err == nil || f.Err.Error() != tc.errText || !errors.Is(f.Err, boom) {
				t.Errorf("logged details %v, want %q wrapping boom", f.Err, tc.errText)
			}
		})
	}
}

// TestACSLoginErrors checks the pages of a LoginFunc's errors, through the
// ACS and its adapter: the sentinel chooses the page, a Refusal the
// reason, and the page leads back to where the login was going.
func TestACSLoginErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		page   Page
		reason string
	}{
		{name: "Plain", err: errors.New("no mapping for user_name"), status: http.StatusForbidden, page: LoginFailed, reason: "login"},
		{name: "AccessDenied", err: fmt.Errorf("user alice: %w", ErrAccessDenied), status: http.StatusForbidden, page: AccessDenied, reason: "login"},
		{name: "Unavailable", err: fmt.Errorf("store: %w", ErrUnavailable), status: http.StatusServiceUnavailable, page: Unavailable, reason: "login"},
		{name: "Refusal", err: &Refusal{Reason: "disabled", Err: fmt.Errorf("user alice: %w", ErrAccessDenied)}, status: http.StatusForbidden, page: AccessDenied, reason: "disabled"},
		{name: "RefusalWithoutReason", err: &Refusal{Err: ErrUnavailable}, status: http.StatusServiceUnavailable, page: Unavailable, reason: "login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages := &recordingPages{}
			m := goldenManager(t, func() time.Time { return goldenIssued.Add(time.Minute) }, pages, false)
			acs := m.ACS(func(context.Context, Identity) (string, error) { return "", tc.err })
			w := httptest.NewRecorder()
			acs.ServeHTTP(w, acsPost(t, m, goldenResponse(t, "valid.xml")))
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			shown := pages.take()
			if len(shown) != 1 {
				t.Fatalf("%d pages shown, want 1", len(shown))
			}
			f := shown[0]
			if f.Page != tc.page || f.Reason != tc.reason || !f.NoMessage || f.ReturnTo != "/app" || !errors.Is(f.Err, tc.err) {
				t.Errorf("got %+v; want page %v, reason %q, NoMessage, ReturnTo /app, the login's error", f, tc.page, tc.reason)
			}
			if len(w.Result().Cookies()) == 0 || w.Result().Cookies()[0].MaxAge >= 0 {
				t.Errorf("the login state cookie was not deleted: %v", w.Result().Cookies())
			}
		})
	}
}

// TestEndpointFailures checks a few endpoints' failures through the
// adapter: the page, the status and the reason the endpoint gives.
func TestEndpointFailures(t *testing.T) {
	pages := &recordingPages{}
	m := goldenManager(t, func() time.Time { return goldenIssued.Add(time.Minute) }, pages, false)
	for _, tc := range []struct {
		name      string
		serve     http.HandlerFunc
		method    string
		target    string
		status    int
		reason    string
		noMessage bool
		page      Page
	}{
		{name: "LoginUnknownIdP", serve: m.ServeLogin, method: http.MethodGet, target: "/.gatehouse/login?idp=nope", status: http.StatusForbidden, reason: "unknown_idp", noMessage: true},
		{name: "SLOUnsigned", serve: m.ServeSLO, method: http.MethodGet, target: "/.gatehouse/saml/slo?SAMLRequest=x", status: http.StatusForbidden, reason: "slo", page: LogoutFailed},
		{name: "LoginMethod", serve: m.ServeLogin, method: http.MethodPost, target: "/.gatehouse/login", status: http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.serve(w, httptest.NewRequest(tc.method, "https://sp.example.test"+tc.target, nil))
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			shown := pages.take()
			if tc.reason == "" {
				if len(shown) != 0 {
					t.Errorf("pages shown: %+v", shown)
				}
				return
			}
			if len(shown) != 1 || shown[0].Reason != tc.reason || shown[0].NoMessage != tc.noMessage || shown[0].Page != tc.page {
				t.Errorf("shown %+v, want one with reason %q, NoMessage %v, page %v", shown, tc.reason, tc.noMessage, tc.page)
			}
		})
	}
}
