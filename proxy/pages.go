package proxy

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"gatehouse/session"
)

// Pages renders gatehouse's browser-facing pages and logs every problem
// once, under an error ID the page shows. Details never reach the page.
type Pages struct {
	log *zap.Logger
	// OnProblem, when set, is told the reason and status of every refusal
	// (metrics); login is true for sign-in failures (SAML validation).
	OnProblem func(reason string, status int, login bool)
	// Site names the application on every page (the pages section);
	// set it before serving.
	Site PagesConfig

	// Set by New from the proxy's Config: the login and logout
	// endpoints the pages' next steps lead to, and base_url's origin
	// (whose host is the default application name).
	login, logout string
	origin        string
	host          string
}

// NewPages returns the page renderer.
func NewPages(log *zap.Logger) *Pages {
	return &Pages{log: log, login: DefaultPrefix + PathLogin, logout: DefaultPrefix + PathLogout}
}

// bind points the pages' next steps at the endpoints under prefix and
// takes the default application name from baseURL.
func (p *Pages) bind(prefix, baseURL string) {
	p.login, p.logout = prefix+PathLogin, prefix+PathLogout
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		p.origin, p.host = u.Scheme+"://"+u.Host, u.Hostname()
	}
}

// PagesConfig is the pages section: how gatehouse's own pages (the IdP
// chooser, sign-out and error pages) name the application.
type PagesConfig struct {
	// AppName is shown in every page's title and heading; default the
	// host of base_url.
	AppName string `yaml:"app_name"`
	// LogoURL is an image shown beside the name: an https URL, or a path
	// on gatehouse's own origin (which the application must serve
	// without a session: list it in public_paths). The pages' CSP allows
	// images from exactly that origin.
	LogoURL string `yaml:"logo_url"`
	// SupportContact, an email address or an https URL, is offered on
	// error pages beside the error ID.
	SupportContact string `yaml:"support_contact"`
}

// Bounds of the pages section.
const (
	maxAppName = 80
	maxLogoURL = 1024
	maxSupport = 254
)

// logoHost is a host (and port) fit to be written in a CSP source.
var logoHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)

// Validate checks the pages section; problems name their key.
func (c PagesConfig) Validate() error {
	var errs []error
	if n := utf8.RuneCountInString(c.AppName); n > maxAppName {
		errs = append(errs, fmt.Errorf("app_name: %d characters, at most %d", n, maxAppName))
	}
	if !utf8.ValidString(c.AppName) || strings.IndexFunc(c.AppName, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
		errs = append(errs, errors.New("app_name: must be printable text"))
	}
	if c.LogoURL != "" {
		if _, err := logoSource(c.LogoURL); err != nil {
			errs = append(errs, fmt.Errorf("logo_url: %w", err))
		}
	}
	if c.SupportContact != "" {
		if _, err := supportLink(c.SupportContact); err != nil {
			errs = append(errs, fmt.Errorf("support_contact: %w", err))
		}
	}
	return errors.Join(errs...)
}

// logoSource returns the CSP img-src source that lets the pages show
// logo: 'self' for a path on gatehouse's origin, the origin of an https
// URL.
func logoSource(logo string) (string, error) {
	if len(logo) > maxLogoURL {
		return "", fmt.Errorf("%d bytes, at most %d", len(logo), maxLogoURL)
	}
	for i := 0; i < len(logo); i++ {
		if c := logo[i]; c <= 0x20 || c >= 0x7f || c == '\\' || c == '"' || c == '\'' || c == '<' || c == '>' {
			return "", errors.New("must be printable ASCII without spaces, quotes, angle brackets or backslashes (percent-encode them)")
		}
	}
	if strings.HasPrefix(logo, "/") && !strings.HasPrefix(logo, "//") {
		return "'self'", nil
	}
	u, err := url.Parse(logo)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Opaque != "" || !logoHost.MatchString(u.Host) {
		return "", errors.New("must be an https URL (https://host/path) or a path on this site (/path); javascript:, data: and http: are refused")
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// supportLink returns the link for a support contact: mailto: for an
// email address, the URL itself for an https URL.
func supportLink(contact string) (string, error) {
	if len(contact) > maxSupport {
		return "", fmt.Errorf("%d bytes, at most %d", len(contact), maxSupport)
	}
	if strings.HasPrefix(contact, "https://") {
		u, err := url.Parse(contact)
		if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(contact, " \t\r\n\"'<>\\") {
			return "", errors.New("not a usable https URL")
		}
		return u.String(), nil
	}
	a, err := mail.ParseAddress(contact)
	if err != nil || a.Name != "" || a.Address != contact {
		return "", errors.New("must be an email address (support@example.com) or an https URL")
	}
	return "mailto:" + contact, nil
}

var _ session.Pages = (*Pages)(nil)

type pageData struct {
	Status  int
	Title   string
	Message string
	ErrorID string
	Chooser *session.ChooserPage
	// Steps are the page's next steps, the main one first.
	Steps []step
	// SignedInAs names the signed-in user a refusal is about.
	SignedInAs string

	// From Site, filled in by render.
	AppName, Logo, Support, SupportURL string
}

// step is a next step: a link, or a form with one button that posts to
// URL (a same-origin POST, as logout needs).
type step struct {
	Label, URL string
	Post       bool
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}{{if .AppName}} · {{.AppName}}{{end}}</title>
<style>
:root { color-scheme: light dark; --fg: #1d2430; --muted: #5b6576; --bg: #f4f6f9; --card: #fff; --line: #dde2ea; --accent: #2458c6; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #9aa4b5; --bg: #14171c; --card: #1d2129; --line: #2d333e; --accent: #7aa2ff; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { width: min(30rem, calc(100% - 2rem)); background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  padding: 2rem 2.25rem; box-shadow: 0 1px 3px rgb(0 0 0 / 6%); }
h1 { margin: 0 0 .5rem; font-size: 1.35rem; }
p { margin: .5rem 0; color: var(--muted); }
ul { list-style: none; margin: 1.25rem 0 0; padding: 0; display: grid; gap: .6rem; }
a.button, span.button { display: block; padding: .7rem 1rem; border: 1px solid var(--line); border-radius: 8px; color: var(--fg);
  text-decoration: none; font-weight: 500; }
a.button:hover, a.button:focus { border-color: var(--accent); color: var(--accent); outline: none; }
span.button.off { color: var(--muted); border-style: dashed; cursor: not-allowed; }
header { display: flex; align-items: center; gap: .6rem; margin: 0 0 1.25rem; padding-bottom: .75rem; border-bottom: 1px solid var(--line);
  color: var(--muted); font-weight: 600; overflow-wrap: anywhere; }
header img { height: 28px; width: auto; max-width: 8rem; }
.actions { display: flex; flex-wrap: wrap; gap: .6rem; margin: 1.25rem 0 0; }
.actions form { margin: 0; }
.actions a.button { display: inline-block; padding: .55rem 1rem; }
.actions .primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.actions a.primary:hover, .actions a.primary:focus { color: #fff; outline: 2px solid var(--accent); outline-offset: 2px; }
.id { margin-top: 1.25rem; padding-top: .75rem; border-top: 1px solid var(--line); font-size: .85rem; }
code { font: .85rem ui-monospace, SFMono-Regular, Menlo, monospace; }
p a { color: var(--accent); }
form { display: flex; gap: .5rem; margin: 1rem 0 0; }
input[type=search] { flex: 1; padding: .55rem .75rem; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg); font: inherit; }
button { padding: .55rem 1rem; border: 1px solid var(--line); border-radius: 8px; background: var(--card); color: var(--fg); font: inherit; font-weight: 500; cursor: pointer; }
@media (prefers-color-scheme: dark) { .actions .primary { color: #14171c; } .actions a.primary:hover, .actions a.primary:focus { color: #14171c; } }
.note { float: right; font-size: .8rem; font-weight: 400; color: var(--muted); }
</style></head>
<body><main>
{{if .AppName}}<header>{{if .Logo}}<img src="{{.Logo}}" alt="">{{end}}<span>{{.AppName}}</span></header>{{end}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{with .SignedInAs}}<p>You are signed in as <strong>{{.}}</strong>.</p>{{end}}
{{with .Chooser}}{{if .Searchable}}<form method="get" action="{{.Action}}" role="search">
<input type="hidden" name="return" value="{{.ReturnTo}}">
<input type="search" name="q" value="{{.Query}}" placeholder="Search organisations" aria-label="Search organisations" autofocus>
<button type="submit">Search</button></form>{{end}}
{{if .Choices}}<ul>{{range .Choices}}<li>{{if .Unavailable}}<span class="button off" aria-disabled="true" title="Sign-in through this organisation is unavailable right now">{{.DisplayName}} <span class="note">unavailable</span></span>{{else}}<a class="button" href="{{.URL}}">{{.DisplayName}}{{if .LastUsed}} <span class="note">last used</span>{{end}}</a>{{end}}</li>{{end}}</ul>
{{else}}<p>No organisation matches “{{.Query}}”.</p>{{end}}{{end}}
{{if .Steps}}<div class="actions">{{range $i, $s := .Steps}}{{if $s.Post}}<form method="post" action="{{$s.URL}}"><button type="submit"{{if eq $i 0}} class="primary" autofocus{{end}}>{{$s.Label}}</button></form>{{else}}<a class="button{{if eq $i 0}} primary{{end}}" href="{{$s.URL}}">{{$s.Label}}</a>{{end}}{{end}}</div>{{end}}
{{if .ErrorID}}<p class="id">If you contact support{{with .SupportURL}} (<a href="{{.}}">{{$.Support}}</a>){{end}}, quote error ID <code>{{.ErrorID}}</code>.</p>
{{else if .SupportURL}}<p class="id">Need help? Contact <a href="{{.SupportURL}}">{{.Support}}</a>.</p>{{end}}
</main></body></html>
`))

func (p *Pages) render(w http.ResponseWriter, r *http.Request, d pageData) {
	if d.ErrorID == "" && d.Status >= 400 {
		d.ErrorID = RequestID(r.Context())
	}
	d.AppName = cmp.Or(p.Site.AppName, p.host)
	csp := "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
	if src, err := logoSource(p.Site.LogoURL); err == nil && p.Site.LogoURL != "" {
		d.Logo = p.Site.LogoURL
		csp += "; img-src " + src
	}
	if link, err := supportLink(p.Site.SupportContact); err == nil && p.Site.SupportContact != "" && d.Status >= 400 {
		d.Support, d.SupportURL = p.Site.SupportContact, link
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
	referrer := "no-referrer"
	if slices.ContainsFunc(d.Steps, func(s step) bool { return s.Post }) {
		referrer = "same-origin" // the browser then says where its POST comes from (Origin)
	}
	h.Set("Referrer-Policy", referrer)
	if !wantsHTML(r) {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(d.Status)
		msg := d.Title + ": " + d.Message
		if d.ErrorID != "" {
			msg += " (error ID " + d.ErrorID + ")"
		}
		w.Write([]byte(msg + "\n"))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(d.Status)
	if r.Method != http.MethodHead {
		pageTemplate.Execute(w, d)
	}
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// errorID is the ID a refusal is logged and shown under: the request's
// ID (one ID the operator greps for, in the access log, the upstream's
// X-Request-Id and "request refused" alike), or a new random one outside
// a request that has one.
func errorID(r *http.Request) string {
	if id := RequestID(r.Context()); id != "" {
		return id
	}
	return newErrorID()
}

func newErrorID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Problem logs the failure under the request's ID and shows its page,
// with "Try again" as the next step.
func (p *Pages) Problem(w http.ResponseWriter, r *http.Request, f session.Failure) {
	p.problem(w, r, f, pageData{})
}

// problem logs the failure under the request's ID and shows d, or, when
// d has no title, the page f.Page names.
func (p *Pages) problem(w http.ResponseWriter, r *http.Request, f session.Failure, d pageData) {
	id := errorID(r)
	d.ErrorID = id
	level := zap.WarnLevel
	var title, msg string
	switch f.Page {
	case session.AccessDenied:
		d.Status, title, msg = http.StatusForbidden, "Access denied", "Your account may not use this application. Ask your administrator if you think this is wrong."
	case session.Unavailable:
		d.Status, title, msg = http.StatusServiceUnavailable, "Temporarily unavailable", "Sign-in cannot be completed right now. Please try again in a minute."
		w.Header().Set("Retry-After", "30")
		if !f.Routine { // see session.Failure.Routine
			level = zap.ErrorLevel
		}
	case session.LogoutFailed:
		d.Status, title, msg = http.StatusForbidden, "Sign-out failed", "The sign-out message could not be accepted, so this application may still have you signed in. Sign out here, or close the browser."
	default:
		d.Status, title, msg = http.StatusForbidden, "Sign-in failed", "Your identity provider's answer could not be accepted. Please try again."
	}
	if d.Title == "" {
		d.Title, d.Message, d.Steps = title, msg, []step{p.tryAgain(r, f)}
		if f.Page == session.LogoutFailed {
			d.Steps = []step{{Label: "Sign out", URL: p.logout, Post: true}}
		}
	}
	if p.OnProblem != nil {
		// A SAML failure is a refused SAML message (see NoMessage).
		p.OnProblem(f.Reason, d.Status, (f.Page == session.LoginFailed || f.Page == session.LogoutFailed) && !f.NoMessage)
	}
	if ce := p.log.Check(level, "request refused"); ce != nil {
		ce.Write(zap.String("error_id", id), zap.String("request_id", RequestID(r.Context())), zap.Int("status", d.Status), zap.String("reason", f.Reason),
			logString("method", r.Method), logString("path", r.URL.Path), zap.Stringer("client_ip", clientIPField(r)), logErr(f.Err))
	}
	p.render(w, r, d)
}

// tryAgain starts a fresh login to where the failed one was going, when
// known; otherwise it repeats a GET that could not be served, or goes to
// the site root (which starts a login when one is needed).
func (p *Pages) tryAgain(r *http.Request, f session.Failure) step {
	if f.ReturnTo != "" {
		if target, ok := session.CanonicalReturn(f.ReturnTo, p.prefix()); ok {
			return step{Label: "Try again", URL: p.login + "?" + url.Values{"return": {target}}.Encode()}
		}
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if f.Page == session.Unavailable && get && r.URL.Path == p.login {
		return step{Label: "Try again", URL: p.login + "?" + r.URL.RawQuery} // the same IdP, the same return
	}
	if f.Page == session.Unavailable && get && !strings.HasPrefix(r.URL.Path, p.prefix()) {
		if target, ok := session.CanonicalReturn(r.URL.RequestURI(), p.prefix()); ok {
			return step{Label: "Try again", URL: target}
		}
	}
	return step{Label: "Try again", URL: "/"}
}

// prefix is the reserved prefix the endpoints are under.
func (p *Pages) prefix() string { return strings.TrimSuffix(p.login, PathLogin) }

// back leads away from a refused page: to the same-origin page the
// browser came from (its Referer), else to the site root; none when the
// refused page is the root and the browser says nothing.
func (p *Pages) back(r *http.Request) []step {
	if ref, err := url.Parse(r.Header.Get("Referer")); err == nil && p.origin != "" && ref.Host != "" &&
		strings.EqualFold(ref.Scheme+"://"+ref.Host, p.origin) {
		if target, ok := session.CanonicalReturn(ref.RequestURI(), p.prefix()); ok && target != r.URL.RequestURI() {
			return []step{{Label: "Back", URL: target}}
		}
	}
	if r.URL.Path != "/" {
		return []step{{Label: "Go to the start page", URL: "/"}}
	}
	return nil
}

// signIn starts a login that returns to the refused address when it can
// be returned to (a GET), else to the site root.
func (p *Pages) signIn(r *http.Request) step {
	target := "/"
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if t, ok := session.CanonicalReturn(r.URL.RequestURI(), p.prefix()); ok {
			target = t
		}
	}
	return step{Label: "Sign in", URL: p.login + "?" + url.Values{"return": {target}}.Encode()}
}

// deactivated refuses a signed-in user whose account was deactivated:
// the next step is signing out (a same-origin POST, as every logout).
func (p *Pages) deactivated(w http.ResponseWriter, r *http.Request, f session.Failure, user string) {
	p.problem(w, r, f, pageData{Title: "Account deactivated", SignedInAs: user,
		Message: "Your account has been deactivated, so it can no longer use this application. Ask your administrator if you think this is wrong.",
		Steps:   []step{{Label: "Sign out", URL: p.logout, Post: true}}})
}

// closed refuses a request a deny rule reaches: nobody may pass,
// signed in or not, so neither signing in nor out would help.
func (p *Pages) closed(w http.ResponseWriter, r *http.Request, f session.Failure) {
	p.problem(w, r, f, pageData{Title: "Not available",
		Message: "This page is not open to anyone, signed in or not.", Steps: p.back(r)})
}

// refused refuses a signed-in user a rule does not admit: back to where
// they came from, or sign out to sign in with another account.
func (p *Pages) refused(w http.ResponseWriter, r *http.Request, f session.Failure, user string) {
	p.problem(w, r, f, pageData{Title: "Access denied", SignedInAs: user,
		Message: "Your account may not open this page. Ask your administrator if you need it, or sign out and sign in with another account.",
		Steps:   append(p.back(r), step{Label: "Sign out", URL: p.logout, Post: true})})
}

// Chooser lists the identity providers.
func (p *Pages) Chooser(w http.ResponseWriter, r *http.Request, page session.ChooserPage) {
	p.render(w, r, pageData{Status: http.StatusOK, Title: "Sign in", Message: "Choose your organisation to continue.", Chooser: &page})
}

// SignedOut confirms a logout.
func (p *Pages) SignedOut(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, pageData{Status: http.StatusOK, Title: "Signed out", Message: "You have been signed out of this application.",
		Steps: []step{{Label: "Sign in again", URL: "/"}}})
}

// ConfirmLogout asks before signing out: only its form's same-origin
// POST signs out, never a GET.
func (p *Pages) ConfirmLogout(w http.ResponseWriter, r *http.Request, action string) {
	p.render(w, r, pageData{Status: http.StatusOK, Title: "Sign out?", Message: "Sign out of this application on this browser.",
		Steps: []step{{Label: "Sign out", URL: action, Post: true}}})
}

// AutoPost sends the browser on with a form that posts itself: a script
// allowed by a per-response nonce submits it, and without scripts the
// user presses the button.
func (p *Pages) AutoPost(w http.ResponseWriter, r *http.Request, action string, fields map[string]string) {
	nonce := newErrorID() + newErrorID()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+nonce+"'; form-action "+formAction(action)+"; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	autoPostTemplate.Execute(w, struct {
		Action, Nonce string
		Fields        map[string]string
	}{action, nonce, fields})
}

// formAction is the CSP source that lets the form post to action.
func formAction(action string) string {
	if u, err := url.Parse(action); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return "'self'"
}

var autoPostTemplate = template.Must(template.New("post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Signing out</title></head>
<body><form method="post" action="{{.Action}}">{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<noscript><p>Press Continue to finish signing out.</p></noscript><button type="submit">Continue</button></form>
<script nonce="{{.Nonce}}">document.forms[0].submit()</script></body></html>
`))

// notFound is the answer for unknown reserved paths.
func (p *Pages) notFound(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, pageData{Status: http.StatusNotFound, Title: "Not found", Message: "There is nothing at this address.",
		Steps: []step{{Label: "Go to the start page", URL: "/"}}})
}

// unauthorized answers requests that cannot be sent to a login page.
func (p *Pages) unauthorized(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, pageData{Status: http.StatusUnauthorized, Title: "Sign-in required",
		Message: "This address needs you to sign in first.", Steps: []step{p.signIn(r)}})
}

// tooManyRequests answers a client over its rate limit; the caller sets
// Retry-After.
func (p *Pages) tooManyRequests(w http.ResponseWriter, r *http.Request) {
	if p.OnProblem != nil {
		p.OnProblem("rate_limit", http.StatusTooManyRequests, false)
	}
	p.render(w, r, pageData{Status: http.StatusTooManyRequests, Title: "Too many requests",
		Message: "Too many sign-in requests came from your address. Please wait a minute and try again."})
}

// tooManyAtOnce answers a client without a session that has too many
// requests at the application at once; the caller sets Retry-After.
func (p *Pages) tooManyAtOnce(w http.ResponseWriter, r *http.Request) {
	if p.OnProblem != nil {
		p.OnProblem("public_max_concurrent", http.StatusTooManyRequests, false)
	}
	p.render(w, r, pageData{Status: http.StatusTooManyRequests, Title: "Too many requests",
		Message: "Too many requests from your address are in progress. Please try again in a moment."})
}

// refuseRequest refuses a request gatehouse will not forward; the reason is
// logged under the page's error ID.
func (p *Pages) refuseRequest(w http.ResponseWriter, r *http.Request, status int, reason string, err error) {
	id := errorID(r)
	if p.OnProblem != nil {
		p.OnProblem(reason, status, false)
	}
	p.log.Info("request refused", zap.String("error_id", id), zap.String("request_id", RequestID(r.Context())), zap.Int("status", status), zap.String("reason", reason),
		logString("method", r.Method), logString("path", r.URL.Path), zap.Stringer("client_ip", clientIPField(r)), logErr(err))
	title, msg := "Bad request", "This request cannot be forwarded to the application."
	switch status {
	case http.StatusRequestTimeout:
		title, msg = "Request timeout", "The request body arrived too slowly."
	case http.StatusRequestURITooLong:
		title, msg = "Address too long", "The address of this request is longer than this site accepts."
	}
	p.render(w, r, pageData{Status: status, Title: title, Message: msg, ErrorID: id})
}

// clientIPField is the derived client address for logs.
func clientIPField(r *http.Request) fmt.Stringer { return ClientIP(r.Context()) }

// badGateway answers when the upstream cannot be reached.
func (p *Pages) badGateway(w http.ResponseWriter, r *http.Request, err error) {
	id := errorID(r)
	p.log.Error("upstream request failed", zap.String("error_id", id), zap.String("request_id", RequestID(r.Context())), logString("method", r.Method),
		logString("path", r.URL.Path), logErr(err))
	p.render(w, r, pageData{Status: http.StatusBadGateway, Title: "Application unavailable",
		Message: "The application behind this sign-in did not answer. Please try again in a minute.", ErrorID: id,
		Steps: []step{p.tryAgain(r, session.Failure{Page: session.Unavailable})}})
}
