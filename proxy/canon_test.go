package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestCanonicalPath(t *testing.T) {
	for _, tc := range []struct {
		name, in, path, escaped string
	}{
		{"Root", "/", "/", "/"},
		{"Empty", "", "/", "/"},
		{"Plain", "/reports/q", "/reports/q", "/reports/q"},
		{"CaseKept", "/Reports/Q", "/Reports/Q", "/Reports/Q"},
		{"TrailingSlashKept", "/admin/", "/admin/", "/admin/"},
		{"RepeatedSlashes", "//Reports//q", "/Reports/q", "/Reports/q"},
		{"DotSegments", "/x/../Reports/./q", "/Reports/q", "/Reports/q"},
		{"DotDotAboveRoot", "/../../admin", "/admin", "/admin"},
		{"EncodedDots", "/x/%2e%2E/admin", "/admin", "/admin"},
		{"EncodedUnreservedDecoded", "/%61dmin/%7Eme", "/admin/~me", "/admin/~me"},
		{"DirectoryAfterDotDot", "/a/b/..", "/a/", "/a/"},
		{"ReservedEscapeKept", "/a%3bb/c%2Cd", "/a;b/c,d", "/a%3Bb/c%2Cd"},
		{"SubDelimsRaw", "/a;b=c/d,e", "/a;b=c/d,e", "/a;b=c/d,e"},
		{"SpaceInside", "/my%20docs/x", "/my docs/x", "/my%20docs/x"},
		{"LoneLiteralPercent", "/100%25/off", "/100%/off", "/100%25/off"},
		{"UnicodeKept", "/%C3%A9t%C3%A9/%E6%97%A5", "/\u00e9t\u00e9/\u65e5", "/%C3%A9t%C3%A9/%E6%97%A5"},
		{"LeadingTilde", "/~bob/", "/~bob/", "/~bob/"},
		{"ColonInside", "/v1/items:batchGet", "/v1/items:batchGet", "/v1/items:batchGet"},
		{"ParamsAfterDottedName", "/a.b;v=1/c", "/a.b;v=1/c", "/a.b;v=1/c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := canonicalPath(tc.in)
			if err != nil {
				t.Fatalf("canonicalPath(%q): %v", tc.in, err)
			}
			if c.path != tc.path || c.escaped != tc.escaped {
				t.Errorf("canonicalPath(%q) = %q (%q), want %q (%q)", tc.in, c.path, c.escaped, tc.path, tc.escaped)
			}
		})
	}
}

// TestAmbiguousPathsRefused: each spelling some server behind gatehouse
// reads as another path has no canonical form.
func TestAmbiguousPathsRefused(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"DoubleEncodedLetter", "/%2561dmin"},
		{"DoubleEncodedSlash", "/a%252fb"},
		{"DoubleEncodedSplit", "/a%25%32%66b"},
		{"IISUnicodeEscape", "/a%25u0061dmin"},
		{"EncodedSlash", "/admin%2fusers"},
		{"EncodedSlashUpper", "/admin%2Fusers"},
		{"EncodedBackslash", "/admin%5cusers"},
		{"RawBackslash", `/admin\users`},
		{"NUL", "/admin%00.json"},
		{"EncodedQuestionMark", "/secret%3F"},
		{"EncodedQuestionMarkQuery", "/secret%3fa=b"},
		{"EncodedHash", "/secret%23x"},
		{"ControlChar", "/admin%0d%0a"},
		{"DEL", "/admin%7f"},
		{"TrailingSpace", "/admin%20"},
		{"TrailingSpaceInside", "/admin%20/users"},
		{"TrailingDot", "/admin."},
		{"TrailingDotInside", "/admin./users"},
		{"TripleDot", "/.../admin"},
		{"DotDotWithParams", "/public/..;/admin"},
		{"DotWithParams", "/.;x/admin"},
		{"TrailingDotBeforeParams", "/admin.;/x"},
		{"TrailingSpaceBeforeParams", "/admin%20;/x"},
		{"TrailingDotsBeforeParams", "/admin..;x/y"},
		{"TrailingSpaceBeforeParamsLast", "/secret%20;"},
		{"TrailingDotBeforeEncodedParams", "/internal.%3B/x"},
		{"TrailingDotBeforeStream", "/admin.:x/y"},
		{"DotDotWithStream", "/x/..:y/admin"},
		{"EmptyStreamName", "/admin:/x"},
		{"EmptyStreamNameBeforeParams", "/admin:;x/y"},
		{"NTFSStream", "/admin::$DATA"},
		{"NTFSStreamEncoded", "/admin%3A%3A%24DATA"},
		{"ShortName", "/ADMINI~1/x"},
		{"DotlessI", "/adm%C4%B1n"},
		{"CapitalIWithDot", "/%C4%B0ndex"},
		{"LongS", "/%C5%BFecret"},
		{"KelvinSign", "/%E2%84%AAey"},
		{"FullWidthA", "/%EF%BC%A1dmin"},
		{"FullWidthSolidus", "/admin%EF%BC%8Fusers"},
		{"OneDotLeader", "/%E2%80%A4%E2%80%A4/admin"},
		{"Ligature", "/%EF%AC%81le"},
		{"SharpSFoldsToSS", "/stra%C3%9Fe"},
		{"ZeroWidthSpace", "/ad%E2%80%8Bmin"},
		{"SoftHyphen", "/ad%C2%ADmin"},
		{"BidiOverride", "/%E2%80%AEnimda"},
		{"NoBreakSpace", "/admin%C2%A0"},
		{"OverlongSlash", "/a%C0%AFb"},
		{"OverlongDot", "/%C0%AE%C0%AE/admin"},
		{"InvalidUTF8", "/a%FFb"},
		{"Surrogate", "/a%ED%A0%80b"},
		{"NotNFC", "/cafe%CC%81"},
		{"MalformedEscape", "/a%zz"},
		{"Relative", "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := canonicalPath(tc.in)
			if !errors.Is(err, errAmbiguous) {
				t.Errorf("canonicalPath(%q) = %q, %v; want an ambiguous-path error", tc.in, c.path, err)
			}
		})
	}
}

// TestReservedAnySpelling: nothing under the prefix is proxied however
// it is spelled, escaped or not.
func TestReservedAnySpelling(t *testing.T) {
	for path, want := range map[string]bool{
		"/.gatehouse/login":                true,
		"/.gatehouse":                      true,
		"/%2egatehouse/login":              true,
		"/%252egatehouse/login":            true,
		"/%2Egatehouse%2flogin":            true,
		"/.GateHouse/x":                    true,
		"/x/%2e%2e/.gatehouse/acs":         true,
		"/.gatehouse./x":                   true,
		"/.gatehouse%20/x":                 true,
		"/.gatehouse;a=b/x":                true,
		`/\.gatehouse/x`:                   true,
		"/x%5c..%5c.gatehouse/x":           true,
		"//.gatehouse/x":                   true,
		"/%EF%BC%8Egatehouse/x":            true, // full-width full stop
		"/.gatehouse%C2%A0/x":              true, // NFKC: a space, then trimmed
		"/index.php/.gatehouse/y":          true, // path info after a script
		"/x.PHP;a=b/.gatehouse/y":          true,
		"/a.php/b.aspx/.gatehouse/y":       true,
		"/.gatehouse:/y":                   true, // NTFS: the default stream
		"/.gatehouse::$INDEX_ALLOCATION/y": true,
		"/.gatehouse.json":                 true, // format suffix
		"/.gatehouse.php/y":                true,
		"/.GATEHO~1/y":                     true, // 8.3 short name
		"/GATEHO~1/y":                      true,
		"/gateho~12.jso":                   true,
		"/.gatehouse%00/y":                 true, // C strings end at NUL
		"/.gatehouse%00":                   true,
		"/.gate%09house/y":                 true, // URL parsers drop tabs and newlines
		"/.gatehouse%0d%0a/y":              true,
		"/.gatehouse%3f/y":                 true, // decoded before the query is split off
		"/.gatehouse%23x":                  true,
		"/x.html/.gatehouse/y":             false, // not a script
		"/static/GATEHO~1/y":               false,
		"/foo~1/y":                         false,
		"/.gatehouse-logo.png":             false,
		"/.gatehousekeeping/y":             false,
		"/.gatehousex":                     false,
		"/app/.gatehouse":                  false,
		"/":                                false,
		"/static/.gatehouse-logo":          false,
		"/static/%2egatehouse-logo":        false,
	} {
		if got := reserved(path, DefaultPrefix); got != want {
			t.Errorf("reserved(%q) = %v, want %v", path, got, want)
		}
	}
}

// testProxy is a Proxy with just what authorize needs.
func testProxy(t *testing.T, public []string, rules ...Rule) *Proxy {
	t.Helper()
	cfg := Config{Upstream: "http://127.0.0.1:1", PublicPaths: public, Authorization: rules}.WithDefaults()
	for _, e := range cfg.Problems() {
		if strings.Contains(e.Error(), "authorization") || strings.Contains(e.Error(), "public_paths") {
			t.Fatalf("config: %v", e)
		}
	}
	return &Proxy{cfg: cfg, rules: compileRules(rules), public: public, pages: NewPages(zap.NewNop())}
}

// outcome is what authorize decides, in words: "400", "deny", "public",
// or "session" followed by the indexes of the rules a session must pass.
func outcome(t *testing.T, p *Proxy, method, target string) (string, *http.Request) {
	t.Helper()
	r := httptest.NewRequest(method, "http://gatehouse.test"+target, nil)
	r.Method = method // NewRequest keeps it as given
	w := httptest.NewRecorder()
	out, j, ok := p.authorize(w, r)
	switch {
	case !ok:
		if w.Code != http.StatusBadRequest {
			t.Fatalf("%s %s refused with %d", method, target, w.Code)
		}
		return "400", out
	case j.deny != nil:
		return "deny", out
	case j.public:
		return "public", out
	}
	var idx []int
	for _, rl := range j.rules {
		idx = append(idx, rl.index)
	}
	slices.Sort(idx)
	return strings.TrimSpace("session " + strings.Trim(fmt.Sprint(idx), "[]")), out
}

var (
	admins = &Requirement{AnyOf: &Conditions{Groups: []string{"admins"}}}
	staff  = &Requirement{AnyOf: &Conditions{Groups: []string{"staff"}}}
)

// TestPatternRulesCannotBeBypassed: a pattern is judged on the canonical
// path, case-insensitively, and that path is what is forwarded.
func TestPatternRulesCannotBeBypassed(t *testing.T) {
	p := testProxy(t, nil, Rule{Pattern: "^/Reports/", Allow: AllowDeny}, Rule{Path: "/", Allow: AllowAuthenticated})
	for _, tc := range []struct{ name, target, want, forwarded string }{
		{"AsWritten", "/Reports/q", "deny", "/Reports/q"},
		{"LowerCase", "/reports/q", "deny", "/reports/q"},
		{"UpperCase", "/REPORTS/q", "deny", "/REPORTS/q"},
		{"DotSegments", "/x/../Reports/q", "deny", "/Reports/q"},
		{"DoubleSlash", "//Reports/q", "deny", "/Reports/q"},
		{"EncodedLetter", "/%52eports/q", "deny", "/Reports/q"},
		{"EncodedDotSegment", "/x/%2e%2e/reports/q", "deny", "/reports/q"},
		{"DoubleEncoded", "/%2552eports/q", "400", ""},
		{"EncodedSlash", "/x%2f..%2fReports/q", "400", ""},
		{"Params", "/Reports;a=b/q", "deny", "/Reports;a=b/q"},
		{"BareDirectory", "/reports", "deny", "/reports"},
		{"Other", "/home", "session 1", "/home"},
		{"OtherNormalised", "/a//b/../home", "session 1", "/a/home"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, out := outcome(t, p, "GET", tc.target)
			if got != tc.want {
				t.Errorf("GET %s: %s, want %s", tc.target, got, tc.want)
			}
			if tc.forwarded != "" && out.URL.EscapedPath() != tc.forwarded {
				t.Errorf("GET %s forwards %q, want %q", tc.target, out.URL.EscapedPath(), tc.forwarded)
			}
		})
	}
}

// TestRuleCoversBareAndSuffixedPath: a restricting rule covers the spellings
// frameworks route to the same handler; a grant never widens.
func TestRuleCoversBareAndSuffixedPath(t *testing.T) {
	p := testProxy(t, []string{"/static/", "/robots.txt"},
		Rule{Path: "/admin", Require: admins},
		Rule{Path: "/api/", Require: staff},
		Rule{Pattern: "^/billing$", Allow: AllowDeny},
		Rule{Path: "/help/", Allow: AllowPublic},
		Rule{Path: "/login.php", Allow: AllowPublic},
		Rule{Path: "/", Allow: AllowAuthenticated},
	)
	for _, tc := range []struct{ name, target, want string }{
		{"Admin", "/admin", "session 0"},
		{"AdminBelow", "/admin/users", "session 0"},
		{"AdminSlash", "/admin/", "session 0"},
		{"AdminFormatSuffix", "/admin.json", "session 0 5"},
		{"AdminFormatSuffixSlash", "/admin.json/", "session 0 5"},
		{"AdminFormatSegment", "/admin/.json", "session 0"},
		{"RootDotFile", "/.env", "session 5"},
		{"AdminUpper", "/ADMIN", "session 0 5"},
		{"AdminCaseFormat", "/Admin.XML", "session 0 5"},
		{"AdminParams", "/admin;jsessionid=1", "session 0 5"},
		{"AdminParamsMiddle", "/x;y/../admin/users", "session 0"},
		{"AdminPathInfo", "/index.php/admin/users", "session 0 5"},
		{"AdminPathInfoParams", "/app.aspx;x/admin", "session 0 5"},
		{"AdminPathInfoWSGI", "/app.wsgi/admin/x", "session 0 5"},
		{"AdminPathInfoLua", "/x.lua/admin", "session 0 5"},
		{"AdminPathInfoPSGI", "/x.psgi/admin/x", "session 0 5"},
		{"AdminPathInfoWCF", "/svc.svc/admin", "session 0 5"},
		{"BillingPathInfoSCGI", "/x.scgi/billing", "deny"},
		{"AdminTrailingSpace", "/admin%20", "400"},
		{"AdminDoubleEncoded", "/%2561dmin", "400"},
		{"AdminDotlessI", "/adm%C4%B1n", "400"},
		{"AdministratorIsNotAdmin", "/administrator", "session 5"},
		{"ApiBare", "/api", "session 1 5"},
		{"ApiBelow", "/api/v1", "session 1"},
		{"ApiSuffix", "/api.json", "session 1 5"},
		{"BillingSlash", "/billing/", "deny"},
		{"BillingSuffix", "/billing.csv", "deny"},
		{"BillingBelowIsNot", "/billing/x", "session 5"},
		{"StaticPublic", "/static/app.css", "public"},
		{"StaticMinified", "/static/app.min.js", "public"},
		{"StaticDirectory", "/static/", "public"},
		{"StaticUpperIsNotPublic", "/STATIC/app.css", "session 5"},
		{"StaticDotSegments", "/static/../admin", "session 0"},
		{"StaticEncodedDotSegments", "/static/%2e%2e/admin", "session 0"},
		{"StaticParamsDotDot", "/static/..;/admin", "400"},
		{"StaticPathInfoIsNotPublic", "/static/x.php/admin", "session 0"},
		{"StaticFormatOfAdmin", "/static/../admin.css", "session 0 5"},
		{"RobotsPublic", "/robots.txt", "public"},
		{"HelpPublic", "/help/faq", "public"},
		{"HelpBareIsNotPublic", "/help", "session 5"},
		{"HelpUpperIsNotPublic", "/HELP/faq", "session 5"},
		{"LoginScriptPublic", "/login.php", "public"},
		{"LoginScriptPathInfoToAdmin", "/login.php/admin", "session 0"},
		{"LoginScriptPathInfoHome", "/login.php/home", "session 5"},
		{"ManyScriptSegments", "/a.php/b.php/c.php/d.php/admin", "400"},
		{"ThreeScriptSegments", "/a.php/b.php/c.php/admin", "session 0 5"},
		{"AdminScriptPathInfo", "/admin.php/x", "session 0 5"},
		{"AdminScriptPathInfoParams", "/admin.php;v=1/x", "session 0 5"},
		{"AdminScriptUnderScript", "/index.php/admin.php/x", "session 0 5"},
		{"AdminScriptNamedAdmin", "/admin.aspx/", "session 0 5"},
		{"AdminTrailingDotParams", "/admin.;/x", "400"},
		{"AdminTrailingSpaceParams", "/admin%20;/x", "400"},
		{"AdminEmptyStream", "/admin:/x", "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := outcome(t, p, "GET", tc.target); got != tc.want {
				t.Errorf("GET %s: %s, want %s", tc.target, got, tc.want)
			}
		})
	}
}

// TestHEADJudgedAsGET: a GET-only rule covers HEAD; methods are
// canonical; POST and _method are judged as the methods they may become.
func TestHEADJudgedAsGET(t *testing.T) {
	p := testProxy(t, nil,
		Rule{Methods: []string{"GET"}, Path: "/secret/", Allow: AllowDeny},
		Rule{Methods: []string{"DELETE"}, Path: "/reports/", Require: admins},
		Rule{Path: "/", Allow: AllowAuthenticated},
	)
	for _, tc := range []struct{ name, method, target, want string }{
		{"GetDenied", "GET", "/secret/x", "deny"},
		{"HeadDenied", "HEAD", "/secret/x", "deny"},
		{"PutNotCovered", "PUT", "/secret/x", "session 2"},
		{"LowerCaseMethod", "get", "/secret/x", "400"},
		{"MixedCaseMethod", "Delete", "/reports/1", "400"},
		{"DeleteNeedsAdmins", "DELETE", "/reports/1", "session 1"},
		{"GetReports", "GET", "/reports/1", "session 2"},
		{"PostMayBecomeDelete", "POST", "/reports/1", "session 1 2"},
		{"PostMayBecomeGet", "POST", "/secret/x", "deny"},
		{"MethodParamOnGet", "GET", "/reports/1?_method=delete", "session 1 2"},
		{"MethodParamPHPSpelling", "GET", "/reports/1?.method=DELETE", "session 1 2"},
		{"MethodParamEncoded", "GET", "/reports/1?%5Fmethod=DELETE", "session 1 2"},
		{"MethodParamEncodedLetter", "GET", "/reports/1?_%6dethod=DELETE", "session 1 2"},
		{"MethodParamAllEncoded", "GET", "/reports/1?%5F%6D%45%74%68%6F%64=DELETE", "session 1 2"},
		{"MethodParamUpperCase", "GET", "/reports/1?_METHOD=DELETE", "session 1 2"},
		{"MethodParamSemicolonSeparated", "GET", "/reports/1?x=1;_method=DELETE", "session 1 2"},
		{"MethodParamPHPLeadingSpace", "GET", "/reports/1?+_method=DELETE", "session 1 2"},
		{"MethodParamDoubleEncoded", "GET", "/reports/1?_%256dethod=DELETE", "400"},
		{"MethodParamDoubleEncodedUnderscore", "GET", "/reports/1?%255Fmethod=DELETE", "400"},
		{"MethodParamFullWidth", "GET", "/reports/1?_%EF%BD%8Dethod=DELETE", "400"},
		{"MethodParamNULTruncated", "GET", "/reports/1?_method%00x=DELETE", "400"},
		{"MethodParamNotAMethod", "GET", "/reports/1?_method=DE%20LETE", "400"},
		{"OtherParam", "GET", "/reports/1?method=DELETE", "session 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := outcome(t, p, tc.method, tc.target); got != tc.want {
				t.Errorf("%s %s: %s, want %s", tc.method, tc.target, got, tc.want)
			}
		})
	}
}

// TestGrantsNotWidened: a public rule or public path is public only when
// every reading of the path is.
func TestGrantsNotWidened(t *testing.T) {
	p := testProxy(t, []string{"/assets/"},
		Rule{Pattern: "^/pub/[a-z]+$", Allow: AllowPublic},
		Rule{Path: "/", Require: staff},
	)
	for _, tc := range []struct{ name, target, want string }{
		{"Public", "/pub/page", "public"},
		{"UpperCaseIsNot", "/pub/PAGE", "session 1"},
		{"TrailingSlashIsPrivate", "/pub/page/", "session 1"},
		{"ParamsHideSegment", "/pub;x/page", "session 1"},
		{"PathInfo", "/assets/a.php/admin", "session 1"},
		{"DotSegmentsOut", "/assets/../admin", "session 1"},
		{"AssetsUpperIsNot", "/Assets/x", "session 1"},
		{"Assets", "/assets/x.js", "public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := outcome(t, p, "GET", tc.target); got != tc.want {
				t.Errorf("GET %s: %s, want %s", tc.target, got, tc.want)
			}
		})
	}
}

// TestNoRulesForwardsAsSent: without rules or public paths the path
// decides nothing but the reserved prefix, and is forwarded as sent.
func TestNoRulesForwardsAsSent(t *testing.T) {
	p := testProxy(t, nil)
	got, out := outcome(t, p, "GET", "/a//b/%2561")
	if got != "session" || out.URL.EscapedPath() != "/a//b/%2561" {
		t.Errorf("got %s forwarding %q", got, out.URL.EscapedPath())
	}
	if got, _ := outcome(t, p, "get", "/x"); got != "400" {
		t.Errorf("lower-case method: %s, want 400", got)
	}
}

// TestRuleValidateRefusesUnmatchable: check refuses a path or pattern no
// canonical request path can match.
func TestRuleValidateRefusesUnmatchable(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule Rule
		want string
	}{
		{"PathDotSegment", Rule{Path: "/x/../admin/", Allow: AllowDeny}, "not in canonical form"},
		{"PathDoubleSlash", Rule{Path: "/a//b/", Allow: AllowDeny}, "not in canonical form"},
		{"PathEncodedSlash", Rule{Path: "/a%2fb/", Allow: AllowDeny}, "can never match"},
		{"PathEscape", Rule{Path: "/a%20b/", Allow: AllowDeny}, "can never match"},
		{"PathTrailingSpace", Rule{Path: "/admin ", Allow: AllowDeny}, "can never match"},
		{"PathTrailingDot", Rule{Path: "/admin.", Allow: AllowDeny}, "can never match"},
		{"PathBackslash", Rule{Path: `/a\b`, Allow: AllowDeny}, "can never match"},
		{"PathFullWidth", Rule{Path: "/\uff41dmin", Allow: AllowDeny}, "can never match"},
		{"PathRelative", Rule{Path: "admin/", Allow: AllowDeny}, "absolute path"},
		{"PatternDotDot", Rule{Pattern: `^/x/\.\./admin`, Allow: AllowDeny}, "dot segments"},
		{"PatternDoubleSlash", Rule{Pattern: `^//admin`, Allow: AllowDeny}, "repeated slashes"},
		{"PatternEncodedSlash", Rule{Pattern: `^/a%2[fF]b`, Allow: AllowDeny}, "decoded"},
		{"PatternEncodedSpace", Rule{Pattern: `^/my%20docs/`, Allow: AllowDeny}, "decoded"},
		{"PatternTrailingSpace", Rule{Pattern: `^/admin $`, Allow: AllowDeny}, "dot or a space"},
		{"PatternTrailingDotSegment", Rule{Pattern: `^/admin\./`, Allow: AllowDeny}, "end in a dot"},
		{"PatternDotBeforeParams", Rule{Pattern: `^/admin\.;`, Allow: AllowDeny}, "nor before parameters"},
		{"PatternSpaceBeforeParams", Rule{Pattern: `^/admin ;x`, Allow: AllowDeny}, "nor before parameters"},
		{"PatternEmptyStream", Rule{Pattern: `^/admin:/`, Allow: AllowDeny}, "empty stream names"},
		{"PatternEmptyStreamAtEnd", Rule{Pattern: `^/admin:$`, Allow: AllowDeny}, "empty stream names"},
		{"PatternCaseSensitive", Rule{Pattern: `^/(?-i:Admin)/`, Allow: AllowDeny}, "upper from lower"},
		{"PatternCaseSensitiveFlag", Rule{Pattern: `(?-i)^/Admin/`, Allow: AllowDeny}, "upper from lower"},
		{"PatternUpperOnlyClass", Rule{Pattern: `^/(?-i)[A-Z]+/`, Allow: AllowDeny}, "upper from lower"},
		{"PatternKelvin", Rule{Pattern: "^/\u212aey", Allow: AllowDeny}, "reads as ASCII"},
		{"PatternBackslash", Rule{Pattern: `^/a\\b`, Allow: AllowDeny}, "backslashes"},
		{"IdPsOnDeny", Rule{Path: "/a/", Allow: AllowDeny, IdPs: []string{"corp"}}, "only on authenticated or require"},
		{"MethodLowerCase", Rule{Path: "/a/", Methods: []string{"get"}, Allow: AllowDeny}, "upper-case method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rule.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
	for _, ok := range []Rule{
		{Path: "/Reports/", Allow: AllowDeny},
		{Path: "/my docs/", Allow: AllowDeny},
		{Path: "/100%/", Allow: AllowDeny},
		{Path: "/caf\u00e9/", Allow: AllowDeny},
		{Pattern: `^/Reports/`, Allow: AllowDeny},
		{Pattern: `(?i)^/reports/[0-9]+\.json$`, Allow: AllowDeny},
		{Pattern: `^/[a-z]+/edit$`, Allow: AllowDeny},
		{Pattern: `^/a\.b/`, Allow: AllowDeny},
		{Pattern: `^/(admin|ops)(/|$)`, Allow: AllowDeny},
		{Path: "/a/", Allow: AllowAuthenticated, IdPs: []string{"corp"}},
		{Path: "/a/", Methods: []string{"VERSION-CONTROL"}, Allow: AllowDeny},
	} {
		if err := ok.validate(); err != nil {
			t.Errorf("validate(%+v) = %v, want nil", ok, err)
		}
	}
	cfg := Config{Authorization: []Rule{{Path: "/a/", Require: admins, IdPs: []string{"corp", "nope"}}}}
	if err := cfg.CheckIdPNames([]string{"corp"}); err == nil || !strings.Contains(err.Error(), `authorization[0].idps: "nope"`) {
		t.Errorf("CheckIdPNames = %v", err)
	}
}

// FuzzCanonicalPath: the canonicaliser never panics; its output is
// canonical (idempotent, no dot segments, no "//"); and the reserved
// prefix is detected alike on a path and on its canonical form.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "//a/../b/./c/", "/%2e%2E/.gatehouse/x", "/a%2fb", "/a;b/..;/c", "/%C4%B1",
		"/x/%25", "/a%25%32%66", "/.gatehouse", `/\.gatehouse`, "/a./b", "/%EF%BC%A1", "/admin.json", "/~a~1",
		"/index.php/.gatehouse/y", "/.GATEHO~1/y", "/.gatehouse%00/y", "/x/..:y/.gatehouse/z", "/a%3f/../.gatehouse/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := canonicalPath(in)
		for _, d := range decodings(in) {
			for m := readMode(0); m <= readAll; m++ {
				if segs := looseSegments(d, m); slices.Contains(segs, "") || slices.Contains(segs, "..") {
					t.Fatalf("looseSegments(%q, %d) = %q keeps an empty or dot segment", d, m, segs)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, errAmbiguous) {
				t.Fatalf("canonicalPath(%q): unexpected error %v", in, err)
			}
			return
		}
		again, err := canonicalPath(c.escaped)
		if err != nil || again != c {
			t.Fatalf("canonicalPath(%q) = %+v, not idempotent: %+v, %v", in, c, again, err)
		}
		if strings.Contains(c.path, "//") || !strings.HasPrefix(c.path, "/") {
			t.Fatalf("canonicalPath(%q) = %q", in, c.path)
		}
		for _, seg := range strings.Split(c.path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("canonicalPath(%q) = %q keeps a dot segment", in, c.path)
			}
		}
		if looseUnescape(c.escaped) != c.path {
			t.Fatalf("canonicalPath(%q): %q does not decode to %q", in, c.escaped, c.path)
		}
		for _, prefix := range []string{DefaultPrefix, "/.Kit/", "/.kit/gh/"} {
			// What is proxied is forwarded in canonical form: no reading
			// of that may fall under the prefix.
			if !reserved(in, prefix) && reserved(c.escaped, prefix) {
				t.Fatalf("reserved(%q) = false but its canonical form %q is reserved", in, c.escaped)
			}
		}
		for _, q := range pathReadings(c.path) {
			looseReadings(q)
		}
	})
}

// BenchmarkAuthorize is the per-request cost of reading and judging a
// path under a typical rule set.
func BenchmarkAuthorize(b *testing.B) {
	rules := []Rule{
		{Path: "/static/", Allow: AllowPublic},
		{Path: "/admin/", Require: admins},
		{Methods: []string{"POST", "PUT", "DELETE"}, Path: "/reports/", Require: staff},
		{Pattern: `^/internal(/|$)`, Allow: AllowDeny},
		{Path: "/", Allow: AllowAuthenticated},
	}
	cfg := Config{Upstream: "http://127.0.0.1:1", PublicPaths: []string{"/favicon.ico"}, Authorization: rules}.WithDefaults()
	p := &Proxy{cfg: cfg, rules: compileRules(rules), public: cfg.PublicPaths, pages: NewPages(zap.NewNop())}
	for _, target := range []string{"/app/orders/12345", "/static/js/app.min.js", "/Reports/2024/q3.pdf"} {
		b.Run(strings.ReplaceAll(target, "/", "_"), func(b *testing.B) {
			r := httptest.NewRequest("GET", "http://gatehouse.test"+target, nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				p.authorize(w, r)
			}
		})
	}
}

// TestReadmeRuleTable: the README's table of what a rule covers holds.
func TestReadmeRuleTable(t *testing.T) {
	p := testProxy(t, nil,
		Rule{Path: "/static/", Allow: AllowPublic},
		Rule{Pattern: "^/internal(/|$)", Allow: AllowDeny},
		Rule{Path: "/admin/", IdPs: []string{"corp"}, Require: admins},
		Rule{Path: "/payroll/", Methods: []string{"POST", "PUT", "DELETE"}, Require: staff},
		Rule{Path: "/", Allow: AllowAuthenticated},
	)
	for _, tc := range []struct{ method, target, want string }{
		{"GET", "/static/app.min.js", "public"},
		{"GET", "/STATIC/app.js", "session 4"},
		{"GET", "/static/../payroll/", "session 4"},
		{"GET", "/admin/users", "session 2"},
		{"GET", "/ADMIN/users", "session 2 4"},
		{"GET", "/x/../admin/users", "session 2"},
		{"GET", "//admin/users", "session 2"},
		{"GET", "/admin", "session 2 4"},
		{"GET", "/admin.json", "session 2 4"},
		{"GET", "/admin;jsessionid=1", "session 2 4"},
		{"GET", "/index.php/admin/x", "session 2 4"},
		{"GET", "/admin.php/x", "session 2 4"},
		{"GET", "/administrator", "session 4"},
		{"GET", "/internal", "deny"},
		{"GET", "/internal/", "deny"},
		{"GET", "/Internal.json", "deny"},
		{"HEAD", "/payroll/x", "session 4"},
		{"POST", "/payroll/x", "session 3"},
		{"GET", "/payroll/x?_%6dethod=DELETE", "session 3 4"},
		{"GET", "/admin%20", "400"},
		{"GET", "/admin.", "400"},
		{"GET", "/%2561dmin", "400"},
		{"GET", "/adm%C4%B1n", "400"},
		{"GET", "/admin%2fx", "400"},
		{"GET", "/admin.;/x", "400"},
		{"GET", "/admin%20;/x", "400"},
		{"GET", "/admin:/x", "400"},
	} {
		if got, _ := outcome(t, p, tc.method, tc.target); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.target, got, tc.want)
		}
	}
}
