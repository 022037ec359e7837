package test

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"gatehouse/proxy"
)

// spelled sends method and a request target (its escapes as given) as an
// API client and returns the status and whether the upstream got it.
func spelled(t *testing.T, h *harness, c *http.Client, method, target string, header http.Header) (int, *http.Request) {
	t.Helper()
	before := len(h.upstream.all())
	u, _ := url.Parse(h.base)
	tu, err := url.ParseRequestURI(target) // keeps RawPath: the client sends it as given
	if err != nil {
		t.Fatal(err)
	}
	tu.Scheme, tu.Host = u.Scheme, u.Host
	req := &http.Request{Method: method, URL: tu, Host: u.Host, Header: http.Header{"Accept": {"application/json"}}}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	all := h.upstream.all()
	if len(all) > before {
		return resp.StatusCode, all[len(all)-1]
	}
	return resp.StatusCode, nil
}

// TestPatternRuleSpellings: a pattern rule is judged on the canonical
// path, case-insensitively, and that path is what the upstream gets.
func TestPatternRuleSpellings(t *testing.T) {
	h := newHarness(t, options{authorization: []proxy.Rule{
		{Pattern: "^/Reports/", Allow: proxy.AllowDeny},
		{Path: "/", Allow: proxy.AllowAuthenticated},
	}})
	c := h.browser()
	readResp(t, h.login(c, "/", alice))
	for _, tc := range []struct {
		name, target string
		want         int
		forwarded    string
	}{
		{"AsWritten", "/Reports/q", 403, ""},
		{"LowerCase", "/reports/q", 403, ""},
		{"UpperCase", "/REPORTS/q", 403, ""},
		{"DotSegments", "/x/../Reports/q", 403, ""},
		{"DoubleSlash", "//Reports/q", 403, ""},
		{"EncodedLetter", "/%72eports/q", 403, ""},
		{"EncodedDotDot", "/x/%2E%2e/reports/q", 403, ""},
		{"BareDirectory", "/reports", 403, ""},
		{"DoubleEncoded", "/%2572eports/q", 400, ""},
		{"EncodedSlash", "/x%2F..%2Freports/q", 400, ""},
		{"OtherPathForwardedCanonical", "/a//b/./../Home?x=1", 200, "/a/Home?x=1"},
		{"EscapesKeptForwarded", "/a%3Bb/%7Euser/c%2cd", 200, "/a%3Bb/~user/c%2Cd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := spelled(t, h, c, "GET", tc.target, nil)
			if code != tc.want {
				t.Fatalf("GET %s: %d, want %d", tc.target, code, tc.want)
			}
			if (got != nil) != (tc.want == 200) {
				t.Fatalf("GET %s: reached upstream = %v", tc.target, got != nil)
			}
			if got != nil && got.RequestURI != tc.forwarded {
				t.Errorf("GET %s: upstream got %q, want %q", tc.target, got.RequestURI, tc.forwarded)
			}
		})
	}
}

// TestMethodAndPathSpellings: HEAD is judged as GET, methods are
// canonical, POST and _method are judged as what they may become, and the
// spellings frameworks route to a restricted handler are covered.
func TestMethodAndPathSpellings(t *testing.T) {
	h := newHarness(t, options{authorization: []proxy.Rule{
		{Methods: []string{"GET"}, Path: "/export/", Allow: proxy.AllowDeny},
		{Methods: []string{"DELETE"}, Path: "/docs/", Require: &proxy.Requirement{AnyOf: &proxy.Conditions{Groups: []string{"root"}}}},
		{Path: "/admin", Require: &proxy.Requirement{AnyOf: &proxy.Conditions{Groups: []string{"root"}}}},
		{Path: "/api/", Require: &proxy.Requirement{AnyOf: &proxy.Conditions{Groups: []string{"root"}}}},
		{Pattern: "^/billing$", Allow: proxy.AllowDeny},
		{Path: "/", Allow: proxy.AllowAuthenticated},
	}})
	c := h.browser() // alice: staff, admins; not root
	readResp(t, h.login(c, "/", alice))
	for _, tc := range []struct {
		name, method, target string
		want                 int
	}{
		{"GetDenied", "GET", "/export/all", 403},
		{"HEADJudgedAsGET", "HEAD", "/export/all", 403},
		{"PutNotCovered", "PUT", "/export/all", 200},
		{"LowerCaseMethod", "get", "/home", 400},
		{"LowerCaseMethodOnDeny", "head", "/export/all", 400},
		{"DeleteNeedsRoot", "DELETE", "/docs/1", 403},
		{"PostMayBecomeDelete", "POST", "/docs/1", 403},
		{"MethodParam", "GET", "/docs/1?_method=delete", 403},
		{"MethodParamPHPSpelling", "GET", "/docs/1?.method=DELETE", 403},
		{"MethodParamEncodedLetter", "GET", "/docs/1?_%6dethod=DELETE", 403},
		{"MethodParamAllEncoded", "GET", "/docs/1?%5F%6D%65%74%68%6F%64=DELETE", 403},
		{"MethodParamDoubleEncoded", "GET", "/docs/1?_%256dethod=DELETE", 400},
		{"MethodParamFullWidth", "GET", "/docs/1?_%EF%BD%8Dethod=DELETE", 400},
		{"GetDocs", "GET", "/docs/1", 200},
		{"Admin", "GET", "/admin", 403},
		{"AdminFormatSuffix", "GET", "/admin.json", 403},
		{"AdminSlash", "GET", "/admin/", 403},
		{"AdminTrailingSpace", "GET", "/admin%20", 400},
		{"AdminTrailingDot", "GET", "/admin.", 400},
		{"AdminDoubleEncoded", "GET", "/%2561dmin", 400},
		{"AdminDotlessI", "GET", "/adm%C4%B1n", 400},
		{"AdminFullWidth", "GET", "/%EF%BD%81dmin", 400},
		{"AdminNUL", "GET", "/admin%00", 400},
		{"AdminParams", "GET", "/admin;x=1", 403},
		{"AdminDotDotParams", "GET", "/home/..;/admin", 400},
		{"AdminTrailingDotBeforeParams", "GET", "/admin.;/x", 400},
		{"AdminTrailingSpaceBeforeParams", "GET", "/admin%20;/x", 400},
		{"AdminTrailingDotsBeforeParams", "GET", "/admin..;x/y", 400},
		{"BillingTrailingSpaceBeforeParams", "GET", "/billing%20;", 400},
		{"AdminEmptyStreamName", "GET", "/admin:/x", 400},
		{"AdminDotDotStream", "GET", "/home/..:x/admin", 400},
		{"AdminScriptPathInfo", "GET", "/admin.php/x", 403},
		{"AdminWSGIPathInfo", "GET", "/app.wsgi/admin/x", 403},
		{"AdminEncodedQuestionMark", "GET", "/admin%3F", 400},
		{"AdminEncodedHash", "GET", "/admin%23x", 400},
		{"AdminScriptParamsPathInfo", "GET", "/admin.php;v=1/x", 403},
		{"AdminScriptUnderScript", "GET", "/index.php/admin.php/x", 403},
		{"AdminPathInfo", "GET", "/index.php/admin", 403},
		{"AdminUpper", "GET", "/ADMIN", 403},
		{"AdministratorNotAdmin", "GET", "/administrator", 200},
		{"ApiBare", "GET", "/api", 403},
		{"BillingSlash", "GET", "/billing/", 403},
		{"BillingSuffix", "GET", "/billing.pdf", 403},
		{"Home", "GET", "/home", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := spelled(t, h, c, tc.method, tc.target, nil)
			if code != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.target, code, tc.want)
			}
			if (got != nil) != (tc.want == 200) {
				t.Fatalf("%s %s: reached upstream = %v", tc.method, tc.target, got != nil)
			}
		})
	}
	_, got := spelled(t, h, c, "POST", "/home", http.Header{"X-Http-Method-Override": {"DELETE"}, "X_HTTP_Method": {"DELETE"}})
	if got == nil || got.Header.Get("X-Http-Method-Override") != "" || len(got.Header.Values("X_HTTP_Method")) != 0 {
		t.Errorf("method override headers reached the upstream: %v", got)
	}
}

// TestGrantsNotWidenedBySpelling: public paths and public rules stay as
// narrow as written.
func TestGrantsNotWidenedBySpelling(t *testing.T) {
	h := newHarness(t, options{publicPaths: []string{"/static/", "/robots.txt"}, authorization: []proxy.Rule{
		{Path: "/help/", Allow: proxy.AllowPublic},
		{Path: "/admin/", Allow: proxy.AllowDeny},
		{Path: "/", Allow: proxy.AllowAuthenticated},
	}})
	anon := h.browser()
	for _, tc := range []struct {
		name, target string
		want         int
	}{
		{"Static", "/static/app.min.js", 200},
		{"Robots", "/robots.txt", 200},
		{"Help", "/help/faq", 200},
		{"StaticUpper", "/STATIC/app.js", 401},
		{"StaticDotDot", "/static/../home", 401},
		{"StaticEncodedDotDot", "/static/%2e%2e/home", 401},
		{"StaticDotDotIntoDeny", "/static/../admin/x", 403},
		{"StaticParamsDotDot", "/static/..;/home", 400},
		{"StaticPathInfo", "/static/x.php/home", 401},
		{"StaticBackslash", `/static\..\home`, 400},
		{"HelpBare", "/help", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := spelled(t, h, anon, "GET", tc.target, nil); code != tc.want {
				t.Fatalf("GET %s: %d, want %d", tc.target, code, tc.want)
			}
		})
	}
}

// TestIdPQualifiedRules: a rule with idps admits sessions from the listed
// IdPs only, whatever groups another IdP asserts.
func TestIdPQualifiedRules(t *testing.T) {
	h := newHarness(t, options{partner: true, authorization: []proxy.Rule{
		{Path: "/admin/", IdPs: []string{"corp"}, Require: &proxy.Requirement{AnyOf: &proxy.Conditions{Groups: []string{"admins"}}}},
		{Path: "/", Allow: proxy.AllowAuthenticated},
	}})
	corp, partner := h.browser(), h.browser()
	loginWith(t, h, corp, "corp", alice)
	impostor := alice
	impostor.nameID, impostor.uid, impostor.mail = "p-0001", "mallory", "mallory@partner.example"
	loginWith(t, h, partner, "partner", impostor) // also asserts "admins"
	if code, _ := spelled(t, h, corp, "GET", "/admin/x", nil); code != 200 {
		t.Errorf("corp admin: %d, want 200", code)
	}
	if code, _ := spelled(t, h, partner, "GET", "/admin/x", nil); code != 403 {
		t.Errorf("partner's admins: %d, want 403", code)
	}
	if code, _ := spelled(t, h, partner, "GET", "/home", nil); code != 200 {
		t.Errorf("partner elsewhere: %d, want 200", code)
	}
}

// loginWith signs p in through the named IdP from the chooser.
func loginWith(t *testing.T, h *harness, c *http.Client, idp string, p person) {
	t.Helper()
	code, page := h.get(c, "/home", http.Header{"Accept": {"text/html"}})
	link := regexp.MustCompile(`href="([^"]*idp=` + idp + `[^"]*)"`).FindStringSubmatch(page)
	if code != http.StatusOK || link == nil {
		t.Fatalf("chooser: %d, no %s link in:\n%s", code, idp, page)
	}
	req, _ := http.NewRequest(http.MethodGet, h.base+strings.ReplaceAll(link[1], "&amp;", "&"), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	raw, _ := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
	xmlReq, _ := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xmlReq); err != nil {
		t.Fatalf("no AuthnRequest from %s: %v", loc, err)
	}
	s := h.spec(p, doc.Root().SelectAttrValue("ID", ""))
	key := h.idp
	if idp == "partner" {
		s.issuer, key = partnerEntityID, loadSigner(t, "other")
	}
	r, a := respond(s)
	resp = h.post(c, serialize(assemble(r, sign(t, a, key))), loc.Query().Get("RelayState"))
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s login: %d %s", idp, resp.StatusCode, body)
	}
}

// TestReservedPrefixEverySpelling: a path that any reading puts under the
// reserved prefix (path info after a script, a stream name, a format
// suffix, a short name, a NUL) is answered by gatehouse, with
// authorization rules and without.
func TestReservedPrefixEverySpelling(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []proxy.Rule
	}{
		{"NoRules", nil},
		{"Rules", []proxy.Rule{{Path: "/", Allow: proxy.AllowAuthenticated}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{authorization: tc.rules})
			c := h.browser()
			readResp(t, h.login(c, "/", alice))
			for _, target := range []string{
				"/index.php/.gatehouse/y", "/x.PHP;a/.gatehouse/saml/acs", "/.gatehouse:/y", "/.gatehouse::$INDEX_ALLOCATION/y",
				"/.gatehouse.json", "/.gatehouse.php/y", "/.GATEHO~1/y", "/GATEHO~1/y", "/.gatehouse%00/y", "/.gatehouse%00",
				"/.gate%09house/y", "/.gatehouse%3F/y", "/x/..:y/.gatehouse/z",
			} {
				code, got := spelled(t, h, c, "GET", target, nil)
				if got != nil || code == http.StatusOK {
					t.Errorf("GET %s: %d, reached upstream as %v", target, code, got != nil)
				}
			}
			if code, got := spelled(t, h, c, "GET", "/app/.gatehouse/y", nil); code != http.StatusOK || got == nil {
				t.Errorf("GET /app/.gatehouse/y: %d, want 200 from the upstream", code)
			}
		})
	}
}
