package proxy

import (
	"gatehouse/provision"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStripperRemovesEverySpelling(t *testing.T) {
	s := newStripper([]string{"X-Forwarded-User", "X-Forwarded-Email"}, []string{"X-Gatehouse-"}, nil)
	h := http.Header{
		"X-Forwarded-User":  {"a"},
		"x-forwarded-user":  {"b"},
		"X_Forwarded_User":  {"c"},
		"X-FORWARDED_EMAIL": {"d"},
		"X-Gatehouse-Role":  {"e"},
		"x_gatehouse_role":  {"f"},
		"X-Forwarded-Use":   {"kept"},
		"Accept":            {"kept"},
	}
	s.strip(h)
	want := http.Header{"X-Forwarded-Use": {"kept"}, "Accept": {"kept"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStripCookies(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"only ours", []string{"gatehouse=abc"}, nil},
		{"mixed", []string{"a=1; gatehouse=abc; b=2"}, []string{"a=1; b=2"}},
		{"login binding", []string{"gatehouse_login_AbCdEfGhIj=x; JSESSIONID=9"}, []string{"JSESSIONID=9"}},
		{"login slot, secure", []string{"__Host-gatehouse_login_2=x; JSESSIONID=9"}, []string{"JSESSIONID=9"}},
		{"logout state, secure", []string{"a=1; __Host-gatehouse_logout=x"}, []string{"a=1"}},
		{"logout state", []string{"gatehouse_logout=x; a=1"}, []string{"a=1"}},
		{"several lines", []string{"a=1", "gatehouse=x", "b=2"}, []string{"a=1; b=2"}},
		{"untouched", []string{"a=1;b=2"}, []string{"a=1;b=2"}},
		{"similar name kept", []string{"gatehouse2=x"}, []string{"gatehouse2=x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Cookie": tc.in}
			stripCookies(h, []string{"gatehouse"}, stateCookiePrefixes)
			if diff := cmp.Diff(tc.want, h.Values("Cookie")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReserved(t *testing.T) {
	for path, want := range map[string]bool{
		"/.gatehouse/":            true,
		"/.gatehouse":             true,
		"/.GateHouse/x":           true,
		"/x/../.gatehouse/acs":    true,
		"/.gatehouse;a=b/x":       true,
		`/\.gatehouse/x`:          true,
		"//.gatehouse/x":          true,
		"/.gatehousex":            false,
		"/app/.gatehouse":         false,
		"/":                       false,
		"/static/.gatehouse-logo": false,
	} {
		if got := reserved(path, DefaultPrefix); got != want {
			t.Errorf("reserved(%q) = %v, want %v", path, got, want)
		}
	}
	// The Kelvin sign lower-cases to an ASCII "k": the quick ASCII
	// pre-check must not let it past.
	if !reserved("/.\u212Ait/x", "/.kit/") {
		t.Error("a Unicode spelling of the prefix was not reserved")
	}
}

func TestHeaderSetSkipsAmbiguousGroups(t *testing.T) {
	hs := newHeaderSet(Config{}.WithDefaults().Headers)
	got := hs.build(userWith("alice", []string{"staff", "admins,root", "ops"}))
	for _, h := range got {
		if h.name == "X-Forwarded-Groups" && h.value != "staff,ops" {
			t.Errorf("groups header = %q; a group holding the separator must be left out", h.value)
		}
		if strings.ContainsAny(h.value, "\r\n") {
			t.Errorf("header %s carries a line break", h.name)
		}
	}
}

// FuzzNormalizeHeaderName: the normal form is idempotent, no longer than
// the name, holds only lower-case letters and digits, and two names that
// differ only in case or in which non-alphanumeric characters separate
// their words normalise alike (and are stripped alike).
func FuzzNormalizeHeaderName(f *testing.F) {
	for _, s := range []string{"X-Forwarded-User", "x_forwarded_user", "X.FORWARDED~USER", "", "_", "Ä-ü", "a!#$%&'*+.^`|~b"} {
		f.Add(s, byte('.'))
	}
	f.Fuzz(func(t *testing.T, name string, sep byte) {
		n := NormalizeHeaderName(name)
		if NormalizeHeaderName(n) != n || len(n) > len(name) || strings.IndexFunc(n, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
		}) >= 0 {
			t.Fatalf("NormalizeHeaderName(%q) = %q", name, n)
		}
		if sep >= 'a' && sep <= 'z' || sep >= 'A' && sep <= 'Z' || sep >= '0' && sep <= '9' {
			sep = '_'
		}
		variant := strings.ToUpper(strings.Map(func(r rune) rune {
			if r == '-' || r == '_' || r == '.' {
				return rune(sep)
			}
			return r
		}, name))
		if asciiOnly(name) && sep < 0x80 && NormalizeHeaderName(variant) != NormalizeHeaderName(strings.ToUpper(name)) {
			t.Fatalf("%q and %q normalise differently", name, variant)
		}
		s := newStripper([]string{name}, nil, nil)
		h := http.Header{variant: {"x"}}
		if asciiOnly(name) && sep < 0x80 {
			s.strip(h)
			if len(h) != 0 {
				t.Fatalf("variant %q of %q survived stripping", variant, name)
			}
		}
	})
}

func userWith(name string, groups []string) provision.User {
	return provision.User{UserName: name, Groups: groups, Active: true}
}

func BenchmarkStrip(b *testing.B) {
	s := stripperFor(Config{}.WithDefaults().Headers, []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups"})
	base := http.Header{"Accept": {"*/*"}, "User-Agent": {"x"}, "Accept-Encoding": {"gzip"}, "Cookie": {"a=1"},
		"Accept-Language": {"en"}, "X-Forwarded-User": {"spoof"}, "Referer": {"/"}}
	b.ReportAllocs()
	for b.Loop() {
		h := base.Clone()
		s.strip(h)
	}
}

// TestProxyTrustHeadersStripped: headers that proxies set and
// applications believe are removed in every spelling; headers.strip adds
// names and prefixes; headers.keep keeps one the application needs, but
// never an identity header or a forwarding header gatehouse sets.
func TestProxyTrustHeadersStripped(t *testing.T) {
	// The display name travels under another name here, so the default
	// one is stripped only by the built-in list.
	hc := Config{Headers: HeaderConfig{Strip: []string{"X-Corp-Auth-*", "X-Legacy-Login"}, Keep: []string{"X-Real-IP", "X-Forwarded-User"},
		DisplayName: "X-App-Display"}}.WithDefaults().Headers
	s := stripperFor(hc, newHeaderSet(hc).names())
	h := http.Header{}
	spoofed := []string{
		"X-Original-URL", "x_original_url", "X-REWRITE-URL", "Remote-User", "Remote_User", "X-Remote-User",
		"Forwarded", "X-Forwarded-Server", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Client-IP", "True-Client-IP",
		"CF-Connecting-IP", "X-Cluster-Client-IP", "X-Original-Host", "X-Host", "X-HTTP-Host-Override",
		"X-Original-Forwarded-For", "Client-IP", "X-ProxyUser-Ip", "Auth-User", "Remote_Addr", "X-Forwarded-For",
		"X_Forwarded_For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-HTTP-Method-Override", "X-HTTP-Method",
		"X-Method-Override", "HTTP2-Settings", "X-Auth-Request-User", "X-Ms-Client-Principal-Name", "Oidc_Claim_Email",
		"X-Forwarded-Client-Cert", "Cf-Access-Authenticated-User-Email", "X-Goog-Authenticated-User-Email",
		"X-Webauth-User", "X-Corp-Auth-Role", "x_legacy_login", "X-Forwarded-User", "X-Gatehouse-Anything",
		"X-Forwarded-Display-Name", "X.Forwarded.Display.Name",
		// Variants of the user headers (red-team finding: X-Forwarded-User-Id
		// reached the upstream).
		"X-Forwarded-User-Id", "X-Forwarded-Username", "X_Forwarded_UserId", "X-Forwarded-Emails",
		"X-Forwarded-Groups-Raw", "X-Forwarded-Preferred-Name", "X-Remote-User-Email", "X-Authenticated-User-Id",
		"X-Webauth-Groups", "X-Auth-User-Id", "Remote-User-Name",
		// And their kin (second red-team pass).
		"X-Remote-Email", "X-Forwarded-Roles", "X-Forwarded-Role", "X-Forwarded-Login", "X-Forwarded-Uid", "X-Forwarded-Sub",
		"X-Forwarded-Id-Token", "X-Original-User", "X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info",
	}
	for _, n := range spoofed {
		h[n] = []string{"spoofed"}
	}
	h["X-Real-Ip"] = []string{"kept"}
	h["Accept"] = []string{"kept"}
	s.strip(h)
	want := http.Header{"X-Real-Ip": {"kept"}, "Accept": {"kept"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHeaderListsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    HeaderConfig
		want string
	}{
		{"KeepIdentityHeader", HeaderConfig{Keep: []string{"x-forwarded-user"}}, "identity header"},
		{"KeepForwardedFor", HeaderConfig{Keep: []string{"X-Forwarded-For"}}, "always replaced"},
		{"KeepMethodOverride", HeaderConfig{Keep: []string{"X-HTTP-Method-Override"}}, "always replaced"},
		{"KeepUnknown", HeaderConfig{Keep: []string{"X-Nothing"}}, "not stripped by default"},
		{"StripBadName", HeaderConfig{Strip: []string{"Bad Name"}}, "not a header name"},
		{"StripLoneStar", HeaderConfig{Strip: []string{"*"}}, "not a header name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Upstream: "http://127.0.0.1:1", Headers: tc.h}.WithDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	ok := Config{Upstream: "http://127.0.0.1:1", Headers: HeaderConfig{Keep: []string{"X-Real-IP", "x-auth-request-user"}, Strip: []string{"X-A", "X-B-*"}}}
	if err := ok.WithDefaults().Validate(); err != nil {
		t.Error(err)
	}
}

// TestSharedCachesNeverStoreCookieResponses: a response that carries
// gatehouse's cookie becomes private whatever the upstream said.
func TestSharedCachesNeverStoreCookieResponses(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"Absent", "", "private"},
		{"Public", "public, max-age=3600", "max-age=3600, private"},
		{"SharedMaxAge", "max-age=60, s-maxage=3600", "max-age=60, private"},
		{"FieldLimitedPrivate", `private="Set-Cookie", max-age=60`, "private, max-age=60"},
		{"NoStoreKept", "no-store", "no-store, private"},
		{"AlreadyPrivate", "private, no-cache", "private, no-cache"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Surrogate-Control": {"max-age=3600"}, "Cdn-Cache-Control": {"max-age=3600"}}
			if tc.in != "" {
				h.Set("Cache-Control", tc.in)
			}
			privateCache(h)
			if got := h.Get("Cache-Control"); got != tc.want {
				t.Errorf("Cache-Control %q, want %q", got, tc.want)
			}
			if h.Get("Surrogate-Control") != "" || h.Get("CDN-Cache-Control") != "" {
				t.Errorf("CDN cache controls kept: %v", h)
			}
		})
	}
}

// TestStripperFoldsEverySeparator: CGI, FastCGI and SCGI gateways
// (lighttpd, and others) turn every character of a header name that is
// not a letter or a digit into "_", so X.Forwarded.User reaches the
// application as HTTP_X_FORWARDED_USER. Every such spelling of an
// identity header, of the strip prefix and of a proxy-trust header is
// removed.
func TestStripperFoldsEverySeparator(t *testing.T) {
	s := stripperFor(Config{}.WithDefaults().Headers, []string{"X-Forwarded-User", "X-Forwarded-Groups"})
	for _, sep := range strings.Split(".~+!*'|^`#$%&_-", "") {
		for _, name := range []string{"X-Forwarded-User", "X-Forwarded-Groups", "X-Gatehouse-Role", "X-Real-IP", "X-Original-URL", "Remote-User", "Shib-Identity"} {
			spelled := strings.ReplaceAll(name, "-", sep)
			t.Run(spelled, func(t *testing.T) {
				h := http.Header{spelled: {"alice"}, "Accept": {"kept"}}
				s.strip(h)
				if _, ok := h[spelled]; ok || len(h) != 1 {
					t.Errorf("%s survived stripping: %v", spelled, h)
				}
			})
		}
	}
	mixed := http.Header{"X.Forwarded_User": {"a"}, "x~forwarded-GROUPS": {"b"}, "X-Forwarded.Use": {"kept"}}
	s.strip(mixed)
	if diff := cmp.Diff(http.Header{"X-Forwarded.Use": {"kept"}}, mixed); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestKeptHeaderOnlyInPlainSpelling: headers.keep forwards the header a
// front proxy sets, spelled with letters, digits and "-"; a client's
// X.Real.IP or X_Real_IP, which a CGI gateway would read as the same
// variable (and in no defined order), is still removed.
func TestKeptHeaderOnlyInPlainSpelling(t *testing.T) {
	hc := Config{}.WithDefaults().Headers
	hc.Keep = []string{"X-Real-IP"}
	s := stripperFor(hc, []string{"X-Forwarded-User"})
	h := http.Header{"X-Real-Ip": {"10.0.0.1"}, "X.Real.Ip": {"6.6.6.6"}, "X_Real_Ip": {"6.6.6.6"}, "x~real~ip": {"6.6.6.6"},
		"XRealIP": {"6.6.6.6"}, "X--Real--IP": {"6.6.6.6"}, "-X-Real-IP-": {"6.6.6.6"}}
	s.strip(h)
	if diff := cmp.Diff(http.Header{"X-Real-Ip": {"10.0.0.1"}}, h); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestStripperIgnoresHowSeparatorsAreRepeated: a name spelled with
// doubled, leading, trailing or no separators is the same name (a reader
// that collapses or drops separators sees the real header).
func TestStripperIgnoresHowSeparatorsAreRepeated(t *testing.T) {
	hc := Config{}.WithDefaults().Headers
	s := stripperFor(hc, newHeaderSet(hc).names())
	spoofed := []string{"X--Forwarded--User", "X__Forwarded__Groups", "X._Forwarded._Email", "-X-Forwarded-User",
		"X-Forwarded-User-", "XForwardedUser", "X--HTTP--Method--Override", "xgatehouse-anything", "Remote--User", "X-REAL--IP"}
	h := http.Header{"Accept": {"kept"}, "X-Forwarded-Use": {"kept"}}
	for _, n := range spoofed {
		h[n] = []string{"spoofed"}
	}
	s.strip(h)
	if diff := cmp.Diff(http.Header{"Accept": {"kept"}, "X-Forwarded-Use": {"kept"}}, h); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
