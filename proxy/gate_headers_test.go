package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"gatehouse/provision"
)

// appHeaders names the identity headers something other than the
// defaults, so that a test can tell the configured headers from the
// built-in list of stripped ones.
func appHeaders(c *Config) {
	c.Headers = HeaderConfig{User: "X-App-User", Email: "x-app-mail", Groups: "X-App-Groups", PreferredUsername: "X-App-Login",
		DisplayName: "X-App-Name", GroupSeparator: "|",
		Extra: map[string]string{"X-App-Dept": "department", "X-App-Uid": "id", "X-App-Given": "given_name", "X-App-Family": "family_name"}}
}

// infraHeaders are set on every proxied request whoever sends it.
var infraHeaders = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", RequestIDHeader, "User-Agent", "Accept"}

// identityOf is what the upstream received beyond the infrastructure
// headers and what the client sent on purpose (keep).
func identityOf(r *http.Request, keep ...string) http.Header {
	h := r.Header.Clone()
	for _, n := range append(slices.Clone(infraHeaders), keep...) {
		delete(h, n)
	}
	return h
}

// TestGateSetsExactlyTheConfiguredHeaders: the upstream receives the
// configured identity headers, each once, with the record's values, and
// no other; a field the record leaves empty sends no header.
func TestGateSetsExactlyTheConfiguredHeaders(t *testing.T) {
	full := alice()
	full.Groups = []string{"admins", "staff", "ops"}
	sparse := provision.User{ID: "u-bob", UserName: "bob", Active: true}
	for _, tc := range []struct {
		name string
		user provision.User
		want http.Header
	}{
		{"FullRecord", full, http.Header{
			"X-App-User": {"alice"}, "X-App-Mail": {"alice@example.test"}, "X-App-Groups": {"admins|staff|ops"},
			"X-App-Login": {"alice"}, "X-App-Name": {"Alice Liddell"}, "X-App-Dept": {"R&D"}, "X-App-Uid": {"u-alice"},
			"X-App-Given": {"Alice"}, "X-App-Family": {"Liddell"},
		}},
		{"SparseRecord", sparse, http.Header{"X-App-User": {"bob"}, "X-App-Login": {"bob"}, "X-App-Uid": {"u-bob"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t, appHeaders, tc.user)
			if w := g.do("GET", "/", g.cookie(tc.user.ID), api); w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			if diff := cmp.Diff(tc.want, identityOf(g.upstream.last(t))); diff != "" {
				t.Errorf("identity headers (-want +got):\n%s", diff)
			}
		})
	}
}

// spoofs are a client's spellings of the header name n: as configured,
// in other cases, with "_" or "." for "-", with separators doubled or
// dropped, and each with two values.
func spoofs(n string) http.Header {
	h := http.Header{}
	for _, v := range []string{
		n, strings.ToLower(n), strings.ToUpper(n), strings.ReplaceAll(n, "-", "_"), strings.ReplaceAll(strings.ToLower(n), "-", "_"),
		strings.ReplaceAll(n, "-", "."), strings.ReplaceAll(n, "-", "--"), strings.ReplaceAll(n, "-", ""), "-" + n, n + "-",
	} {
		h[v] = []string{"mallory", "root"}
	}
	return h
}

// TestGateStripsClientIdentityHeaders: whatever spelling of an identity
// header a client sends (case, "_" or "." for "-", separators doubled or
// dropped, several values, several spellings at once) is removed, signed
// in or not; the signed-in user's headers carry one value, the record's.
func TestGateStripsClientIdentityHeaders(t *testing.T) {
	sent := http.Header{"Accept": {"application/json"}}
	names := []string{"X-App-User", "X-App-Mail", "X-App-Groups", "X-App-Login", "X-App-Name", "X-App-Dept", "X-App-Uid",
		"X-App-Given", "X-App-Family",
		// The default names, stripped by the built-in list though the
		// configuration renamed them; the strip prefix; kin of both.
		"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Forwarded-User-Id",
		"X-Gatehouse-Role", "X-Gatehouse-User", "Remote-User", "X-Remote-User", "X-Auth-Request-Email",
		"X-Http-Method-Override", RequestIDHeader}
	for _, n := range names {
		for k, v := range spoofs(n) {
			sent[k] = v
		}
	}
	bob := provision.User{ID: "u-bob", UserName: "bob", Active: true} // no e-mail, name, groups, department
	g := newGate(t, func(c *Config) {
		appHeaders(c)
		c.PublicPaths = []string{"/pub/"}
	}, bob)
	// What the upstream may see of the client's: nothing whose normal
	// form is one of those names (or under the strip prefix).
	check := func(t *testing.T, got *http.Request, want http.Header) {
		t.Helper()
		for k, v := range got.Header {
			norm := NormalizeHeaderName(k)
			if want[k] != nil {
				if !slices.Equal(v, want[k]) {
					t.Errorf("%s = %q, want %q", k, v, want[k])
				}
				continue
			}
			if k == RequestIDHeader {
				if len(v) != 1 || v[0] == "mallory" {
					t.Errorf("%s = %q: the client's request ID was forwarded", k, v)
				}
				continue
			}
			if strings.HasPrefix(norm, "xgatehouse") || slices.ContainsFunc(names, func(n string) bool { return NormalizeHeaderName(n) == norm }) {
				t.Errorf("client header %s = %q reached the upstream", k, v)
			}
		}
		for k := range want {
			if got.Header[k] == nil {
				t.Errorf("%s not set", k)
			}
		}
	}
	t.Run("SignedIn", func(t *testing.T) {
		if w := g.do("GET", "/app", g.cookie("u-bob"), sent); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		check(t, g.upstream.last(t), http.Header{"X-App-User": {"bob"}, "X-App-Login": {"bob"}, "X-App-Uid": {"u-bob"}})
	})
	t.Run("PublicPath", func(t *testing.T) {
		if w := g.do("GET", "/pub/x", nil, sent); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		check(t, g.upstream.last(t), http.Header{})
	})
	t.Run("PublicPathWithSession", func(t *testing.T) {
		// A public path is proxied without reading the session: no
		// identity headers at all, the session's cookie still removed.
		c := g.cookie("u-bob")
		if w := g.do("GET", "/pub/x", c, sent); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		got := g.upstream.last(t)
		check(t, got, http.Header{})
		if strings.Contains(got.Header.Get("Cookie"), c.Name) {
			t.Error("the session cookie reached the upstream on a public path")
		}
	})
}

// TestGateConnectionCannotDropIdentityHeaders: a client that names the
// identity headers in Connection (hop-by-hop, removed by a proxy) cannot
// make gatehouse, or a proxy after it, drop the headers it sets.
func TestGateConnectionCannotDropIdentityHeaders(t *testing.T) {
	g := newGate(t, appHeaders, alice())
	h := http.Header{"Accept": {"application/json"}, "Connection": {"X-App-User, x-app-groups", "X-App-Uid"}}
	if w := g.do("GET", "/", g.cookie("u-alice"), h); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	got := g.upstream.last(t).Header
	for name, want := range map[string]string{"X-App-User": "alice", "X-App-Groups": "admins|staff", "X-App-Uid": "u-alice"} {
		if v := got.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	for _, v := range got.Values("Connection") {
		if strings.Contains(strings.ToLower(v), "x-app") {
			t.Errorf("Connection %q reached the upstream", v)
		}
	}
}

// TestGateUnsafeValuesLeftOut: a stored value that would be altered on
// the wire or could end the header (CR, LF, NUL, padding, separators of
// lines, invisible or bidi characters) is not sent, not even cleaned: the
// rest of the record still is, and the request still passes. A group
// that could read as list syntax is left out of the list alone.
func TestGateUnsafeValuesLeftOut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(u *provision.User)
		absent string
		groups string
	}{
		{"CRLFInUserName", func(u *provision.User) { u.UserName = "alice\r\nX-App-Admin: yes" }, "X-App-User", "admins|staff"},
		{"LFInEmail", func(u *provision.User) { u.Email = "alice@example.test\nX-App-Admin: yes" }, "X-App-Mail", "admins|staff"},
		{"NULInDisplayName", func(u *provision.User) { u.DisplayName = "Alice\x00Admin" }, "X-App-Name", "admins|staff"},
		{"LineSeparatorInDisplayName", func(u *provision.User) { u.DisplayName = "Alice\u2028Admin" }, "X-App-Name", "admins|staff"},
		{"BidiInGivenName", func(u *provision.User) { u.GivenName = "\u202eecilA" }, "X-App-Given", "admins|staff"},
		{"PaddedDepartment", func(u *provision.User) { u.Extra = map[string]string{"department": "R&D "} }, "X-App-Dept", "admins|staff"},
		{"TabInFamilyName", func(u *provision.User) { u.FamilyName = "\tLiddell" }, "X-App-Family", "admins|staff"},
		{"DELInUserName", func(u *provision.User) { u.UserName = "alice\x7f" }, "X-App-User", "admins|staff"},
		{"GroupWithSeparator", func(u *provision.User) { u.Groups = []string{"admins", "ops|root", "staff"} }, "", "admins|staff"},
		{"GroupWithComma", func(u *provision.User) { u.Groups = []string{"admins", "ops,root", "staff"} }, "", "admins|staff"},
		{"GroupWithCRLF", func(u *provision.User) { u.Groups = []string{"admins", "ops\r\nX-App-Admin: yes", "staff"} }, "", "admins|staff"},
		{"GroupQuoted", func(u *provision.User) { u.Groups = []string{"admins", `"root"`, "staff"} }, "", "admins|staff"},
		{"AllGroupsUnsafe", func(u *provision.User) { u.Groups = []string{" admins", "staff\u200b"} }, "X-App-Groups", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := alice()
			tc.edit(&u)
			g := newGate(t, appHeaders, u)
			if w := g.do("GET", "/", g.cookie(u.ID), api); w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			got := g.upstream.last(t).Header
			if tc.absent != "" {
				if v, ok := got[tc.absent]; ok {
					t.Errorf("%s = %q sent", tc.absent, v)
				}
			}
			if v := got.Get("X-App-Groups"); v != tc.groups {
				t.Errorf("X-App-Groups = %q, want %q", v, tc.groups)
			}
			if _, ok := got["X-App-Admin"]; ok {
				t.Error("a value injected a header")
			}
			if got.Get("X-App-Uid") != "u-alice" {
				t.Error("the rest of the record was not sent")
			}
			for k, vs := range got {
				for _, v := range vs {
					if strings.ContainsAny(v, "\r\n\x00") {
						t.Errorf("%s = %q carries a line break or NUL", k, v)
					}
				}
			}
		})
	}
}

// TestGateIdentityHeadersOnTheWire: through a real connection to an
// upstream on 127.0.0.1, the identity headers arrive byte for byte,
// UTF-8 included, each once, however the client spelled its own.
func TestGateIdentityHeadersOnTheWire(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	u := provision.User{ID: "u-zoe", UserName: "zoë", Email: "zoë@exämple.test", DisplayName: "Zoë O'Brien-李", Active: true,
		Groups: []string{"données", "staff"}}
	g := newGateOver(t, NewTransport(), func(c *Config) {
		appHeaders(c)
		c.Upstream = up.URL
	}, u)
	h := http.Header{"Accept": {"application/json"}, "x_app_user": {"mallory"}, "X-APP-USER": {"root"}, "X.App.Groups": {"admins"}}
	if w := g.do("GET", "/", g.cookie(u.ID), h); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string]string{"X-App-User": "zoë", "X-App-Mail": "zoë@exämple.test", "X-App-Name": "Zoë O'Brien-李",
		"X-App-Groups": "données|staff", "X-App-Login": "zoë"} {
		if got := seen.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s arrived as %q, want %q", name, got, want)
		}
	}
	for k := range seen {
		if n := NormalizeHeaderName(k); (n == "xappuser" || n == "xappgroups") && k != "X-App-User" && k != "X-App-Groups" {
			t.Errorf("client spelling %s arrived", k)
		}
	}
}

// TestIdentityHeaderNamesDistinctInEverySpelling: two identity headers
// whose names differ only in case or separators ("X_Forwarded_User" and
// X-Forwarded-User) are one variable to a CGI or FastCGI application
// (HTTP_X_FORWARDED_USER), which may read either: configuration refuses
// them, as it refuses two headers of the same name. (Before, Validate
// compared canonical MIME keys only, and a display name mapped to
// X_Forwarded_User reached the upstream beside the user name.)
func TestIdentityHeaderNamesDistinctInEverySpelling(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    HeaderConfig
		want string
	}{
		{"ExtraUnderscoreUser", HeaderConfig{Extra: map[string]string{"X_Forwarded_User": "display_name"}}, "headers.extra.X_Forwarded_User"},
		{"ExtraDottedPreferred", HeaderConfig{Extra: map[string]string{"X.Forwarded.Preferred.Username": "display_name"}}, "headers.extra.X.Forwarded.Preferred.Username"},
		{"ExtraNoSeparators", HeaderConfig{Extra: map[string]string{"XForwardedEmail": "display_name"}}, "headers.extra.XForwardedEmail"},
		{"DisplayNameAsUser", HeaderConfig{DisplayName: "X_Forwarded_User"}, "each identity header carries one field"},
		{"TwoExtras", HeaderConfig{Extra: map[string]string{"X-Dept": "department", "X_Dept": "display_name"}}, "headers.extra.X_Dept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Upstream: "http://app:8080", Headers: tc.h}.WithDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error with %q", err, tc.want)
			}
		})
	}
	ok := HeaderConfig{Extra: map[string]string{"X-Forwarded-Name": "display_name", "X-Dept": "department", "X-Department": "department"}}
	if err := (Config{Upstream: "http://app:8080", Headers: ok}).WithDefaults().Validate(); err != nil {
		t.Errorf("Validate(distinct names) = %v", err)
	}
}
