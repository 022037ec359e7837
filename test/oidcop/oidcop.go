// Package oidcop starts a real OpenID Provider for tests: panva's
// oidc-provider (from the npm registry, installed into this directory by
// `make test-deps`) run with Node.js, behind a Go TLS front on the
// loopback with a throwaway CA, so that the issuer is https.
//
// Logins need no browser and no form: the OP logs in the account that the
// authorization request's login_hint names (or Config.DefaultAccount when
// the request has none) and grants what the client asked for (Authorize
// adds the hint). An admin port on the loopback lets
// tests rotate the signing keys and make the OP send back-channel logout
// tokens; a Tamper hook on the front lets them change the OP's responses.
//
// A test that needs the OP fails when it cannot start; it never skips.
package oidcop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultACR is the acr of a login whose account lists no ACRs.
const DefaultACR = "urn:gatehouse:test:pwd"

// Config is what the OP serves.
type Config struct {
	Clients  []Client
	Accounts []Account
	// DefaultAccount is the Sub of the account logged in when an
	// authorization request has no login_hint, as a browser sent by an RP
	// that sends none has not. Empty means such a request is refused
	// (access_denied at the redirect_uri).
	DefaultAccount string
	// IDTokenTTL and CodeTTL default to oidc-provider's test settings
	// here: an hour and a minute.
	IDTokenTTL, CodeTTL time.Duration
}

// Client is a registered relying party. Every client uses the
// authorization code flow with PKCE (S256) and requires the sid in its
// ID tokens and logout tokens.
type Client struct {
	ID, Secret             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	// AuthMethod is the token endpoint's client authentication:
	// client_secret_basic (the default), client_secret_post or
	// private_key_jwt.
	AuthMethod string
	// JWKS holds the client's public keys ({"keys": [...]}) for
	// private_key_jwt.
	JWKS json.RawMessage
	// IDTokenAlg is id_token_signed_response_alg: RS256 (the default) or
	// ES256.
	IDTokenAlg string
}

// Account is a user the OP can log in.
type Account struct {
	Sub string
	// Claims are the user's claims (email, name, groups...); the scopes
	// openid, email, profile and groups decide which an RP receives.
	Claims map[string]any
	// ACRs are the acr values a login of this account may have; the first
	// requested one (acr_values) wins, else the first listed. Empty means
	// DefaultACR.
	ACRs []string
	// AMR is the login's amr claim, such as ["pwd"] or ["pwd", "mfa"].
	AMR []string
}

// Provider is one running OP.
type Provider struct {
	// Issuer is the https URL of the OP, as in its discovery document.
	Issuer string
	// CAFile holds the PEM certificate that signed the front's; CAPool
	// holds the same certificate.
	CAFile string
	CAPool *x509.CertPool
	// StartTime is how long the OP took from starting node to serving
	// its discovery document through the front.
	StartTime time.Duration

	dir    string
	admin  string // http://127.0.0.1:port of the admin listener
	front  *http.Server
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}
	mu     sync.Mutex
	tamper func(r *http.Request, status int, header http.Header, body []byte) []byte
	stop   sync.Once
}

// Start starts the OP in a temporary directory and stops it when the test
// ends. It fails the test when the OP cannot start.
func Start(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := New(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// dir is this package's source directory, which holds server.mjs and
// node_modules.
func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func findNode() (string, error) {
	for _, name := range []string{"node", "nodejs"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin, nil
		}
	}
	return "", errors.New("oidcop: node is not installed: run make test-deps (Debian packages nodejs and npm)")
}

// New starts the OP with its files in dir, which must exist. The caller
// stops it.
func New(dir string, cfg Config) (*Provider, error) {
	node, err := findNode()
	if err != nil {
		return nil, err
	}
	src := sourceDir()
	if _, err := os.Stat(filepath.Join(src, "node_modules", "oidc-provider", "package.json")); err != nil {
		return nil, fmt.Errorf("oidcop: oidc-provider is not installed in %s: run make test-deps (npm ci --prefix test/oidcop): %v", src, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	p := &Provider{
		Issuer: "https://" + ln.Addr().String(),
		dir:    dir,
		exited: make(chan struct{}),
	}
	cert, err := p.writeCerts()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("oidcop: certificates: %w", err)
	}
	conf, err := nodeConfig(p.Issuer, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	confFile := filepath.Join(dir, "config.json")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	began := time.Now()
	ports, err := p.startNode(node, src, confFile)
	if err != nil {
		ln.Close()
		p.Stop()
		return nil, err
	}
	p.admin = fmt.Sprintf("http://127.0.0.1:%d", ports.Admin)
	p.serveFront(ln, cert, ports.HTTP)
	if err := p.waitReady(); err != nil {
		p.Stop()
		return nil, err
	}
	p.StartTime = time.Since(began)
	return p, nil
}

type nodePorts struct {
	HTTP  int `json:"http"`
	Admin int `json:"admin"`
}

// startNode runs server.mjs and reads the ports it listens on from its
// first line of output.
func (p *Provider) startNode(node, src, confFile string) (nodePorts, error) {
	logf, err := os.Create(p.logPath())
	if err != nil {
		return nodePorts{}, fmt.Errorf("oidcop: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(node, filepath.Join(src, "server.mjs"), confFile)
	cmd.Dir = src
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nodePorts{}, fmt.Errorf("oidcop: %w", err)
	}
	// node exits when its standard input closes, so it does not outlive
	// a test binary that dies without calling Stop.
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nodePorts{}, fmt.Errorf("oidcop: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nodePorts{}, fmt.Errorf("oidcop: start node: %w", err)
	}
	p.cmd = cmd
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r)
		cmd.Wait()
		close(p.exited)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		return nodePorts{}, fmt.Errorf("oidcop: node printed no ports within 30s: %s", p.Log())
	}
	var ports nodePorts
	if err := json.Unmarshal([]byte(line), &ports); err != nil || ports.HTTP == 0 || ports.Admin == 0 {
		<-p.exitedOrTimeout(2 * time.Second)
		return nodePorts{}, fmt.Errorf("oidcop: node did not start (first line %q): %s", line, p.Log())
	}
	return ports, nil
}

func (p *Provider) exitedOrTimeout(d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		select {
		case <-p.exited:
		case <-time.After(d):
		}
		close(done)
	}()
	return done
}

// serveFront serves TLS on ln and proxies every request to node's plain
// http port, telling oidc-provider the scheme and host the client used.
func (p *Provider) serveFront(ln net.Listener, cert tls.Certificate, port int) {
	target := &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Del("Forwarded")
			pr.SetXForwarded()
		},
		ModifyResponse: p.modifyResponse,
	}
	p.front = &http.Server{
		Handler:           rp,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go p.front.ServeTLS(ln, "", "")
}

func (p *Provider) modifyResponse(resp *http.Response) error {
	p.mu.Lock()
	fn := p.tamper
	p.mu.Unlock()
	if fn == nil {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("oidcop: read response: %w", err)
	}
	body = fn(resp.Request, resp.StatusCode, resp.Header, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// Tamper sets fn to see and change every response of the OP before the
// client reads it: fn may edit header and returns the body to send (the
// body it got, to leave it alone). r is the request as proxied to
// oidc-provider; its URL.Path names the endpoint ("/token", "/jwks",
// "/me"). Tamper(nil) stops tampering.
func (p *Provider) Tamper(fn func(r *http.Request, status int, header http.Header, body []byte) []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = fn
}

func (p *Provider) waitReady() error {
	c := p.HTTPClient()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("oidcop: node exited: %s", p.Log())
		default:
		}
		resp, err := c.Get(p.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var doc struct {
				Issuer string `json:"issuer"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &doc) == nil && doc.Issuer == p.Issuer {
				return nil
			}
			err = fmt.Errorf("discovery answered %d: %.300s", resp.StatusCode, body)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("oidcop: discovery not served within 30s: %v: %s", last, p.Log())
}

// Stop ends the front and node.
func (p *Provider) Stop() {
	p.stop.Do(func() {
		if p.front != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			p.front.Shutdown(ctx)
			cancel()
		}
		if p.cmd == nil || p.cmd.Process == nil {
			return
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

func (p *Provider) logPath() string { return filepath.Join(p.dir, "node.log") }

// Log returns what node wrote on stderr (oidc-provider's warnings and
// errors, failed back-channel deliveries).
func (p *Provider) Log() string {
	b, _ := os.ReadFile(p.logPath())
	s := string(b)
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// HTTPClient returns a client that trusts the front's CA, with a cookie
// jar of its own: a browser's session at the OP lasts as long as the
// client.
func (p *Provider) HTTPClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: p.TLSConfig()},
		Jar:       jar,
		Timeout:   30 * time.Second,
	}
}

// TLSConfig trusts the front's CA.
func (p *Provider) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: p.CAPool, MinVersion: tls.VersionTLS12}
}

// nodeConfig is server.mjs's configuration: oidc-provider's client
// metadata, the accounts and the TTLs in seconds.
func nodeConfig(issuer string, cfg Config) ([]byte, error) {
	type account struct {
		Sub    string         `json:"sub"`
		Claims map[string]any `json:"claims"`
		ACRs   []string       `json:"acrs"`
		AMR    []string       `json:"amr"`
	}
	out := struct {
		Issuer         string           `json:"issuer"`
		Clients        []map[string]any `json:"clients"`
		Accounts       []account        `json:"accounts"`
		DefaultAccount string           `json:"default_account,omitempty"`
		TTL            map[string]int   `json:"ttl"`
	}{Issuer: issuer, Clients: []map[string]any{}, Accounts: []account{}, DefaultAccount: cfg.DefaultAccount, TTL: map[string]int{}}
	for _, c := range cfg.Clients {
		if c.ID == "" {
			return nil, errors.New("oidcop: a client has no ID")
		}
		m := map[string]any{
			"client_id":                  c.ID,
			"redirect_uris":              c.RedirectURIs,
			"response_types":             []string{"code"},
			"grant_types":                []string{"authorization_code"},
			"token_endpoint_auth_method": "client_secret_basic",
		}
		if c.Secret != "" {
			m["client_secret"] = c.Secret
		}
		if c.AuthMethod != "" {
			m["token_endpoint_auth_method"] = c.AuthMethod
		}
		if len(c.PostLogoutRedirectURIs) > 0 {
			m["post_logout_redirect_uris"] = c.PostLogoutRedirectURIs
		}
		if c.BackchannelLogoutURI != "" {
			m["backchannel_logout_uri"] = c.BackchannelLogoutURI
			m["backchannel_logout_session_required"] = true
		}
		if len(c.JWKS) > 0 {
			m["jwks"] = c.JWKS
		}
		if c.IDTokenAlg != "" {
			m["id_token_signed_response_alg"] = c.IDTokenAlg
		}
		out.Clients = append(out.Clients, m)
	}
	for _, a := range cfg.Accounts {
		if a.Sub == "" {
			return nil, errors.New("oidcop: an account has no Sub")
		}
		out.Accounts = append(out.Accounts, account(a))
	}
	if cfg.DefaultAccount != "" && !slices.ContainsFunc(cfg.Accounts, func(a Account) bool { return a.Sub == cfg.DefaultAccount }) {
		return nil, fmt.Errorf("oidcop: the default account %q is not among the accounts", cfg.DefaultAccount)
	}
	if cfg.IDTokenTTL > 0 {
		out.TTL["IdToken"] = int(cfg.IDTokenTTL / time.Second)
	}
	if cfg.CodeTTL > 0 {
		out.TTL["AuthorizationCode"] = int(cfg.CodeTTL / time.Second)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("oidcop: config: %w", err)
	}
	return b, nil
}

// adminCall posts body as JSON to the admin endpoint and decodes its
// answer into out.
func (p *Provider) adminCall(path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post(p.admin+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("oidcop: admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oidcop: admin %s: %d: %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("oidcop: admin %s: %w", path, err)
		}
	}
	return nil
}

// RotateKeys makes new RS256 and ES256 signing keys that sign from now on
// and returns their kids by algorithm. The old keys stay in the JWKS
// unless dropOld. Sessions, grants and unused codes survive the rotation.
func (p *Provider) RotateKeys(t testing.TB, dropOld bool) map[string]string {
	t.Helper()
	var out struct {
		Kids map[string]string `json:"kids"`
	}
	if err := p.adminCall("/rotate", map[string]bool{"drop_old": dropOld}, &out); err != nil {
		t.Fatal(err)
	}
	return out.Kids
}

// BackchannelLogout makes the OP send a logout token for sub and sid to
// the client's backchannel_logout_uri, and fails the test unless the RP
// answered 200 or 204.
func (p *Provider) BackchannelLogout(t testing.TB, clientID, sub, sid string) {
	t.Helper()
	if err := p.SendBackchannelLogout(clientID, sub, sid); err != nil {
		t.Fatal(err)
	}
}

// SendBackchannelLogout is BackchannelLogout returning the error, for
// tests of an RP that refuses the token.
func (p *Provider) SendBackchannelLogout(clientID, sub, sid string) error {
	return p.adminCall("/backchannel-logout", map[string]string{"client_id": clientID, "sub": sub, "sid": sid}, nil)
}

// Authorize logs sub in through the authorization URL that an RP built,
// as a browser without script would: it adds login_hint=sub when the URL
// has none, follows the OP's redirects with client (its cookie jar keeps
// the OP's session; nil means a new HTTPClient) and returns the first
// redirect that leaves the OP, the RP's redirect_uri with code and state
// or with an error, without following it.
func (p *Provider) Authorize(t testing.TB, client *http.Client, sub, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatalf("oidcop: authorization URL: %v", err)
	}
	if q := u.Query(); q.Get("login_hint") == "" && sub != "" {
		q.Set("login_hint", sub)
		u.RawQuery = q.Encode()
	}
	loc, err := p.follow(client, http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Logout goes through RP-initiated logout from endSessionURL (the OP's
// end_session_endpoint with id_token_hint, post_logout_redirect_uri...),
// confirming the OP's prompt as a person would, and returns where the OP
// sends the browser at the end: the post_logout_redirect_uri, or the OP's
// own "signed out" page.
func (p *Provider) Logout(t testing.TB, client *http.Client, endSessionURL string) string {
	t.Helper()
	loc, err := p.follow(client, http.MethodGet, endSessionURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

var (
	formTag     = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	formAction  = regexp.MustCompile(`(?i)\baction="([^"]*)"`)
	formMethod  = regexp.MustCompile(`(?i)\bmethod="post"`)
	hiddenInput = regexp.MustCompile(`(?i)<input\b[^>]*\btype="hidden"[^>]*>`)
	inputName   = regexp.MustCompile(`(?i)\bname="([^"]*)"`)
	inputValue  = regexp.MustCompile(`(?i)\bvalue="([^"]*)"`)
)

// postForm finds the page's first POST form and what submitting it sends:
// its hidden inputs, plus logout=yes on the logout confirmation (the
// button a person presses). ok is false when the page has none.
func postForm(page []byte) (action string, values url.Values, ok bool) {
	m := formTag.FindSubmatch(page)
	if m == nil || !formMethod.Match(m[1]) {
		return "", nil, false
	}
	a := formAction.FindSubmatch(m[1])
	if a == nil {
		return "", nil, false
	}
	values = url.Values{}
	for _, in := range hiddenInput.FindAll(m[2], -1) {
		n, v := inputName.FindSubmatch(in), inputValue.FindSubmatch(in)
		if n == nil {
			continue
		}
		val := ""
		if v != nil {
			val = htmlUnescape(string(v[1]))
		}
		values.Add(htmlUnescape(string(n[1])), val)
	}
	if strings.Contains(string(m[1]), `id="op.logoutForm"`) && values.Get("logout") == "" {
		values.Set("logout", "yes")
	}
	return htmlUnescape(string(a[1])), values, true
}

// follow sends the request and follows redirects and the OP's forms
// (the logout confirmation, the end of the previous session when another
// account logs in) while they stay on the OP; it returns the first
// location off the OP, or the URL of the OP's "signed out" page.
func (p *Provider) follow(client *http.Client, method, target string, form url.Values) (string, error) {
	if client == nil {
		client = p.HTTPClient()
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.Jar == nil {
		c.Jar, _ = cookiejar.New(nil)
	}
	op, _ := url.Parse(p.Issuer)
	for range 20 {
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = c.PostForm(target, form)
		} else {
			resp, err = c.Get(target)
		}
		if err != nil {
			return "", fmt.Errorf("oidcop: %s %s: %w", method, target, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := resp.Location()
			if err != nil {
				return "", fmt.Errorf("oidcop: %s %s: %d without a location", method, target, resp.StatusCode)
			}
			if next.Scheme != op.Scheme || next.Host != op.Host {
				return next.String(), nil
			}
			method, target, form = http.MethodGet, next.String(), nil
		case resp.StatusCode == http.StatusOK:
			action, values, ok := postForm(body)
			if !ok {
				if strings.HasPrefix(resp.Request.URL.Path, "/session/end") {
					return target, nil // the OP's own "signed out" page
				}
				return "", fmt.Errorf("oidcop: %s %s: 200 with no redirect and no form: %.500s", method, target, body)
			}
			next, err := resp.Request.URL.Parse(action)
			if err != nil {
				return "", fmt.Errorf("oidcop: form action %q: %w", action, err)
			}
			if next.Scheme != op.Scheme || next.Host != op.Host {
				return "", fmt.Errorf("oidcop: the OP posts a form to %s (response_mode=form_post?); Authorize follows redirects only", next)
			}
			method, target, form = http.MethodPost, next.String(), values
		default:
			return "", fmt.Errorf("oidcop: %s %s: %d: %.500s", method, target, resp.StatusCode, body)
		}
	}
	return "", fmt.Errorf("oidcop: more than 20 steps from %s", target)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#x2F;", "/", "&#x3D;", "=", "&quot;", `"`, "&#39;", "'").Replace(s)
}

// writeCerts makes a throwaway CA and the front's certificate for
// 127.0.0.1 and localhost, and writes the CA to CAFile.
func (p *Provider) writeCerts() (tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test OP CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	p.CAFile = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	p.CAPool = x509.NewCertPool()
	p.CAPool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}
