package proxy

import (
	"net/http"
	"strings"
	"testing"

	"gatehouse/provision"
)

// TestPreferredUsernameIsTheUserName: X-Forwarded-Preferred-Username,
// which applications written for oauth2-proxy take for the login name,
// carries the unique user name; the display name, free text that any IdP
// or SCIM client sets ("alice" on Bob's record), travels only in
// X-Forwarded-Display-Name.
func TestPreferredUsernameIsTheUserName(t *testing.T) {
	hs := newHeaderSet(Config{}.WithDefaults().Headers)
	for _, tc := range []struct {
		name               string
		user               provision.User
		preferred, display string
		displaySent        bool
	}{
		{"display name impersonating another user", provision.User{UserName: "bob", DisplayName: "alice"}, "bob", "alice", true},
		{"display name of an admin", provision.User{UserName: "mallory", DisplayName: "admin"}, "mallory", "admin", true},
		{"no display name", provision.User{UserName: "carol"}, "carol", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			(&identity{headers: hs.build(tc.user)}).set(h)
			if got := h.Get("X-Forwarded-Preferred-Username"); got != tc.preferred {
				t.Errorf("X-Forwarded-Preferred-Username = %q, want %q", got, tc.preferred)
			}
			if got, ok := h["X-Forwarded-Display-Name"]; ok != tc.displaySent || ok && got[0] != tc.display {
				t.Errorf("X-Forwarded-Display-Name = %q (sent %v), want %q", got, ok, tc.display)
			}
		})
	}
	if !strings.Contains(strings.Join(hs.names(), " "), "X-Forwarded-Display-Name") {
		t.Error("a client's X-Forwarded-Display-Name is not stripped")
	}
}

// TestGroupsWithListSyntaxLeftOutOfHeader: a group whose name holds what
// a reader of header lists takes for syntax (a quoted string, an escape,
// parameters, a comma) is left out of the groups header, whatever the
// separator: Werkzeug's parse_list_header reads "\"admins\"" as admins.
func TestGroupsWithListSyntaxLeftOutOfHeader(t *testing.T) {
	for _, tc := range []struct {
		name, sep, group string
	}{
		{"quoted name", ",", `"admins"`},
		{"quote inside", ",", `ad"mins`},
		{"semicolon parameter", ",", "y;admins"},
		{"backslash escape", ",", `ad\mins`},
		{"comma under another separator", "|", "admins,staff"},
		{"quote under another separator", "|", `"admins"`},
		{"the separator", "|", "ops|admins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}.WithDefaults().Headers
			cfg.GroupSeparator = tc.sep
			h := http.Header{}
			(&identity{headers: newHeaderSet(cfg).build(userWith("bob", []string{"staff", tc.group, "ops"}))}).set(h)
			if got, want := h.Get("X-Forwarded-Groups"), "staff"+tc.sep+"ops"; got != want {
				t.Errorf("X-Forwarded-Groups = %q, want %q", got, want)
			}
		})
	}
}

// TestIdentityHeaderNamesDistinct: no two identity headers, and no extra
// header, share a name: mapping display_name into the preferred-username
// header through headers.extra would bring the impersonation back.
func TestIdentityHeaderNamesDistinct(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(h *HeaderConfig)
		want string
	}{
		{"extra display name as preferred username", func(h *HeaderConfig) {
			h.Extra = map[string]string{"x-forwarded-preferred-username": "display_name"}
		}, "headers.extra.x-forwarded-preferred-username"},
		{"extra over the user header", func(h *HeaderConfig) { h.Extra = map[string]string{"X-Forwarded-User": "email"} }, "headers.extra.X-Forwarded-User"},
		{"display name header as preferred username", func(h *HeaderConfig) { h.DisplayName = "X-Forwarded-Preferred-Username" }, "headers.preferred_username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Upstream: "http://app:8080"}
			tc.edit(&c.Headers)
			err := c.WithDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if err := (Config{Upstream: "http://app:8080", Headers: HeaderConfig{Extra: map[string]string{"X-Forwarded-Name": "display_name"}}}).WithDefaults().Validate(); err != nil {
		t.Errorf("Validate(extra X-Forwarded-Name) = %v", err)
	}
}
