package proxy

import (
	"gatehouse/provision"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStripperRemovesEverySpelling(t *testing.T) {
	s := newStripper([]string{"X-Forwarded-User", "X-Forwarded-Email"}, "X-Gatehouse-")
	h := http.Header{
		"X-Forwarded-User":  {"a"},
		"x-forwarded-user":  {"b"},
		"X_Forwarded_User":  {"c"},
		"X-FORWARDED_EMAIL": {"d"},
		"X-Gatehouse-Role":  {"e"},
		"x_gatehouse_role":  {"f"},
		"X-Forwarded-Users": {"kept"},
		"Accept":            {"kept"},
	}
	s.strip(h)
	want := http.Header{"X-Forwarded-Users": {"kept"}, "Accept": {"kept"}}
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
		{"several lines", []string{"a=1", "gatehouse=x", "b=2"}, []string{"a=1; b=2"}},
		{"untouched", []string{"a=1;b=2"}, []string{"a=1;b=2"}},
		{"similar name kept", []string{"gatehouse2=x"}, []string{"gatehouse2=x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Cookie": tc.in}
			stripCookies(h, []string{"gatehouse"}, []string{loginCookiePrefix})
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

// FuzzNormalizeHeaderName: the normal form is idempotent, keeps the
// length, has no upper case and no underscore, and two names that differ
// only in case or "_"/"-" normalise alike.
func FuzzNormalizeHeaderName(f *testing.F) {
	for _, s := range []string{"X-Forwarded-User", "x_forwarded_user", "X_FORWARDED-USER", "", "_", "Ä-ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := NormalizeHeaderName(name)
		if NormalizeHeaderName(n) != n || len(n) != len(name) || strings.ContainsAny(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") {
			t.Fatalf("NormalizeHeaderName(%q) = %q", name, n)
		}
		variant := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if strings.ToValidUTF8(name, "") == name && NormalizeHeaderName(variant) != NormalizeHeaderName(strings.ToUpper(name)) {
			t.Fatalf("%q and %q normalise differently", name, variant)
		}
		s := newStripper([]string{name}, "")
		h := http.Header{variant: {"x"}}
		if asciiOnly(name) {
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
	s := newStripper([]string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups"}, "X-Gatehouse-")
	base := http.Header{"Accept": {"*/*"}, "User-Agent": {"x"}, "Accept-Encoding": {"gzip"}, "Cookie": {"a=1"},
		"Accept-Language": {"en"}, "X-Forwarded-User": {"spoof"}, "Referer": {"/"}}
	b.ReportAllocs()
	for b.Loop() {
		h := base.Clone()
		s.strip(h)
	}
}
