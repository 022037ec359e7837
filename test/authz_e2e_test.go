package test

import (
	"net/http"
	"strings"
	"testing"

	"gatehouse/proxy"
)

// TestAuthorizationRules: ordered rules decide before proxying; the first
// match wins, public rules cannot be widened and restrictive rules cannot
// be escaped by spelling the path differently.
func TestAuthorizationRules(t *testing.T) {
	rules := []proxy.Rule{
		{Path: "/static/", Allow: proxy.AllowPublic},
		{Path: "/admin/", Require: &proxy.Requirement{AnyOf: &proxy.Conditions{Groups: []string{"Admins"}}}},
		{Methods: []string{"POST", "PUT", "DELETE"}, Path: "/reports/", Require: &proxy.Requirement{
			AllOf: &proxy.Conditions{Groups: []string{"staff"}, Attributes: map[string][]string{"employee_id": {"E1001", "E1002"}}}}},
		{Path: "/mail/", Require: &proxy.Requirement{AnyOf: &proxy.Conditions{Attributes: map[string][]string{"email": {"bob@example.com"}}}}},
		{Pattern: `^/internal(/|$)`, Allow: proxy.AllowDeny},
		{Path: "/", Allow: proxy.AllowAuthenticated},
	}
	h := newHarness(t, options{authorization: rules})
	aliceC := h.browser() // groups staff, admins; employee_id E1001
	readResp(t, h.login(aliceC, "/", alice))
	bob := person{nameID: "b0b-0002", uid: "bob", mail: "bob@example.com", display: "Bob", family: "Builder", employeeID: "E2000", groups: []string{"staff"}}
	bobC := h.browser()
	readResp(t, h.login(bobC, "/", bob))
	anon := h.browser()

	for _, tc := range []struct {
		name, who, method, path string
		want                    int
	}{
		{"PublicWithoutSession", "anon", "GET", "/static/app.css", 200},
		{"PublicCannotBeWidenedByDotSegments", "anon", "GET", "/static/../admin/users", 401},
		{"GroupAllowed", "alice", "GET", "/admin/users", 200},
		{"GroupRefused", "bob", "GET", "/admin/users", 403},
		{"GroupRefusedOtherCase", "bob", "GET", "/ADMIN/users", 403},
		{"GroupRefusedDotSegments", "bob", "GET", "/x/../admin/users", 403},
		{"BackslashRefusedAsAmbiguous", "bob", "GET", `/admin\users`, 400},
		{"NoSessionOnRequireRule", "anon", "GET", "/admin/users", 401},
		{"AllOfPasses", "alice", "POST", "/reports/7", 200},
		{"AllOfFailsOnAttribute", "bob", "POST", "/reports/7", 403},
		{"MethodNotInRuleFallsThrough", "bob", "GET", "/reports/7", 200},
		{"AttributeValue", "bob", "GET", "/mail/inbox", 200},
		{"AttributeValueRefused", "alice", "GET", "/mail/inbox", 403},
		{"DenyForEveryone", "alice", "GET", "/internal/metrics", 403},
		{"DenyWithoutSession", "anon", "GET", "/internal", 403},
		{"DenyPatternOtherCase", "alice", "GET", "/Internal/x", 403},
		{"CatchAllAuthenticated", "bob", "GET", "/home", 200},
		{"CatchAllNeedsSession", "anon", "GET", "/home", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := map[string]*http.Client{"alice": aliceC, "bob": bobC, "anon": anon}[tc.who]
			before := len(h.upstream.all())
			req, err := http.NewRequest(tc.method, h.base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/json") // API style: 401, not a redirect to the IdP
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s as %s: %d %s, want %d", tc.method, tc.path, tc.who, resp.StatusCode, body, tc.want)
			}
			reached := len(h.upstream.all()) > before
			if reached != (tc.want == 200) {
				t.Errorf("reached upstream = %v with status %d", reached, tc.want)
			}
			if tc.want == 403 && !strings.Contains(body, "error ID") {
				t.Errorf("403 without the access-denied page: %s", body)
			}
		})
	}
	var forbidden int
	for _, e := range h.logs.FilterMessage("request refused").All() {
		if e.ContextMap()["reason"] == "forbidden" {
			forbidden++
		}
	}
	if forbidden == 0 {
		t.Error("no refused request was logged with reason forbidden")
	}
}

func TestAuthorizationRulesValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule proxy.Rule
		want string
	}{
		{"NoEffect", proxy.Rule{Path: "/a/"}, "set allow"},
		{"BothEffects", proxy.Rule{Path: "/a/", Allow: "public", Require: &proxy.Requirement{AnyOf: &proxy.Conditions{Groups: []string{"g"}}}}, "not both"},
		{"UnknownAllow", proxy.Rule{Path: "/a/", Allow: "everyone"}, `"everyone" is not public`},
		{"PathAndPattern", proxy.Rule{Path: "/a/", Pattern: "^/a", Allow: "deny"}, "set path or pattern"},
		{"BadPattern", proxy.Rule{Pattern: "(", Allow: "deny"}, "pattern:"},
		{"RelativePath", proxy.Rule{Path: "a/", Allow: "deny"}, "absolute path"},
		{"ReservedPath", proxy.Rule{Path: "/.gatehouse/scim/", Allow: "public"}, "reserved prefix"},
		{"LowerMethod", proxy.Rule{Path: "/a/", Methods: []string{"get"}, Allow: "deny"}, "upper-case method"},
		{"EmptyRequirement", proxy.Rule{Path: "/a/", Require: &proxy.Requirement{}}, "set any_of or all_of"},
		{"EmptyConditions", proxy.Rule{Path: "/a/", Require: &proxy.Requirement{AllOf: &proxy.Conditions{}}}, "names no group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := proxy.Config{Upstream: "http://127.0.0.1:1", Authorization: []proxy.Rule{tc.rule}}.WithDefaults()
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), "authorization[0].") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want authorization[0]... %q", err, tc.want)
			}
		})
	}
}
