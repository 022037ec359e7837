package proxy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"gatehouse/provision"
	"gatehouse/session"
)

// TestRuleAdmits: a require rule's groups are compared under
// provision.NormalizeName (case, width and accents folded, as the stores
// fold them for uniqueness), never by substring or list syntax, and a
// look-alike from another script is another group; attribute values are
// compared exactly; idps limits the IdP of the session.
func TestRuleAdmits(t *testing.T) {
	anyAdmins := Rule{Path: "/a/", Require: &Requirement{AnyOf: &Conditions{Groups: []string{"admins"}}}}
	anyAdminsUpper := Rule{Path: "/a/", Require: &Requirement{AnyOf: &Conditions{Groups: []string{"Admins"}}}}
	allAdminsStaff := Rule{Path: "/a/", Require: &Requirement{AllOf: &Conditions{Groups: []string{"admins", "Staff"}}}}
	both := Rule{Path: "/a/", Require: &Requirement{AnyOf: &Conditions{Groups: []string{"ops", "admins"}}, AllOf: &Conditions{Groups: []string{"mfa"}}}}
	byEmail := Rule{Path: "/a/", Require: &Requirement{AnyOf: &Conditions{Attributes: map[string][]string{"email": {"alice@example.test"}}}}}
	groupOrDept := Rule{Path: "/a/", Require: &Requirement{AnyOf: &Conditions{Groups: []string{"admins"}, Attributes: map[string][]string{"department": {"R&D"}}}}}
	allDept := Rule{Path: "/a/", Require: &Requirement{AllOf: &Conditions{Groups: []string{"staff"}, Attributes: map[string][]string{"department": {"R&D", "Ops"}}}}}
	corpAdmins := Rule{Path: "/a/", IdPs: []string{"corp"}, Require: &Requirement{AnyOf: &Conditions{Groups: []string{"admins"}}}}
	corpOnly := Rule{Path: "/a/", IdPs: []string{"corp", "corp2"}, Allow: AllowAuthenticated}
	anyone := Rule{Path: "/a/", Allow: AllowAuthenticated}
	groups := func(g ...string) provision.User { return provision.User{UserName: "u", Groups: g, Active: true} }
	for _, tc := range []struct {
		name string
		rule Rule
		user provision.User
		idp  string
		want bool
	}{
		{"AnyOfMember", anyAdmins, groups("staff", "admins"), "corp", true},
		{"AnyOfUpperCaseGroup", anyAdmins, groups("ADMINS"), "corp", true},
		{"AnyOfRuleSpelledUpper", anyAdminsUpper, groups("admins"), "corp", true},
		{"AnyOfFullWidthFolds", anyAdmins, groups("\uff41\uff44\uff4d\uff49\uff4e\uff53"), "corp", true},
		{"AnyOfAccentFolds", anyAdmins, groups("\u00e0dmins"), "corp", true},
		{"AnyOfCyrillicLookalikeIsAnother", anyAdmins, groups("\u0430dmins"), "corp", false},
		{"AnyOfGreekLookalikeIsAnother", anyAdmins, groups("adm\u03b9ns"), "corp", false},
		{"AnyOfPrefixIsNot", anyAdmins, groups("admin"), "corp", false},
		{"AnyOfLongerIsNot", anyAdmins, groups("admins-readonly"), "corp", false},
		{"AnyOfListInOneName", anyAdmins, groups("staff,admins"), "corp", false},
		{"AnyOfQuoted", anyAdmins, groups(`"admins"`), "corp", false},
		{"AnyOfNoGroups", anyAdmins, groups(), "corp", false},
		{"AnyOfEmptyGroupName", anyAdmins, groups(""), "corp", false},
		{"AllOfBoth", allAdminsStaff, groups("staff", "admins", "ops"), "corp", true},
		{"AllOfFoldedCase", allAdminsStaff, groups("ADMINS", "staff"), "corp", true},
		{"AllOfOneMissing", allAdminsStaff, groups("admins"), "corp", false},
		{"AllOfOneInsideAnother", allAdminsStaff, groups("admins staff"), "corp", false},
		{"AnyAndAllNeedBoth", both, groups("admins"), "corp", false},
		{"AnyAndAllBothHeld", both, groups("mfa", "ops"), "corp", true},
		{"AnyAndAllOnlyAll", both, groups("mfa"), "corp", false},
		{"AttributeExact", byEmail, provision.User{Email: "alice@example.test"}, "corp", true},
		{"AttributeCaseDiffers", byEmail, provision.User{Email: "Alice@example.test"}, "corp", false},
		{"AttributePadded", byEmail, provision.User{Email: "alice@example.test "}, "corp", false},
		{"AttributeEmpty", byEmail, provision.User{}, "corp", false},
		{"GroupOrAttributeByGroup", groupOrDept, groups("admins"), "corp", true},
		{"GroupOrAttributeByAttribute", groupOrDept, provision.User{Extra: map[string]string{"department": "R&D"}}, "corp", true},
		{"GroupOrAttributeNeither", groupOrDept, provision.User{Extra: map[string]string{"department": "r&d"}}, "corp", false},
		{"AllOfAttributeOneOfValues", allDept, provision.User{Groups: []string{"staff"}, Extra: map[string]string{"department": "Ops"}}, "corp", true},
		{"AllOfAttributeMissing", allDept, groups("staff"), "corp", false},
		{"IdPListed", corpAdmins, groups("admins"), "corp", true},
		{"IdPNotListed", corpAdmins, groups("admins"), "partner", false},
		{"IdPCaseDiffers", corpAdmins, groups("admins"), "Corp", false},
		{"IdPEmpty", corpAdmins, groups("admins"), "", false},
		{"IdPOnAuthenticatedListed", corpOnly, groups(), "corp2", true},
		{"IdPOnAuthenticatedNotListed", corpOnly, groups("admins"), "partner", false},
		{"AuthenticatedAnyone", anyone, groups(), "partner", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.rule.validate(); err != nil {
				t.Fatalf("rule: %v", err)
			}
			rl := compileRules([]Rule{tc.rule})[0]
			if got := rl.admits(&tc.user, tc.idp); got != tc.want {
				t.Errorf("admits(%q, idp %q) = %v, want %v", tc.user.Groups, tc.idp, got, tc.want)
			}
		})
	}
}

// TestJudgementRefusalAndAuthnContext: every rule a request reaches must
// admit the session, the first that does not is named; the accepted
// authentication context classes are those every reached rule allows.
func TestJudgementRefusalAndAuthnContext(t *testing.T) {
	const mfa, pwd, cert = "urn:mfa", "urn:pwd", "urn:cert"
	p := testProxy(t, nil,
		Rule{Path: "/admin/", Require: admins, AuthnContext: []string{mfa, cert}},
		Rule{Path: "/", Require: staff, AuthnContext: []string{pwd, mfa}},
	)
	// "/ADMIN/x" reaches both: rule 1 as sent, then rule 0
	// case-insensitively; they are checked in that order.
	_, j, ok := p.authorize(httptest.NewRecorder(), mustRequest(t, "GET", "/ADMIN/x"))
	if !ok || len(j.rules) != 2 {
		t.Fatalf("rules reached: %d, want 2", len(j.rules))
	}
	for _, tc := range []struct {
		name   string
		groups []string
		want   int // index of the refusing rule, -1 for none
	}{
		{"Both", []string{"admins", "staff"}, -1},
		{"AdminOnly", []string{"admins"}, 1},
		{"StaffOnly", []string{"staff"}, 0},
		{"Neither", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := j.refusal(&provision.User{Groups: tc.groups}, "corp")
			switch {
			case tc.want < 0 && rl != nil:
				t.Errorf("refused by rule %d", rl.index)
			case tc.want >= 0 && (rl == nil || rl.index != tc.want):
				t.Errorf("refusal = %v, want rule %d", rl, tc.want)
			}
		})
	}
	accepted, rl := j.authnContext()
	if rl == nil || rl.index != 1 || !slices.Equal(accepted, []string{mfa}) {
		t.Errorf("authnContext = %q (rule %v), want [%s], first named by rule 1", accepted, rl, mfa)
	}
}

func mustRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "https://gatehouse.test"+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRuleSpellingTricks adds to canon_test.go's tables the spellings of
// a restricted path that mix encodings, cases and separators: each is
// judged as the path it reads as, or refused when servers read it
// differently; a grant is never reached by a trick.
func TestRuleSpellingTricks(t *testing.T) {
	p := testProxy(t, nil,
		Rule{Path: "/admin/", Allow: AllowDeny},
		Rule{Path: "/ops", Require: admins},
		Rule{Pattern: "^/internal(/|$)", Allow: AllowDeny},
		Rule{Path: "/static/", Allow: AllowPublic},
		Rule{Path: "/", Allow: AllowAuthenticated},
	)
	for _, tc := range []struct{ name, target, want, forwarded string }{
		// Dot segments, however encoded.
		{"EncodedDotsMixedCase", "/x/%2E%2e/admin/y", "deny", "/admin/y"},
		{"HalfEncodedDotsLeft", "/x/.%2e/admin/y", "deny", "/admin/y"},
		{"HalfEncodedDotsRight", "/x/%2e./admin/y", "deny", "/admin/y"},
		{"EncodedSingleDot", "/%2e/admin/y", "deny", "/admin/y"},
		{"EncodedDotsAboveRoot", "/%2e%2e/%2E%2E/admin/y", "deny", "/admin/y"},
		{"DotsOutOfPublic", "/static/%2E%2E/admin/y", "deny", "/admin/y"},
		{"DotsOutOfPublicToOps", "/static/../ops", "session 1", "/ops"},
		{"DoubleEncodedDots", "/static/%252e%252e/admin/y", "400", ""},
		{"OverlongDots", "/static/%C0%AE%C0%AE/admin/y", "400", ""},
		{"FullWidthDots", "/static/%EF%BC%8E%EF%BC%8E/admin/y", "400", ""},
		{"SmallFullStops", "/static/%EF%B9%92%EF%B9%92/admin/y", "400", ""},
		// Slashes.
		{"RepeatedSlashes", "///admin//y", "deny", "/admin/y"},
		{"SlashDotSlash", "/./admin/./y", "deny", "/admin/y"},
		{"EncodedSlashLower", "/static%2f..%2fadmin/y", "400", ""},
		{"EncodedSlashUpper", "/static/..%2Fadmin/y", "400", ""},
		{"EncodedSlashAfterDots", "/static/%2e%2e%2fadmin/y", "400", ""},
		{"EncodedBackslash", "/static/..%5Cadmin/y", "400", ""},
		{"DoubleEncodedSlash", "/static%252f..%252fadmin/y", "400", ""},
		// ";" parameters.
		{"ParamsOnRestricted", "/admin;x=1/y", "deny", "/admin;x=1/y"},
		{"EmptyParams", "/admin;/y", "deny", "/admin;/y"},
		{"EncodedSemicolon", "/admin%3Bx/y", "deny", "/admin%3Bx/y"},
		{"ParamsThenDots", "/static;x/../admin/y", "deny", "/admin/y"},
		{"ParamsHidePublicDir", "/static;/app.css", "session 4", "/static;/app.css"},
		{"ParamsOnOps", "/ops;v=2", "session 1 4", "/ops;v=2"},
		// Case and encoded letters.
		{"MixedCase", "/AdMiN/y", "deny", "/AdMiN/y"},
		{"EncodedUpperLetters", "/%41%44%4D%49%4E/y", "deny", "/ADMIN/y"},
		{"EncodedLowerHex", "/%61%64%6d%69%6e/y", "deny", "/admin/y"},
		{"PatternMixedCase", "/INTERNAL", "deny", "/INTERNAL"},
		{"PatternEncodedLetter", "/%49nternal/y", "deny", "/Internal/y"},
		{"OpsUpper", "/OPS/y", "session 1 4", "/OPS/y"},
		{"PublicUpperIsNot", "/Static/app.css", "session 4", "/Static/app.css"},
		{"PublicEncodedLetter", "/%73tatic/app.css", "public", "/static/app.css"},
		// Trailing dots and spaces (Windows drops them).
		{"TrailingDots", "/admin.../y", "400", ""},
		{"EncodedTrailingDot", "/admin%2e/y", "400", ""},
		{"EncodedTrailingDotLast", "/ops%2E", "400", ""},
		{"TrailingSpaceDot", "/ops%20%2e", "400", ""},
		{"TrailingDotWhole", "/ops.", "400", ""},
		{"TrailingOneDotLeader", "/ops%E2%80%A4", "400", ""},
		{"TrailingIdeographicSpace", "/ops%E3%80%80", "400", ""},
		// Unicode that reads as ASCII is refused; another script is
		// another path.
		{"FullWidthLetter", "/%EF%BD%81dmin/y", "400", ""},
		{"MathematicalBold", "/%F0%9D%90%9Admin/y", "400", ""},
		{"CircledLetter", "/%E2%93%90dmin/y", "400", ""},
		{"FeminineOrdinal", "/%C2%AAdmin/y", "400", ""},
		{"CombiningAccentNotNFC", "/a%CC%81dmin/y", "400", ""},
		{"ZeroWidthJoiner", "/ad%E2%80%8Dmin/y", "400", ""},
		{"VariationSelector", "/admin%EF%B8%8F/y", "400", ""},
		{"TagCharacter", "/admin%F3%A0%80%81/y", "400", ""},
		{"FullWidthPatternLetter", "/%EF%BD%89nternal", "400", ""},
		{"DotlessIInPattern", "/%C4%B1nternal", "400", ""},
		{"CyrillicLookalike", "/%D0%B0dmin/y", "session 4", "/%D0%B0dmin/y"},
		{"GreekLookalikeInOps", "/%CE%BFps", "session 4", "/%CE%BFps"},
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

// TestRuleMethodTricks: methods are judged as sent, upper case only;
// HEAD as GET too (so a GET-only grant does not make HEAD public: every
// reading must be granted); a POST, and a "_method" parameter, as what
// they may become.
func TestRuleMethodTricks(t *testing.T) {
	p := testProxy(t, nil,
		Rule{Methods: []string{"GET"}, Path: "/feed/", Allow: AllowPublic},
		Rule{Methods: []string{"DELETE", "PUT"}, Path: "/items/", Require: admins},
		Rule{Path: "/", Allow: AllowAuthenticated},
	)
	for _, tc := range []struct{ name, method, target, want string }{
		{"GetPublic", "GET", "/feed/x", "public"},
		{"HeadNotWidenedByGetGrant", "HEAD", "/feed/x", "session 2"},
		{"OptionsIsNotGet", "OPTIONS", "/feed/x", "session 2"},
		{"PostIsNotPublic", "POST", "/feed/x", "session 2"},
		{"MixedCaseMethod", "GeT", "/feed/x", "400"},
		{"LowerCaseDelete", "delete", "/items/1", "400"},
		{"MethodWithDigit", "GET2", "/feed/x", "400"},
		{"PutNeedsAdmins", "PUT", "/items/1", "session 1"},
		{"PatchIsNotCovered", "PATCH", "/items/1", "session 2"},
		{"PostMayBecomePut", "POST", "/items/1", "session 1 2"},
		{"MethodParamOnPublic", "GET", "/feed/x?_method=DELETE", "session 2"},
		{"MethodParamToPut", "GET", "/items/1?_method=put", "session 1 2"},
		{"MethodParamPHPBracket", "GET", "/items/1?[method=PUT", "session 1 2"},
		{"MethodParamTwice", "GET", "/items/1?_method=GET&_method=DELETE", "session 1 2"},
		{"MethodParamPadded", "GET", "/items/1?_method=%20DELETE%20", "session 1 2"},
		{"MethodParamControl", "GET", "/items/1?_method=DEL%0aETE", "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := outcome(t, p, tc.method, tc.target); got != tc.want {
				t.Errorf("%s %s: %s, want %s", tc.method, tc.target, got, tc.want)
			}
		})
	}
}

// TestGateAuthorization: the rules through ServeHTTP with users from the
// fake store: groups from the record decide, the judged path is the one
// forwarded, deny needs no session, a group removed takes effect when the
// cache is told, and a weaker login is stepped up.
func TestGateAuthorization(t *testing.T) {
	const mfa = "urn:example:mfa"
	users := []provision.User{
		{ID: "u-alice", UserName: "alice", Groups: []string{"admins", "staff"}, Active: true},
		{ID: "u-bob", UserName: "bob", Groups: []string{"staff"}, Active: true},
		{ID: "u-carol", UserName: "carol", Groups: []string{"ADMINS"}, Active: true},
		{ID: "u-dave", UserName: "dave", Groups: []string{"\u0430dmins"}, Active: true}, // Cyrillic a
	}
	g := newGate(t, func(c *Config) {
		c.PublicPaths = []string{"/pub/"}
		c.Authorization = []Rule{
			{Path: "/admin/", Require: admins},
			{Methods: []string{"DELETE"}, Path: "/reports/", Require: admins},
			{Path: "/internal/", Allow: AllowDeny},
			{Path: "/pay/", Allow: AllowAuthenticated, AuthnContext: []string{mfa}},
			{Path: "/", Allow: AllowAuthenticated},
		}
	}, users...)
	cookies := map[string]*http.Cookie{}
	for _, u := range users {
		cookies[u.UserName] = g.cookie(u.ID)
	}
	for _, tc := range []struct {
		name, user, method, target string
		h                          http.Header
		status                     int    // 0: sent to the IdP
		forwarded                  string // path the upstream received, when 200
	}{
		{"AdminMember", "alice", "GET", "/admin/x", api, http.StatusOK, "/admin/x"},
		{"AdminNotMember", "bob", "GET", "/admin/x", api, http.StatusForbidden, ""},
		{"AdminUpperCaseGroup", "carol", "GET", "/admin/x", api, http.StatusOK, "/admin/x"},
		{"AdminLookalikeGroup", "dave", "GET", "/admin/x", api, http.StatusForbidden, ""},
		{"AdminAnonymousAPI", "", "GET", "/admin/x", api, http.StatusUnauthorized, ""},
		{"AdminAnonymousBrowser", "", "GET", "/admin/x", browser, 0, ""},
		{"AdminUpperPath", "bob", "GET", "/ADMIN/x", api, http.StatusForbidden, ""},
		{"AdminDotSegments", "bob", "GET", "/x/../admin/x", api, http.StatusForbidden, ""},
		{"AdminEncodedLetter", "bob", "GET", "/%61dmin/x", api, http.StatusForbidden, ""},
		{"AdminParams", "bob", "GET", "/admin;x/y", api, http.StatusForbidden, ""},
		{"AdminEncodedSlash", "alice", "GET", "/admin%2fx", api, http.StatusBadRequest, ""},
		{"AdminCanonicalForwarded", "alice", "GET", "/x/.././admin//%79", api, http.StatusOK, "/admin/y"},
		{"ReportsRead", "bob", "GET", "/reports/1", api, http.StatusOK, "/reports/1"},
		{"ReportsDeleteNotAdmin", "bob", "DELETE", "/reports/1", api, http.StatusForbidden, ""},
		{"ReportsPostNotAdmin", "bob", "POST", "/reports/1", api, http.StatusForbidden, ""},
		{"ReportsMethodParamNotAdmin", "bob", "GET", "/reports/1?_method=DELETE", api, http.StatusForbidden, ""},
		{"ReportsOverrideHeaderIgnored", "bob", "GET", "/reports/1", http.Header{"Accept": {"application/json"}, "X-Http-Method-Override": {"DELETE"}}, http.StatusOK, "/reports/1"},
		{"ReportsDeleteAdmin", "alice", "DELETE", "/reports/1", api, http.StatusOK, "/reports/1"},
		{"ReportsLowerCaseMethod", "alice", "delete", "/reports/1", api, http.StatusBadRequest, ""},
		{"InternalSignedIn", "alice", "GET", "/internal/x", api, http.StatusForbidden, ""},
		{"InternalAnonymous", "", "GET", "/internal/x", browser, http.StatusForbidden, ""},
		{"InternalMixedCase", "alice", "GET", "/Internal/x", api, http.StatusForbidden, ""},
		{"PublicAnonymous", "", "GET", "/pub/x", api, http.StatusOK, "/pub/x"},
		{"PublicNotWidenedByDots", "", "GET", "/pub/../admin/x", api, http.StatusUnauthorized, ""},
		{"PayWeakLoginBrowser", "alice", "GET", "/pay/x", browser, 0, ""},
		{"PayWeakLoginAPI", "alice", "GET", "/pay/x", api, http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := g.upstream.count()
			r := g.do(tc.method, tc.target, cookies[tc.user], tc.h)
			switch {
			case tc.status == 0:
				wantLoginRedirect(t, r)
			case r.Code != tc.status:
				t.Fatalf("status %d, want %d", r.Code, tc.status)
			}
			if tc.status != http.StatusOK {
				if g.upstream.count() != sent {
					t.Error("a refused request reached the upstream")
				}
				return
			}
			got := g.upstream.last(t)
			if got.URL.EscapedPath() != tc.forwarded || got.Method != tc.method {
				t.Errorf("upstream got %s %s, want %s %s", got.Method, got.URL.EscapedPath(), tc.method, tc.forwarded)
			}
			if _, ok := got.Header["X-Http-Method-Override"]; ok {
				t.Error("a method override header reached the upstream")
			}
			if tc.user == "" && got.Header.Get("X-Forwarded-User") != "" {
				t.Error("identity headers on an anonymous request")
			}
		})
	}

	t.Run("StepUpPassed", func(t *testing.T) {
		c := g.cookieWith(session.Session{UserID: "u-bob", AuthnContext: mfa})
		if w := g.do("GET", "/pay/x", c, api); w.Code != http.StatusOK {
			t.Errorf("status %d with an MFA login, want 200", w.Code)
		}
	})
	t.Run("GroupRemovedAfterForget", func(t *testing.T) {
		if w := g.do("GET", "/admin/x", cookies["alice"], api); w.Code != http.StatusOK {
			t.Fatalf("status %d before the change", w.Code)
		}
		u := users[0]
		u.Groups = []string{"staff"}
		g.store.put(u)
		g.p.Forget(u.ID)
		if w := g.do("GET", "/admin/x", cookies["alice"], api); w.Code != http.StatusForbidden {
			t.Errorf("status %d after admins was removed, want 403", w.Code)
		}
	})
}
