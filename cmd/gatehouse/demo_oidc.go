package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml/samlidp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/crypto/bcrypt"
)

// The demo's OpenID provider: the authorization code flow with PKCE (S256
// only) for one client, gatehouse. Its users are the demo IdP's (the same
// store, so the same passwords and the edits of the user editor); its
// state lives in memory and its signing key is new at every start. It is
// for the demo alone: one client, one redirect URI, no consent.

const (
	demoOIDCClientID = "gatehouse-demo"
	demoOPCookie     = "demo_op"
	demoCodeTTL      = time.Minute
	demoTokenTTL     = 5 * time.Minute
	demoOPSessionTTL = 8 * time.Hour
)

// demoOP is the demo OpenID provider.
type demoOP struct {
	issuer, secret        string
	redirect, afterLogout string // the client's registered URIs
	users                 func(name string) (samlidp.User, bool)
	jwk                   jose.JSONWebKey
	signer                jose.Signer
	now                   func() time.Time
	mu                    sync.Mutex
	codes                 map[string]*demoGrant // by code; used ones stay until they expire
	tokens                map[string]*demoGrant // by access token
	sessions              map[string]*demoGrant // by the OP's session cookie: user, sid, authTime
}

// demoGrant is one authorization (what a code or an access token was
// issued for) or one sign-in at the OP.
type demoGrant struct {
	user, nonce, challenge, redirect, sid, scope string
	authTime, expires                            time.Time
	used                                         bool
	access                                       string // the access token the code was exchanged for
}

func newDemoOP(issuer, secret, redirect, afterLogout string, users func(string) (samlidp.User, bool)) (*demoOP, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	op := &demoOP{issuer: issuer, secret: secret, redirect: redirect, afterLogout: afterLogout, users: users,
		now: time.Now, codes: map[string]*demoGrant{}, tokens: map[string]*demoGrant{}, sessions: map[string]*demoGrant{}}
	op.jwk = jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := op.jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	op.jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	op.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", op.jwk.KeyID))
	return op, err
}

func (op *demoOP) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		demoJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{op.jwk}})
	})
	mux.HandleFunc("/authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("/userinfo", op.userinfo)
	mux.HandleFunc("GET /end_session", op.endSession)
	return mux
}

func (op *demoOP) discovery(w http.ResponseWriter, r *http.Request) {
	demoJSON(w, http.StatusOK, map[string]any{
		"issuer": op.issuer, "authorization_endpoint": op.issuer + "/authorize", "token_endpoint": op.issuer + "/token",
		"userinfo_endpoint": op.issuer + "/userinfo", "jwks_uri": op.issuer + "/jwks", "end_session_endpoint": op.issuer + "/end_session",
		"response_types_supported": []string{"code"}, "grant_types_supported": []string{"authorization_code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"ES256"},
		"scopes_supported": []string{"openid", "email", "profile", "groups"}, "code_challenge_methods_supported": []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic"}, "authorization_response_iss_parameter_supported": true,
		"claims_supported": []string{"sub", "email", "email_verified", "name", "given_name", "family_name", "preferred_username", "groups"},
	})
}

var demoOPLogin = template.Must(template.New("op").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo OpenID provider sign-in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;background:#f3f7f4;color:#1d2433;display:grid;place-items:center;min-height:90vh;margin:0}
form{background:#fff;border:1px solid #d2ddd5;border-radius:10px;padding:1.6rem 2rem;width:18rem}
select,input{display:block;width:100%;box-sizing:border-box;font:inherit;margin:.3rem 0 .9rem;padding:.4rem;border:1px solid #b9c6bc;border-radius:4px}
button{font:inherit;width:100%;padding:.5rem;border:0;border-radius:4px;background:#1f7a4d;color:#fff;cursor:pointer}
.toast{color:#b3261e}
</style></head><body>
<form method="post" action="/authorize"><h1>Demo OpenID provider</h1>
{{if .Toast}}<p class="toast">{{.Toast}}</p>{{end}}
<label>User <select name="user" autofocus>{{range .Users}}<option value="{{.Name}}"{{if eq .Name $.User}} selected{{end}}>{{.Name}} ({{.CommonName}})</option>{{end}}</select></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button>Sign in</button></form>
</body></html>`))

// demoAuthParams are the authorization request's parameters the login
// form carries back.
var demoAuthParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt"}

// authorize checks the authorization request, then signs the user in
// (GET: the form, or the OP's session; POST: the form's password) and
// sends the browser back with a code.
func (op *demoOP) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "unreadable request", http.StatusBadRequest)
		return
	}
	// An unknown client or redirect URI is told to the user, never
	// redirected to.
	if r.Form.Get("client_id") != demoOIDCClientID || r.Form.Get("redirect_uri") != op.redirect {
		http.Error(w, "unknown client_id or redirect_uri", http.StatusBadRequest)
		return
	}
	back := func(q url.Values) {
		q.Set("state", r.Form.Get("state"))
		q.Set("iss", op.issuer)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, op.redirect+"?"+q.Encode(), http.StatusSeeOther)
	}
	fail := func(code, desc string) { back(url.Values{"error": {code}, "error_description": {desc}}) }
	switch {
	case r.Form.Get("response_type") != "code":
		fail("unsupported_response_type", "only the code flow")
		return
	case !slices.Contains(strings.Fields(r.Form.Get("scope")), "openid"):
		fail("invalid_scope", "openid is required")
		return
	case r.Form.Get("code_challenge_method") != "S256" || len(r.Form.Get("code_challenge")) != 43:
		fail("invalid_request", "PKCE with S256 is required")
		return
	case r.Form.Get("nonce") == "":
		fail("invalid_request", "a nonce is required")
		return
	}
	prompt := strings.Fields(r.Form.Get("prompt"))
	if r.Method == http.MethodGet {
		if s, ok := op.session(r); ok && !slices.Contains(prompt, "login") {
			back(url.Values{"code": {op.grant(s, r.Form)}})
			return
		}
		if slices.Contains(prompt, "none") {
			fail("login_required", "not signed in")
			return
		}
		op.loginPage(w, r, http.StatusOK, "")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != op.issuer {
		http.Error(w, "cross-origin form refused", http.StatusForbidden)
		return
	}
	name := r.PostForm.Get("user")
	u, ok := op.users(name)
	if !ok || bcrypt.CompareHashAndPassword(u.HashedPassword, []byte(r.PostForm.Get("password"))) != nil {
		op.loginPage(w, r, http.StatusUnauthorized, "Wrong user or password.")
		return
	}
	s := &demoGrant{user: name, sid: demoRandom(), authTime: op.now(), expires: op.now().Add(demoOPSessionTTL)}
	cookie := demoRandom()
	op.mu.Lock()
	op.sessions[cookie] = s
	op.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: demoOPCookie, Value: cookie, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	back(url.Values{"code": {op.grant(s, r.Form)}})
}

func (op *demoOP) loginPage(w http.ResponseWriter, r *http.Request, status int, toast string) {
	params := map[string]string{}
	for _, k := range demoAuthParams {
		if v := r.Form.Get(k); v != "" {
			params[k] = v
		}
	}
	var users []samlidp.User
	for _, du := range demoUsers {
		if u, ok := op.users(du.Name); ok {
			users = append(users, u)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	demoOPLogin.Execute(w, map[string]any{"Users": users, "User": r.PostForm.Get("user"), "Params": params, "Toast": toast})
}

// session is the browser's live OP session.
func (op *demoOP) session(r *http.Request) (*demoGrant, bool) {
	c, err := r.Cookie(demoOPCookie)
	if err != nil {
		return nil, false
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	s := op.sessions[c.Value]
	return s, s != nil && op.now().Before(s.expires)
}

// grant issues a code for the session's user and the request's client.
func (op *demoOP) grant(s *demoGrant, form url.Values) string {
	code := demoRandom()
	op.mu.Lock()
	defer op.mu.Unlock()
	now := op.now()
	for _, m := range []map[string]*demoGrant{op.codes, op.tokens, op.sessions} {
		maps.DeleteFunc(m, func(_ string, g *demoGrant) bool { return now.After(g.expires) })
	}
	op.codes[code] = &demoGrant{user: s.user, nonce: form.Get("nonce"), challenge: form.Get("code_challenge"), redirect: form.Get("redirect_uri"),
		sid: s.sid, scope: form.Get("scope"), authTime: s.authTime, expires: now.Add(demoCodeTTL)}
	return code
}

// token exchanges a code, once, for an access token and an ID token: the
// client's secret (client_secret_basic), the code's redirect URI and the
// PKCE verifier must all match.
func (op *demoOP) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id) // RFC 6749 2.3.1: form-encoded, then Basic
	secret, _ = url.QueryUnescape(secret)
	if !ok || id != demoOIDCClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(op.secret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="demo-op"`)
		demoJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		demoJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	refuse := func(desc string) {
		demoJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": desc})
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	g := op.codes[r.PostForm.Get("code")]
	switch {
	case g == nil || op.now().After(g.expires):
		refuse("unknown or expired code")
		return
	case g.used:
		// A code presented twice was stolen: what it bought is revoked.
		delete(op.tokens, g.access)
		refuse("code already used")
		return
	}
	g.used = true // whatever follows, the code is spent
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case r.PostForm.Get("redirect_uri") != g.redirect:
		refuse("redirect_uri is not the authorization request's")
		return
	case len(r.PostForm.Get("code_verifier")) < 43 ||
		subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1:
		refuse("code_verifier does not match the code_challenge")
		return
	}
	u, ok := op.users(g.user)
	if !ok {
		refuse("no such user")
		return
	}
	now := op.now()
	g.access = demoRandom()
	op.tokens[g.access] = &demoGrant{user: g.user, scope: g.scope, expires: now.Add(demoTokenTTL)}
	claims := op.claims(u, g.scope)
	for k, v := range map[string]any{"iss": op.issuer, "aud": demoOIDCClientID, "iat": now.Unix(), "exp": now.Add(demoTokenTTL).Unix(),
		"nonce": g.nonce, "sid": g.sid, "auth_time": g.authTime.Unix(), "acr": "demo-password", "amr": []string{"pwd"}} {
		claims[k] = v
	}
	idToken, err := jwt.Signed(op.signer).Claims(claims).Serialize()
	if err != nil {
		demoJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	demoJSON(w, http.StatusOK, map[string]any{"access_token": g.access, "token_type": "Bearer",
		"expires_in": int(demoTokenTTL / time.Second), "id_token": idToken, "scope": g.scope})
}

// claims are the user's claims the scope grants: sub always.
func (op *demoOP) claims(u samlidp.User, scope string) map[string]any {
	c := map[string]any{"sub": "demo-" + u.Name}
	scopes := strings.Fields(scope)
	if slices.Contains(scopes, "email") {
		c["email"], c["email_verified"] = u.Email, true
	}
	if slices.Contains(scopes, "profile") {
		c["name"], c["given_name"], c["family_name"], c["preferred_username"] = u.CommonName, u.GivenName, u.Surname, u.Name
	}
	if slices.Contains(scopes, "groups") {
		c["groups"] = append([]string{}, u.Groups...)
	}
	return c
}

// userinfo answers with the claims of a live access token's user.
func (op *demoOP) userinfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	op.mu.Lock()
	g := op.tokens[tok]
	op.mu.Unlock()
	var u samlidp.User
	if ok = ok && g != nil && op.now().Before(g.expires); ok {
		u, ok = op.users(g.user)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		demoJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	demoJSON(w, http.StatusOK, op.claims(u, g.scope))
}

// endSession ends the browser's OP session and returns it to the client's
// registered post-logout URI; any other URI gets a page instead.
func (op *demoOP) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(demoOPCookie); err == nil {
		op.mu.Lock()
		delete(op.sessions, c.Value)
		op.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: demoOPCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	if q.Get("post_logout_redirect_uri") == op.afterLogout && (q.Get("client_id") == "" || q.Get("client_id") == demoOIDCClientID) {
		to := op.afterLogout
		if s := q.Get("state"); s != "" {
			to += "?" + url.Values{"state": {s}}.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("Signed out of the demo OpenID provider.\n"))
}

func demoJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func demoRandom() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
