package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

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
}

// NewPages returns the page renderer.
func NewPages(log *zap.Logger) *Pages { return &Pages{log: log} }

var _ session.Pages = (*Pages)(nil)

type pageData struct {
	Status  int
	Title   string
	Message string
	ErrorID string
	Action  *session.Choice
	Chooser *session.ChooserPage
	// Confirm is a form with one button that posts to its URL.
	Confirm *session.Choice
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
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
a.button { display: block; padding: .7rem 1rem; border: 1px solid var(--line); border-radius: 8px; color: var(--fg);
  text-decoration: none; font-weight: 500; }
a.button:hover, a.button:focus { border-color: var(--accent); color: var(--accent); outline: none; }
.id { margin-top: 1.25rem; padding-top: .75rem; border-top: 1px solid var(--line); font-size: .85rem; }
code { font: .85rem ui-monospace, SFMono-Regular, Menlo, monospace; }
form { display: flex; gap: .5rem; margin: 1rem 0 0; }
input[type=search] { flex: 1; padding: .55rem .75rem; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg); font: inherit; }
button { padding: .55rem 1rem; border: 1px solid var(--line); border-radius: 8px; background: var(--card); color: var(--fg); font: inherit; }
.note { float: right; font-size: .8rem; font-weight: 400; color: var(--muted); }
</style></head>
<body><main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{with .Chooser}}{{if .Searchable}}<form method="get" action="{{.Action}}" role="search">
<input type="hidden" name="return" value="{{.ReturnTo}}">
<input type="search" name="q" value="{{.Query}}" placeholder="Search organisations" aria-label="Search organisations" autofocus>
<button type="submit">Search</button></form>{{end}}
{{if .Choices}}<ul>{{range .Choices}}<li><a class="button" href="{{.URL}}">{{.DisplayName}}{{if .LastUsed}} <span class="note">last used</span>{{end}}</a></li>{{end}}</ul>
{{else}}<p>No organisation matches “{{.Query}}”.</p>{{end}}{{end}}
{{if .Action}}<ul><li><a class="button" href="{{.Action.URL}}">{{.Action.DisplayName}}</a></li></ul>{{end}}
{{with .Confirm}}<form method="post" action="{{.URL}}"><button type="submit" autofocus>{{.DisplayName}}</button></form>{{end}}
{{if .ErrorID}}<p class="id">If you contact support, quote error ID <code>{{.ErrorID}}</code>.</p>{{end}}
</main></body></html>
`))

func (p *Pages) render(w http.ResponseWriter, r *http.Request, d pageData) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	referrer := "no-referrer"
	if d.Confirm != nil {
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

func newErrorID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Problem logs the failure under a new error ID and shows its page.
func (p *Pages) Problem(w http.ResponseWriter, r *http.Request, f session.Failure) {
	id := newErrorID()
	d := pageData{ErrorID: id}
	level := zap.WarnLevel
	switch f.Page {
	case session.AccessDenied:
		d.Status, d.Title, d.Message = http.StatusForbidden, "Access denied", "Your account may not use this application. Ask your administrator if you think this is wrong."
	case session.Unavailable:
		d.Status, d.Title, d.Message = http.StatusServiceUnavailable, "Temporarily unavailable", "Sign-in cannot be completed right now. Please try again in a minute."
		w.Header().Set("Retry-After", "30")
		level = zap.ErrorLevel
	default:
		d.Status, d.Title, d.Message = http.StatusForbidden, "Sign-in failed", "Your identity provider's answer could not be accepted. Please start again from the application's address."
	}
	if p.OnProblem != nil {
		p.OnProblem(f.Reason, d.Status, f.Page == session.LoginFailed)
	}
	if ce := p.log.Check(level, "request refused"); ce != nil {
		ce.Write(zap.String("error_id", id), zap.String("request_id", RequestID(r.Context())), zap.Int("status", d.Status), zap.String("reason", f.Reason),
			zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Stringer("client_ip", clientIPField(r)), zap.Error(f.Err))
	}
	p.render(w, r, d)
}

// Chooser lists the identity providers.
func (p *Pages) Chooser(w http.ResponseWriter, r *http.Request, page session.ChooserPage) {
	p.render(w, r, pageData{Status: http.StatusOK, Title: "Sign in", Message: "Choose your organisation to continue.", Chooser: &page})
}

// SignedOut confirms a logout.
func (p *Pages) SignedOut(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, pageData{Status: http.StatusOK, Title: "Signed out", Message: "You have been signed out of this application.",
		Action: &session.Choice{DisplayName: "Sign in again", URL: "/"}})
}

// ConfirmLogout asks before signing out: only its form's same-origin
// POST signs out, never a GET.
func (p *Pages) ConfirmLogout(w http.ResponseWriter, r *http.Request, action string) {
	p.render(w, r, pageData{Status: http.StatusOK, Title: "Sign out?", Message: "Sign out of this application on this browser.",
		Confirm: &session.Choice{DisplayName: "Sign out", URL: action}})
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
	p.render(w, r, pageData{Status: http.StatusNotFound, Title: "Not found", Message: "There is nothing at this address."})
}

// unauthorized answers requests that cannot be sent to a login page.
func (p *Pages) unauthorized(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, pageData{Status: http.StatusUnauthorized, Title: "Authentication required", Message: "Sign in through a browser first."})
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
	id := newErrorID()
	if p.OnProblem != nil {
		p.OnProblem(reason, status, false)
	}
	p.log.Info("request refused", zap.String("error_id", id), zap.String("request_id", RequestID(r.Context())), zap.Int("status", status), zap.String("reason", reason),
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Stringer("client_ip", clientIPField(r)), zap.Error(err))
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
	id := newErrorID()
	p.log.Error("upstream request failed", zap.String("error_id", id), zap.String("request_id", RequestID(r.Context())), zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.Error(err))
	p.render(w, r, pageData{Status: http.StatusBadGateway, Title: "Application unavailable",
		Message: "The application behind this sign-in did not answer. Please try again in a minute.", ErrorID: id})
}
