package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/net/html"

	"gatehouse/session"
)

// TestPagesConfigValidate: the logo is an https URL or a path on this
// site, never a script or data URL; the name and contact are bounded.
func TestPagesConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  PagesConfig
		want string // "" for valid
	}{
		{"Empty", PagesConfig{}, ""},
		{"Full", PagesConfig{AppName: "Payroll", LogoURL: "https://cdn.example.com/logo.svg", SupportContact: "help@example.com"}, ""},
		{"SameOriginPath", PagesConfig{LogoURL: "/static/logo.png"}, ""},
		{"SupportURL", PagesConfig{SupportContact: "https://help.example.com/ticket"}, ""},
		{"JavaScript", PagesConfig{LogoURL: "javascript:alert(1)"}, "logo_url: must be an https URL"},
		{"Data", PagesConfig{LogoURL: "data:image/png;base64,AAAA"}, "logo_url: must be an https URL"},
		{"HTTP", PagesConfig{LogoURL: "http://cdn.example.com/logo.png"}, "logo_url: must be an https URL"},
		{"ProtocolRelative", PagesConfig{LogoURL: "//evil.example/logo.png"}, "logo_url: must be an https URL"},
		{"Relative", PagesConfig{LogoURL: "logo.png"}, "logo_url: must be an https URL"},
		{"UserInfo", PagesConfig{LogoURL: "https://user@cdn.example.com/logo.png"}, "logo_url: must be an https URL"},
		{"CSPInjection", PagesConfig{LogoURL: "https://cdn.example.com;script-src/x"}, "logo_url: must be an https URL"},
		{"Quote", PagesConfig{LogoURL: "/logo\".png"}, "logo_url: must be printable ASCII"},
		{"Space", PagesConfig{LogoURL: "/my logo.png"}, "logo_url: must be printable ASCII"},
		{"Backslash", PagesConfig{LogoURL: "/\\evil.example/logo.png"}, "logo_url: must be printable ASCII"},
		{"LongLogo", PagesConfig{LogoURL: "/" + strings.Repeat("a", maxLogoURL)}, "logo_url: 1025 bytes"},
		{"LongName", PagesConfig{AppName: strings.Repeat("n", maxAppName+1)}, "app_name: 81 characters"},
		{"ControlInName", PagesConfig{AppName: "Pay\nroll"}, "app_name: must be printable"},
		{"SupportNotContact", PagesConfig{SupportContact: "call Bob"}, "support_contact: must be an email address"},
		{"SupportMailtoName", PagesConfig{SupportContact: "Help <help@example.com>"}, "support_contact: must be an email address"},
		{"SupportJavaScript", PagesConfig{SupportContact: "javascript:alert(1)"}, "support_contact:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// page is a rendered page, parsed.
type page struct {
	code   int
	header http.Header
	doc    *html.Node
	body   string
}

func render(t *testing.T, serve func(w http.ResponseWriter, r *http.Request), r *http.Request) page {
	t.Helper()
	r.Header.Set("Accept", "text/html")
	w := httptest.NewRecorder()
	serve(w, r)
	doc, err := html.Parse(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return page{w.Code, w.Header(), doc, w.Body.String()}
}

// find returns every element named tag whose attributes include attrs.
func (p page) find(tag string, attrs ...string) []*html.Node {
	var out []*html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			ok := true
			for i := 0; i+1 < len(attrs); i += 2 {
				if attr(n, attrs[i]) != attrs[i+1] {
					ok = false
				}
			}
			if ok {
				out = append(out, n)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.doc)
	return out
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// links maps each link's text to its href.
func (p page) links() map[string]string {
	out := map[string]string{}
	for _, a := range p.find("a") {
		out[text(a)] = attr(a, "href")
	}
	return out
}

func testPages(site PagesConfig) *Pages {
	p := NewPages(zap.NewNop())
	p.Site = site
	p.bind("/.gatehouse/", "https://app.example.com")
	return p
}

// TestRefusedLoginTryAgain: a refused login offers "Try again", a fresh
// login to where the refused one was going; without a known destination
// it goes to the site root.
func TestRefusedLoginTryAgain(t *testing.T) {
	p := testPages(PagesConfig{})
	for _, tc := range []struct {
		name     string
		f        session.Failure
		method   string
		target   string
		wantHref string
	}{
		{"KnownReturn", session.Failure{Page: session.LoginFailed, Reason: "replay", ReturnTo: "/reports?q=1"}, "POST", "/.gatehouse/saml/acs",
			"/.gatehouse/login?return=%2Freports%3Fq%3D1"},
		{"DeniedAtLogin", session.Failure{Page: session.AccessDenied, Reason: "disabled", ReturnTo: "/home"}, "POST", "/.gatehouse/saml/acs",
			"/.gatehouse/login?return=%2Fhome"},
		{"UnknownReturn", session.Failure{Page: session.LoginFailed, Reason: "no_login_state"}, "POST", "/.gatehouse/saml/acs", "/"},
		{"HostileReturn", session.Failure{Page: session.LoginFailed, Reason: "x", ReturnTo: "//evil.example/"}, "POST", "/.gatehouse/saml/acs", "/"},
		{"UnavailableGET", session.Failure{Page: session.Unavailable, Reason: "store"}, "GET", "/reports?q=1", "/reports?q=1"},
		{"UnavailableLoginEndpoint", session.Failure{Page: session.Unavailable, Reason: "metadata"}, "GET", "/.gatehouse/login?idp=x&return=%2Fa", "/.gatehouse/login?idp=x&return=%2Fa"},
		{"LoginFailedAtLoginEndpoint", session.Failure{Page: session.LoginFailed, Reason: "unknown_idp"}, "GET", "/.gatehouse/login?idp=nosuch", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg := render(t, func(w http.ResponseWriter, r *http.Request) { p.Problem(w, r, tc.f) },
				httptest.NewRequest(tc.method, "https://app.example.com"+tc.target, nil))
			if got := pg.links()["Try again"]; got != tc.wantHref {
				t.Errorf("Try again = %q, want %q\n%s", got, tc.wantHref, pg.body)
			}
		})
	}
}

// TestDeactivatedSignOut: the deactivated user's page signs out with a
// same-origin POST form to the logout endpoint (whose Origin check needs
// the page's Referrer-Policy to let the browser say where it posts from),
// never with a link.
func TestDeactivatedSignOut(t *testing.T) {
	p := testPages(PagesConfig{})
	pg := render(t, func(w http.ResponseWriter, r *http.Request) {
		p.deactivated(w, r, session.Failure{Page: session.AccessDenied, Reason: "inactive"}, "alice")
	}, httptest.NewRequest("GET", "https://app.example.com/reports", nil))
	forms := pg.find("form", "method", "post", "action", "/.gatehouse/logout")
	if pg.code != http.StatusForbidden || len(forms) != 1 || !strings.Contains(text(forms[0]), "Sign out") {
		t.Fatalf("status %d, %d logout forms:\n%s", pg.code, len(forms), pg.body)
	}
	if got := pg.header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("Referrer-Policy %q, want same-origin (the form's POST must carry its Origin)", got)
	}
	if _, ok := pg.links()["Sign out"]; ok {
		t.Error("a sign-out link: a GET never signs out")
	}
	if !strings.Contains(pg.body, "deactivated") || !strings.Contains(pg.body, "alice") {
		t.Errorf("page does not say the account is deactivated:\n%s", pg.body)
	}
}

// TestDenyPages: a deny rule tells anyone, anonymous or not, that the
// address is closed (never "your account"), and leads back; a signed-in
// user a rule refuses is told so and may go back or sign out; an
// anonymous request that needs a session is offered "Sign in".
func TestDenyPages(t *testing.T) {
	p := testPages(PagesConfig{})
	deny := session.Failure{Page: session.AccessDenied, Reason: "forbidden"}

	r := httptest.NewRequest("GET", "https://app.example.com/internal/x", nil)
	r.Header.Set("Referer", "https://app.example.com/home?tab=2")
	pg := render(t, func(w http.ResponseWriter, r *http.Request) { p.closed(w, r, deny) }, r)
	if strings.Contains(pg.body, "Your account") || !strings.Contains(pg.body, "not open to anyone") {
		t.Errorf("closed page speaks of an account:\n%s", pg.body)
	}
	if got := pg.links()["Back"]; got != "/home?tab=2" {
		t.Errorf("Back = %q, want the same-origin referrer", got)
	}
	if len(pg.find("form", "method", "post")) != 0 {
		t.Error("closed page offers to sign out: no account may pass, so it would not help")
	}

	// A referrer of another origin is not followed.
	r = httptest.NewRequest("GET", "https://app.example.com/internal/x", nil)
	r.Header.Set("Referer", "https://evil.example/home")
	pg = render(t, func(w http.ResponseWriter, r *http.Request) { p.closed(w, r, deny) }, r)
	if links := pg.links(); links["Back"] != "" || links["Go to the start page"] != "/" {
		t.Errorf("cross-origin referrer: links %v", links)
	}

	r = httptest.NewRequest("GET", "https://app.example.com/admin/", nil)
	pg = render(t, func(w http.ResponseWriter, r *http.Request) { p.refused(w, r, deny, "bob") }, r)
	if !strings.Contains(pg.body, "Your account may not open this page") || !strings.Contains(pg.body, "bob") {
		t.Errorf("refused page:\n%s", pg.body)
	}
	if pg.links()["Go to the start page"] != "/" || len(pg.find("form", "method", "post", "action", "/.gatehouse/logout")) != 1 {
		t.Errorf("refused page lacks Back or Sign out:\n%s", pg.body)
	}

	r = httptest.NewRequest("GET", "https://app.example.com/api/items?x=1", nil)
	pg = render(t, p.unauthorized, r)
	if got := pg.links()["Sign in"]; pg.code != http.StatusUnauthorized || got != "/.gatehouse/login?return=%2Fapi%2Fitems%3Fx%3D1" {
		t.Errorf("status %d, Sign in = %q", pg.code, got)
	}
}

// TestPagesNameLogoAndRequestID: every page names the application (the
// configured name, else base_url's host) in its title and heading; a logo
// is allowed by the CSP from exactly its origin, and no script source is
// ever allowed; error pages show the request's ID as the error ID.
func TestPagesNameLogoAndRequestID(t *testing.T) {
	r := httptest.NewRequest("GET", "https://app.example.com/x", nil)
	pg := render(t, testPages(PagesConfig{}).notFound, r)
	if title := text(pg.find("title")[0]); title != "Not found · app.example.com" {
		t.Errorf("default title %q", title)
	}
	if csp := pg.header.Get("Content-Security-Policy"); strings.Contains(csp, "img-src") {
		t.Errorf("CSP allows images without a logo: %s", csp)
	}

	p := testPages(PagesConfig{AppName: "Payroll", LogoURL: "https://cdn.example.com/brand/logo.svg", SupportContact: "help@example.com"})
	r = httptest.NewRequest("GET", "https://app.example.com/x", nil)
	r = r.WithContext(withRequestID(r.Context(), "ABCDEFGHIJKLMNOP"))
	pg = render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Problem(w, r, session.Failure{Page: session.Unavailable, Reason: "store"})
	}, r)
	if title := text(pg.find("title")[0]); title != "Temporarily unavailable · Payroll" {
		t.Errorf("title %q", title)
	}
	if h := pg.find("header"); len(h) != 1 || text(h[0]) != "Payroll" || len(pg.find("img", "src", "https://cdn.example.com/brand/logo.svg")) != 1 {
		t.Errorf("heading area:\n%s", pg.body)
	}
	csp := pg.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src https://cdn.example.com") || strings.Contains(csp, "script-src") || !strings.HasPrefix(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if !strings.Contains(pg.body, "error ID <code>ABCDEFGHIJKLMNOP</code>") {
		t.Errorf("error ID is not the request ID:\n%s", pg.body)
	}
	if pg.links()["help@example.com"] != "mailto:help@example.com" {
		t.Errorf("support contact: %v", pg.links())
	}

	p = testPages(PagesConfig{LogoURL: "/static/logo.png"})
	pg = render(t, p.notFound, httptest.NewRequest("GET", "https://app.example.com/x", nil))
	if csp := pg.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self'") {
		t.Errorf("same-origin logo: CSP %q", csp)
	}
}

// TestLogoutFailedPage: a refused single-logout message is a sign-out
// that failed, not a sign-in: its page says so, offers signing out here
// (a POST, as every logout) rather than a new login, and counts as a
// refused SAML message.
func TestLogoutFailedPage(t *testing.T) {
	p := testPages(PagesConfig{})
	var counted bool
	p.OnProblem = func(reason string, status int, saml bool) {
		counted = saml && reason == "replay" && status == http.StatusForbidden
	}
	pg := render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Problem(w, r, session.Failure{Page: session.LogoutFailed, Reason: "replay"})
	}, httptest.NewRequest("GET", "https://app.example.com/.gatehouse/saml/slo", nil))
	if pg.code != http.StatusForbidden || !strings.Contains(text(pg.find("title")[0]), "Sign-out failed") {
		t.Errorf("status %d, title %q", pg.code, text(pg.find("title")[0]))
	}
	if forms := pg.find("form", "action", "/.gatehouse/logout", "method", "post"); len(forms) != 1 {
		t.Errorf("no sign-out form:\n%s", pg.body)
	}
	if _, ok := pg.links()["Try again"]; ok || strings.Contains(pg.body, "Sign-in failed") {
		t.Errorf("a sign-out failure reads as a sign-in one:\n%s", pg.body)
	}
	if !counted {
		t.Error("not counted as a refused SAML message")
	}
}
