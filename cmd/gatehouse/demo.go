package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crewjam/saml/samlidp"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"gatehouse/proxy"
)

// The demo runs four servers on loopback: gatehouse on port (and its
// admin listener on port+3), crewjam's samlidp as the SAML identity
// provider on port+1, an application that echoes the headers it receives
// on port+2, and a demo OpenID provider (demo_oidc.go) on port+4 with the
// same users. Gatehouse reads a config file the demo writes when it is
// absent, through the same code path as `gatehouse serve`; an edited file
// is kept (only its ports follow --port).

// demoUsers are the demo IdP's accounts.
var demoUsers = []samlidp.User{
	{Name: "alice", Email: "alice@example.com", CommonName: "Alice Archer", GivenName: "Alice", Surname: "Archer", Groups: []string{"staff", "admins"}},
	{Name: "bob", Email: "bob@example.com", CommonName: "Bob Baker", GivenName: "Bob", Surname: "Baker", Groups: []string{"staff"}},
}

const demoConfig = `# Written by "gatehouse demo" because it was absent. Edit it and restart the
# demo: it is kept (a different --port moves only its ports). Delete it to
# start afresh. It is an ordinary config: "gatehouse serve --config
# {{.Dir}}/gatehouse.yaml" reads it the same way.
version: 1
listen: 127.0.0.1:{{.Port}}
admin_listen: 127.0.0.1:{{.AdminPort}}   # /metrics, /healthz, /readyz
base_url: http://localhost:{{.Port}}
upstream: http://127.0.0.1:{{.AppPort}}
log:
  format: console
cookie:
  insecure: true          # plain http on localhost only; never in production
  key_files: [{{.Dir}}/cookie.key]
idps:
  - name: demo
    display_name: Demo identity provider
    entity_id: {{.IdPURL}}/metadata
    metadata_file: {{.Dir}}/idp-metadata.xml
    mapping:
      # samlidp sends a transient NameID, so the match key is the uid attribute.
      key_attribute: urn:oid:0.9.2342.19200300.100.1.1
      user_name: urn:oid:0.9.2342.19200300.100.1.1
      email: urn:oid:0.9.2342.19200300.100.1.3
      display_name: urn:oid:2.5.4.3
      given_name: urn:oid:2.5.4.42
      family_name: urn:oid:2.5.4.4
      groups: urn:oid:1.3.6.1.4.1.5923.1.1.1.1
      link_by: user_name   # SCIM serves both IdPs: a SCIM-made user's first login finds it by name
  - name: demo-oidc
    display_name: Demo OpenID provider
    kind: oidc
    issuer: {{.OPURL}}
    client_id: gatehouse-demo
    client_secret_file: {{.Dir}}/oidc-client-secret
    scopes: [openid, email, profile, groups]
    mapping:
      # The match key is the ID token's sub (demo-<name>), stable per user.
      user_name: preferred_username
      email: email
      display_name: name
      given_name: given_name
      family_name: family_name
      groups: groups
      link_by: user_name
store:
  sqlite:
    path: {{.Dir}}/gatehouse.db
scim:
  token_files: [{{.Dir}}/scim-token]
`

func demoCommand(ctx context.Context, dir string, port int, stdout, stderr io.Writer) error {
	if port < 1 || port > 65531 {
		return errors.New("demo: --port must leave room for four more ports (the IdP, the application, the admin listener and the OpenID provider)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	idpURL := fmt.Sprintf("http://localhost:%d", port+1)
	opURL := fmt.Sprintf("http://localhost:%d", port+4)
	idpKey, idpCert, err := demoKeyPair(filepath.Join(dir, "idp.key"), filepath.Join(dir, "idp.crt"))
	if err != nil {
		return fmt.Errorf("demo idp key: %w", err)
	}
	if err := demoSecret(filepath.Join(dir, "scim-token"), hex.EncodeToString); err != nil {
		return fmt.Errorf("demo scim token: %w", err)
	}
	if err := demoCookieKey(filepath.Join(dir, "cookie.key")); err != nil {
		return fmt.Errorf("demo cookie key: %w", err)
	}
	// A demo dir without the OpenID provider's client secret is from
	// before the demo had one: its config gains the provider once.
	secretPath := filepath.Join(dir, "oidc-client-secret")
	_, err = os.Stat(secretPath)
	addOIDC := errors.Is(err, fs.ErrNotExist)
	if err := demoSecret(secretPath, base64.RawURLEncoding.EncodeToString); err != nil {
		return fmt.Errorf("demo oidc client secret: %w", err)
	}
	opSecret, err := os.ReadFile(secretPath)
	if err != nil {
		return fmt.Errorf("demo oidc client secret: %w", err)
	}

	// The config: written when absent, else kept as edited (its ports
	// follow --port), then read back like any other.
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	fresh, err := demoWriteConfig(cfgPath, dir, port, idpURL, opURL, addOIDC)
	if err != nil {
		return err
	}
	f, err := loadConfig(cfgPath)
	if err != nil {
		return fmt.Errorf("%w\n(fix %s, or delete it to start afresh)", err, cfgPath)
	}
	logger, err := newLogger(f.Log, stderr)
	if err != nil {
		return err
	}
	defer logger.Sync()
	if !fresh {
		logger.Info("demo: using the existing config (delete it to start afresh)", zap.String("config", cfgPath))
	}

	// The identity provider.
	u, _ := url.Parse(idpURL)
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: idpKey, Certificate: idpCert, Store: &samlidp.MemoryStore{},
		Logger: zap.NewStdLog(logger.Named("demo-idp")), LoginFormTemplate: idpLoginForm})
	if err != nil {
		return fmt.Errorf("demo idp: %w", err)
	}
	passwords := map[string]string{}
	for _, du := range demoUsers {
		pw := demoPassword()
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			return err
		}
		du.HashedPassword = hash
		if err := idp.Store.Put("/users/"+du.Name, du); err != nil {
			return err
		}
		passwords[du.Name] = pw
	}
	meta, err := xml.MarshalIndent(idp.IDP.Metadata(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "idp-metadata.xml"), meta, 0o600); err != nil {
		return err
	}
	if err := f.prepare(os.Getenv); err != nil {
		return fmt.Errorf("%s:\n%w\n(fix it, or delete it to start afresh)", cfgPath, err)
	}
	// The OpenID provider's one client is gatehouse, at its base URL.
	base := strings.TrimSuffix(f.Session.BaseURL, "/") + f.Proxy.Prefix
	op, err := newDemoOP(opURL, strings.TrimSpace(string(opSecret)), base+proxy.PathOIDCCallback, base+proxy.PathOIDCSignedOut,
		func(name string) (samlidp.User, bool) {
			var u samlidp.User
			return u, slices.ContainsFunc(demoUsers, func(d samlidp.User) bool { return d.Name == name }) && idp.Store.Get("/users/"+name, &u) == nil
		})
	if err != nil {
		return fmt.Errorf("demo openid provider: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	idpSrv := &http.Server{Handler: demoIdPHandler(idp, idpURL), ReadHeaderTimeout: 10 * time.Second}
	storePath := "(not SQLite)"
	if f.Store.SQLite != nil {
		storePath = f.Store.SQLite.Path
	}
	appSrv := &http.Server{Handler: demoApp(idpURL, storePath), ReadHeaderTimeout: 10 * time.Second}
	for _, s := range []struct {
		srv  *http.Server
		port int
	}{{idpSrv, port + 1}, {appSrv, port + 2}, {&http.Server{Handler: op.handler(), ReadHeaderTimeout: 10 * time.Second}, port + 4}} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err != nil {
			return fmt.Errorf("demo: %w (choose other ports with --port)", err)
		}
		go func() { errc <- s.srv.Serve(ln) }()
		defer s.srv.Close()
	}
	go func() {
		errc <- serve(ctx, f, logger, func(addr string) {
			if err := registerSP(idp, addr, f.Proxy.Prefix); err != nil {
				errc <- err
				return
			}
			printBanner(stdout, port, idpURL, opURL, dir, passwords)
		})
	}()
	select {
	case err := <-errc:
		cancel()
		return err
	case <-ctx.Done():
		// Ctrl-C or SIGTERM: gatehouse drains and returns; a stop asked
		// for is a clean exit.
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// demoWriteConfig writes the demo's config when it is absent and reports
// that it did. An existing one is kept as edited; when it was written for
// other ports (another --port), only its ports move: listen, admin_listen,
// base_url, upstream, the demo IdP's entity_id and the demo OpenID
// provider's issuer. addOIDC adds the demo OpenID provider to a config
// from before the demo had one (with link_by on every IdP's mapping, which
// SCIM with several IdPs requires).
func demoWriteConfig(path, dir string, port int, idpURL, opURL string, addOIDC bool) (fresh bool, err error) {
	var cfg bytes.Buffer
	template.Must(template.New("cfg").Parse(demoConfig)).Execute(&cfg, map[string]any{
		"Dir": filepath.ToSlash(dir), "Port": port, "AppPort": port + 2, "AdminPort": port + 3, "IdPURL": idpURL, "OPURL": opURL})
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, os.WriteFile(path, cfg.Bytes(), 0o600)
	}
	if err != nil {
		return false, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(old, &doc); err != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return false, fmt.Errorf("%s: not a YAML mapping (fix it, or delete it to start afresh): %v", path, err)
	}
	root := doc.Content[0]
	idps := demoValue(root, "idps")
	if idps != nil && idps.Kind != yaml.SequenceNode {
		idps = nil
	}
	named := func(seq *yaml.Node, name string) *yaml.Node {
		for _, in := range seq.Content {
			if n := demoValue(in, "name"); n != nil && n.Value == name {
				return in
			}
		}
		return nil
	}
	changed := false
	if addOIDC && idps != nil && named(idps, "demo-oidc") == nil {
		var tmpl yaml.Node
		if err := yaml.Unmarshal(cfg.Bytes(), &tmpl); err != nil {
			return false, err
		}
		idps.Content = append(idps.Content, named(demoValue(tmpl.Content[0], "idps"), "demo-oidc"))
		for _, in := range idps.Content {
			m := demoValue(in, "mapping")
			if m == nil && in.Kind == yaml.MappingNode {
				m = &yaml.Node{Kind: yaml.MappingNode}
				in.Content = append(in.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "mapping"}, m)
			}
			if m != nil && m.Kind == yaml.MappingNode && demoValue(m, "link_by") == nil {
				m.Style = 0 // block style, as the rest of the file
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "link_by"},
					&yaml.Node{Kind: yaml.ScalarNode, Value: "user_name"})
			}
		}
		changed = true
	}
	if listen := demoValue(root, "listen"); listen != nil {
		if host, p, err := net.SplitHostPort(listen.Value); err == nil && p != strconv.Itoa(port) {
			setPort := func(n *yaml.Node, port int) {
				if n == nil {
					return
				}
				if u, err := url.Parse(n.Value); err == nil && u.Host != "" {
					u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
					n.Value = u.String()
				} else if h, _, err := net.SplitHostPort(n.Value); err == nil {
					n.Value = net.JoinHostPort(h, strconv.Itoa(port))
				}
			}
			listen.Value = net.JoinHostPort(host, strconv.Itoa(port))
			setPort(demoValue(root, "admin_listen"), port+3)
			setPort(demoValue(root, "base_url"), port)
			setPort(demoValue(root, "upstream"), port+2)
			if idps != nil {
				if e := demoValue(named(idps, "demo"), "entity_id"); e != nil {
					e.Value = idpURL + "/metadata"
				}
				if e := demoValue(named(idps, "demo-oidc"), "issuer"); e != nil {
					e.Value = opURL
				}
			}
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return false, err
	}
	return false, os.WriteFile(path, out.Bytes(), 0o600)
}

// demoValue is the value node of key in a mapping node; nil when absent.
func demoValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func printBanner(w io.Writer, port int, idpURL, opURL, dir string, passwords map[string]string) {
	fmt.Fprintf(w, `
gatehouse demo is running

  Open           http://localhost:%d/   (the chooser offers the demo SAML IdP and the demo OpenID provider)
  Sign in as     alice / %s   or   bob / %s   (the same people at both)
  Edit users     %s/demo/users   (both providers; then sign out and in again)
  OpenID         %s/.well-known/openid-configuration
  User store     %s
  Config         %s   (edit it and restart; delete it to start afresh)
  SCIM           http://localhost:%d/.gatehouse/scim/v2   (bearer token in %s)
  Metrics        http://127.0.0.1:%d/metrics

A name signed in through one provider is refused through the other:
gatehouse never hands one IdP's user to another.

Press Ctrl-C to stop.

`, port, passwords["alice"], passwords["bob"], idpURL, opURL, filepath.Join(dir, "gatehouse.db"), filepath.Join(dir, "gatehouse.yaml"),
		port, filepath.Join(dir, "scim-token"), port+3)
}

// registerSP gives the demo IdP gatehouse's SP metadata, fetched from the
// running gatehouse like an administrator would.
func registerSP(idp *samlidp.Server, addr, prefix string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + prefix + "saml/metadata")
	if err != nil {
		return fmt.Errorf("demo: fetch sp metadata: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo: fetch sp metadata: status %d: %v", resp.StatusCode, err)
	}
	rec := httptest.NewRecorder()
	idp.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/services/gatehouse", bytes.NewReader(body)))
	if rec.Code != http.StatusNoContent {
		return fmt.Errorf("demo: register sp with idp: status %d", rec.Code)
	}
	return nil
}

// demoIdPHandler exposes the IdP's SAML endpoints and the user editor, and
// nothing of samlidp's unauthenticated admin API.
func demoIdPHandler(idp *samlidp.Server, idpURL string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metadata", idp)
	mux.Handle("/sso", idp)
	mux.Handle("POST /login", idp)
	editor := &userEditor{idp: idp, origin: idpURL}
	mux.HandleFunc("GET /demo/users", editor.list)
	mux.HandleFunc("POST /demo/users", editor.update)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/demo/users", http.StatusFound)
	})
	return mux
}

type userEditor struct {
	idp    *samlidp.Server
	origin string
}

// idpLoginForm posts the credentials back to the SSO endpoint with the
// pending request (samlidp's default form posts to an endpoint that only
// answers with JSON).
var idpLoginForm = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo IdP sign-in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;background:#f4f6fa;color:#1d2433;display:grid;place-items:center;min-height:90vh;margin:0}
form{background:#fff;border:1px solid #d5dae3;border-radius:10px;padding:1.6rem 2rem;width:18rem}
input{display:block;width:100%;box-sizing:border-box;font:inherit;margin:.3rem 0 .9rem;padding:.4rem;border:1px solid #b9c0cc;border-radius:4px}
button{font:inherit;width:100%;padding:.5rem;border:0;border-radius:4px;background:#2952cc;color:#fff;cursor:pointer}
.toast{color:#b3261e}
</style></head><body>
<form method="post" action="/sso"><h1>Demo IdP</h1>
{{if .Toast}}<p class="toast">{{.Toast}}</p>{{end}}
<label>User <input name="user" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<button>Sign in</button></form>
</body></html>`))

var editorPage = template.Must(template.New("users").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo IdP users</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:46rem;padding:0 1rem;color:#1d2433}
fieldset{border:1px solid #d5dae3;border-radius:8px;margin:0 0 1.2rem;padding:1rem}
label{display:grid;grid-template-columns:9rem 1fr;gap:.5rem;margin:.3rem 0}
input{font:inherit;padding:.3rem .4rem;border:1px solid #b9c0cc;border-radius:4px}
button{font:inherit;padding:.4rem 1rem;border:0;border-radius:4px;background:#2952cc;color:#fff;cursor:pointer}
.note{color:#5a6478}
</style></head><body>
<h1>Demo identity provider: users</h1>
<p class="note">Saving signs the user out of this IdP, so the next sign-in at gatehouse sends the new attributes.</p>
{{if .Saved}}<p><strong>Saved {{.Saved}}.</strong> Sign out of the application and sign in again to see the change.</p>{{end}}
{{range .Users}}<form method="post" action="/demo/users"><fieldset><legend><strong>{{.Name}}</strong></legend>
<input type="hidden" name="name" value="{{.Name}}">
<label>Email <input name="email" value="{{.Email}}"></label>
<label>Display name <input name="common_name" value="{{.CommonName}}"></label>
<label>Given name <input name="given_name" value="{{.GivenName}}"></label>
<label>Family name <input name="surname" value="{{.Surname}}"></label>
<label>Groups <input name="groups" value="{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}"></label>
<button>Save</button></fieldset></form>{{end}}
</body></html>`))

func (e *userEditor) list(w http.ResponseWriter, r *http.Request) {
	var users []samlidp.User
	for _, du := range demoUsers {
		var u samlidp.User
		if e.idp.Store.Get("/users/"+du.Name, &u) == nil {
			users = append(users, u)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	editorPage.Execute(w, map[string]any{"Users": users, "Saved": r.URL.Query().Get("saved")})
}

func (e *userEditor) update(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && o != e.origin {
		http.Error(w, "cross-origin form refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	name := r.PostFormValue("name")
	var u samlidp.User
	if !slices.ContainsFunc(demoUsers, func(d samlidp.User) bool { return d.Name == name }) || e.idp.Store.Get("/users/"+name, &u) != nil {
		http.Error(w, "unknown user", http.StatusBadRequest)
		return
	}
	u.Email, u.CommonName = r.PostFormValue("email"), r.PostFormValue("common_name")
	u.GivenName, u.Surname = r.PostFormValue("given_name"), r.PostFormValue("surname")
	u.Groups = nil
	for g := range strings.SplitSeq(r.PostFormValue("groups"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			u.Groups = append(u.Groups, g)
		}
	}
	if err := e.idp.Store.Put("/users/"+name, u); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// samlidp copies attributes into its sessions; end them so the next
	// login carries the new values.
	if ids, err := e.idp.Store.List("/sessions/"); err == nil {
		for _, id := range ids {
			e.idp.Store.Delete("/sessions/" + id)
		}
	}
	http.Redirect(w, r, "/demo/users?saved="+url.QueryEscape(name), http.StatusSeeOther)
}

var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo application</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:52rem;padding:0 1rem;color:#1d2433}
table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e6ec;vertical-align:top}
th{width:16rem}td{font-family:ui-monospace,monospace;font-size:13px;word-break:break-all}
.id th{color:#2952cc}.id{background:#eef3ff}
nav a{margin-right:1rem}.note{color:#5a6478}
</style></head><body>
<h1>Hello, {{or .User "stranger"}}</h1>
<p>This page is the application behind gatehouse. It trusts the identity headers gatehouse sets and shows every header it received.</p>
<nav><a href="/.gatehouse/logout">Sign out</a><a href="{{.IdPURL}}/demo/users">Edit users at the IdP</a></nav>
<h2>Identity headers, set by gatehouse from the user store</h2>
<table class="id">{{range .Identity}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{else}}<tr><td>none</td></tr>{{end}}</table>
<h2>Every other header</h2>
<table>{{range .Others}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>{{end}}</table>
<p class="note">The provisioned record is in the SQLite file <code>{{.Store}}</code>.
A <code>session</code> or <code>demo_op</code> cookie above is the demo IdP's or the demo OpenID provider's own: they run on localhost too, and browsers share cookies across ports.
Gatehouse's cookies never reach the application.</p>
</body></html>`))

const demoLogo = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">` +
	`<rect width="64" height="64" rx="14" fill="#2458c6"/><path d="M16 50V26l16-12 16 12v24H38V36H26v14z" fill="#fff"/></svg>`

// demoApp stands for the legacy application behind gatehouse.
func demoApp(idpURL, storePath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/demo-logo.svg" {
			// A logo for pages.logo_url (list it in public_paths).
			w.Header().Set("Content-Type", "image/svg+xml")
			w.Write([]byte(demoLogo))
			return
		}
		type row struct{ Name, Value string }
		var identity, others []row
		for name, vals := range r.Header {
			rw := row{name, strings.Join(vals, " | ")}
			switch name {
			case "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Forwarded-Display-Name":
				identity = append(identity, rw)
			default:
				others = append(others, rw)
			}
		}
		byName := func(a, b row) int { return strings.Compare(a.Name, b.Name) }
		slices.SortFunc(identity, byName)
		slices.SortFunc(others, byName)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		appPage.Execute(w, map[string]any{"User": r.Header.Get("X-Forwarded-User"), "Identity": identity, "Others": others,
			"IdPURL": idpURL, "Store": storePath})
	})
}

func demoPassword() string {
	var b [9]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// demoKeyPair loads the demo IdP's signing key pair, creating it on first
// use.
func demoKeyPair(keyPath, certPath string) (*rsa.PrivateKey, *x509.Certificate, error) {
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		if k, ok := pair.PrivateKey.(*rsa.PrivateKey); ok && pair.Leaf != nil && time.Now().Before(pair.Leaf.NotAfter) {
			return k, pair.Leaf, nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "gatehouse demo idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// demoCookieKey creates the demo's session cookie key on first use, so
// sessions survive a restart of the demo.
func demoCookieKey(path string) error { return demoSecret(path, base64.StdEncoding.EncodeToString) }

// demoSecret writes 32 random bytes, encoded, to path unless it exists.
func demoSecret(path string, encode func([]byte) string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	var k [32]byte
	rand.Read(k[:])
	return os.WriteFile(path, []byte(encode(k[:])+"\n"), 0o600)
}
