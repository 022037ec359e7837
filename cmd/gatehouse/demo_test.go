package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
	_ "modernc.org/sqlite"
)

// syncBuffer collects a goroutine's output for the test to read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoLoginWithRealIdP runs `gatehouse demo` in-process and signs in
// through crewjam's samlidp the way a browser does: follow redirects, fill
// in the IdP's login form, post the auto-submitted response. It checks the
// upstream sees alice's headers, the record lands in SQLite, and a change at
// the IdP reaches the record on the next login.
// demo is a running `gatehouse demo`.
type demo struct {
	dir      string
	port     int
	password string // alice's
	logs     *syncBuffer
	banner   string
}

// startDemo runs the demo in-process on free ports until the test ends.
func startDemo(t *testing.T) demo {
	t.Helper()
	d, stop := runDemo(t, t.TempDir())
	t.Cleanup(func() { stop() })
	return d
}

// runDemo runs the demo in-process in dir on free ports; stop ends it (as
// Ctrl-C does) and returns what the demo returned.
func runDemo(t *testing.T, dir string) (demo, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs syncBuffer
	var port int
	done := make(chan error, 1)
	for attempt := 0; ; attempt++ {
		port = 20000 + rand.IntN(40000)
		go func() { done <- demoCommand(ctx, dir, port, &out, &logs) }()
		if waitFor(t, func() bool { return strings.Contains(out.String(), "demo is running") }, done) {
			break
		}
		if attempt == 5 {
			t.Fatalf("demo did not start: %s", logs.String())
		}
	}
	var once sync.Once
	var result error
	stop := func() error {
		once.Do(func() {
			cancel()
			result = <-done
			if t.Failed() {
				t.Logf("demo log:\n%s", logs.String())
			}
		})
		return result
	}
	pw := regexp.MustCompile(`alice / (\S+)`).FindStringSubmatch(out.String())
	if pw == nil {
		stop()
		t.Fatalf("no password in banner:\n%s", out.String())
	}
	return demo{dir: dir, port: port, password: pw[1], logs: &logs, banner: out.String()}, stop
}

func TestDemoLoginWithRealIdP(t *testing.T) {
	d := startDemo(t)
	dir, port := d.dir, d.port
	base := fmt.Sprintf("http://localhost:%d", port)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}

	page := demoLogin(t, client, base, "alice", d.password)
	for _, want := range []string{"Hello, alice", "alice@example.com", "Alice Archer", "X-Forwarded-Groups", "admins,staff"} {
		if !strings.Contains(page, want) {
			t.Errorf("upstream page lacks %q:\n%s", want, page)
		}
	}
	db, err := sql.Open("sqlite", "file:"+dir+"/gatehouse.db?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var email, display string
	var version int
	if err := db.QueryRow(`SELECT email, display_name, version FROM gatehouse_users WHERE user_name = 'alice'`).Scan(&email, &display, &version); err != nil {
		t.Fatalf("alice not in the store: %v", err)
	}
	if email != "alice@example.com" || display != "Alice Archer" {
		t.Errorf("stored alice = %q %q", email, display)
	}

	// Change alice at the IdP, sign out, sign in again.
	resp, err := client.PostForm(fmt.Sprintf("http://localhost:%d/demo/users", port+1), url.Values{
		"name": {"alice"}, "email": {"alice.archer@example.com"}, "common_name": {"Alice Archer"},
		"given_name": {"Alice"}, "surname": {"Archer"}, "groups": {"staff"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("edit alice: %v %v", err, resp)
	}
	resp.Body.Close()
	logout, _ := http.NewRequest(http.MethodPost, base+"/.gatehouse/logout", nil)
	logout.Header.Set("Origin", base) // logout is a same-origin POST
	resp, err = client.Do(logout)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page = demoLogin(t, client, base, "alice", d.password)
	if !strings.Contains(page, "alice.archer@example.com") || strings.Contains(page, "admins") {
		t.Errorf("upstream page after change:\n%s", page)
	}
	var version2 int
	if err := db.QueryRow(`SELECT email, version FROM gatehouse_users WHERE user_name = 'alice'`).Scan(&email, &version2); err != nil {
		t.Fatal(err)
	}
	if email != "alice.archer@example.com" || version2 != version+1 {
		t.Errorf("after change: email %q version %d (was %d)", email, version2, version)
	}
	var groups int
	db.QueryRow(`SELECT count(*) FROM gatehouse_memberships m JOIN gatehouse_users u ON u.id = m.user_id WHERE u.user_name = 'alice'`).Scan(&groups)
	if groups != 1 {
		t.Errorf("alice has %d memberships, want 1 (staff)", groups)
	}
}

// waitFor polls cond until it holds (true) or the demo exits (false).
func waitFor(t *testing.T, cond func() bool, done chan error) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Logf("demo exited: %v", err)
			return false
		default:
		}
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("demo did not start in time")
	return false
}

// demoLogin walks the browser flow and returns the upstream page.
func demoLogin(t *testing.T, client *http.Client, base, user, password string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Accept", "text/html")
	body, final := fetch(t, client, req)
	if strings.Contains(body, "Hello, ") {
		return body // still signed in
	}
	body, final = fetch(t, client, chooserLink(t, body, final, "demo"))
	action, fields := parseForm(t, body, final)
	fields.Set("user", user)
	fields.Set("password", password)
	body, final = post(t, client, action, fields)
	action, fields = parseForm(t, body, final)
	if fields.Get("SAMLResponse") == "" {
		t.Fatalf("IdP did not answer with a SAML response:\n%s", body)
	}
	body, _ = post(t, client, action, fields)
	return body
}

func post(t *testing.T, client *http.Client, action string, fields url.Values) (string, *url.URL) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return fetch(t, client, req)
}

func fetch(t *testing.T, client *http.Client, req *http.Request) (string, *url.URL) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d\n%s", req.Method, resp.Request.URL, resp.StatusCode, b)
	}
	return string(b), resp.Request.URL
}

// parseForm returns the first form's absolute action and its inputs.
func parseForm(t *testing.T, body string, at *url.URL) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var action string
	fields := url.Values{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			switch n.Data {
			case "form":
				if action == "" {
					action = attr["action"]
				}
			case "input":
				if attr["name"] != "" {
					fields.Set(attr["name"], attr["value"])
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if action == "" {
		t.Fatalf("no form in page:\n%s", body)
	}
	u, err := at.Parse(action)
	if err != nil {
		t.Fatal(err)
	}
	return u.String(), fields
}

// TestDemoMetrics: after a scripted login, SCIM calls and a refused
// request, the counters on the admin listener moved as they should.
func TestDemoMetrics(t *testing.T) {
	d := startDemo(t)
	base := demoTraffic(t, d)
	token, err := os.ReadFile(filepath.Join(d.dir, "scim-token"))
	if err != nil {
		t.Fatal(err)
	}
	scimCall := func(method, path, body, tok string) int {
		req, _ := http.NewRequest(method, base+"/.gatehouse/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := scimCall("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol"}`, string(token)); code != 201 {
		t.Fatalf("SCIM create: %d", code)
	}
	if code := scimCall("GET", "/Users?filter=userName%20eq%20%22carol%22", "", string(token)); code != 200 {
		t.Fatalf("SCIM list: %d", code)
	}
	if code := scimCall("GET", "/Users", "", "wrong-token"); code != 401 {
		t.Fatalf("SCIM with a wrong token: %d", code)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", d.port+3))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`gatehouse_logins_total{idp="demo",outcome="created"} 1`,
		`gatehouse_jit_total{result="created"} 1`,
		`gatehouse_jit_store_duration_seconds_count 1`,
		`gatehouse_saml_failures_total{reason="no_login_state"} 1`,
		`gatehouse_refusals_total{code="403",reason="no_login_state"} 1`,
		`gatehouse_refusals_total{code="403",reason="unknown_idp"} 1`,
		`gatehouse_scim_requests_total{code="201",op="users.create"} 1`,
		`gatehouse_scim_requests_total{code="200",op="users.list"} 1`,
		`gatehouse_scim_requests_total{code="401",op="auth"} 1`,
		`gatehouse_store_up 1`,
		`gatehouse_requests_total{code="200"}`,
		`gatehouse_upstream_duration_seconds_count`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// A login for an IdP that does not exist is no SAML message: any page
	// could make browsers send it (it is a refusal all the same).
	if strings.Contains(text, `gatehouse_saml_failures_total{reason="unknown_idp"}`) {
		t.Error("a login for an unknown IdP counted as a SAML failure")
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", d.port+3, path))
		if err != nil || resp.StatusCode != want {
			t.Errorf("admin %s: %v %v", path, err, resp)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

// TestDemoKeepsEditedConfig: the demo writes its config only when it is
// absent, so an edit survives a restart: an added authorization rule
// takes effect, JSON logs are written, and a different --port moves only
// the ports (the OpenID provider's issuer too). A stop (Ctrl-C) is a clean
// exit.
func TestDemoKeepsEditedConfig(t *testing.T) {
	dir := t.TempDir()
	d, stop := runDemo(t, dir)
	if err := stop(); err != nil {
		t.Fatalf("first demo stopped with %v, want a clean exit", err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(cfg), "  format: console", "  format: json", 1) + `authorization:
  - path: /closed/
    allow: deny
pages:
  app_name: Edited demo
`
	if !strings.Contains(edited, "format: json") {
		t.Fatalf("config has no log format to edit:\n%s", cfg)
	}
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}

	d2, stop2 := runDemo(t, dir)
	defer stop2()
	if d2.port == d.port {
		t.Log("both runs drew the same port; the port move is not exercised")
	}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://localhost:%d/closed/x", d2.port), nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Not available") || !strings.Contains(string(body), "Edited demo") {
		t.Errorf("the added deny rule: status %d\n%s", resp.StatusCode, body)
	}
	kept, _ := os.ReadFile(cfgPath)
	for _, want := range []string{"path: /closed/", "app_name: Edited demo", "format: json",
		fmt.Sprintf("listen: 127.0.0.1:%d", d2.port), fmt.Sprintf("upstream: http://127.0.0.1:%d", d2.port+2),
		fmt.Sprintf("admin_listen: 127.0.0.1:%d", d2.port+3), fmt.Sprintf("base_url: http://localhost:%d", d2.port),
		fmt.Sprintf("entity_id: http://localhost:%d/metadata", d2.port+1), fmt.Sprintf("issuer: http://localhost:%d", d2.port+4)} {
		if !strings.Contains(string(kept), want) {
			t.Errorf("config after the second start lacks %q:\n%s", want, kept)
		}
	}
	jsonLine := false
	for line := range strings.SplitSeq(d2.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "gatehouse serving" {
			jsonLine = true
		}
	}
	if !jsonLine {
		t.Errorf("log.format: json was not used:\n%s", d2.logs.String())
	}
	if err := stop2(); err != nil {
		t.Errorf("second demo stopped with %v", err)
	}
}

// TestDemoExitsZeroOnSignal: the built binary, sent SIGINT (Ctrl-C) or
// SIGTERM, drains and exits 0, so `make demo` does not end in "Error 1".
func TestDemoExitsZeroOnSignal(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			var cmd *exec.Cmd
			var out, logs syncBuffer
			started := false
			for attempt := 0; attempt < 5 && !started; attempt++ {
				cmd = exec.Command(bin, "demo", "--port", fmt.Sprint(20000+rand.IntN(40000)), "--dir", dir)
				out, logs = syncBuffer{}, syncBuffer{}
				cmd.Stdout, cmd.Stderr = &out, &logs
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				deadline := time.Now().Add(30 * time.Second)
				for !started && time.Now().Before(deadline) {
					select {
					case <-exited:
						deadline = time.Time{} // a port was taken: try another
					default:
						started = strings.Contains(out.String(), "demo is running")
						time.Sleep(20 * time.Millisecond)
					}
				}
				if !started {
					cmd.Process.Kill()
					continue
				}
				cmd.Process.Signal(sig)
				select {
				case err := <-exited:
					if code := cmd.ProcessState.ExitCode(); err != nil || code != 0 {
						t.Errorf("exit after %v: %v (code %d)\n%s", sig, err, code, logs.String())
					}
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					t.Fatalf("demo still running 30s after %v", sig)
				}
			}
			if !started {
				t.Fatalf("demo did not start:\n%s", logs.String())
			}
		})
	}
}

// demoTraffic signs alice in on the demo, asks for a login at an IdP that
// does not exist, and posts a response no login of this browser asked for
// (a refused SAML message), so that the login and refusal counters have
// series; it returns the demo's base URL.
func demoTraffic(t *testing.T, d demo) string {
	t.Helper()
	base := fmt.Sprintf("http://localhost:%d", d.port)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	demoLogin(t, client, base, "alice", d.password)
	if resp, err := client.Get(base + "/.gatehouse/login?idp=nosuch"); err == nil {
		resp.Body.Close()
	}
	if resp, err := http.PostForm(base+"/.gatehouse/saml/acs", url.Values{"SAMLResponse": {"PGZvby8+"}}); err == nil {
		resp.Body.Close()
	}
	return base
}

// chooserLink is the request for the chooser's link to the IdP idp.
func chooserLink(t *testing.T, body string, at *url.URL, idp string) *http.Request {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var href string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" {
			for _, a := range n.Attr {
				if u, err := url.Parse(a.Val); a.Key == "href" && err == nil && u.Query().Get("idp") == idp {
					href = a.Val
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if href == "" {
		t.Fatalf("no link to the IdP %s on the page:\n%s", idp, body)
	}
	u, err := at.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
	req.Header.Set("Accept", "text/html")
	return req
}

// demoOIDCLogin signs in through the demo OpenID provider the way a
// browser does (the chooser, the provider's form, the redirects) and
// returns the upstream page.
func demoOIDCLogin(t *testing.T, client *http.Client, base, user, password string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Accept", "text/html")
	body, final := fetch(t, client, req)
	if strings.Contains(body, "Hello, ") {
		return body // still signed in
	}
	body, final = fetch(t, client, chooserLink(t, body, final, "demo-oidc"))
	if strings.Contains(body, "Hello, ") {
		return body // the provider's session signed in by itself
	}
	action, fields := parseForm(t, body, final)
	fields.Set("user", user)
	fields.Set("password", password)
	body, _ = post(t, client, action, fields)
	return body
}

// TestDemoOIDCLogin signs in through the demo OpenID provider: alice's
// headers reach the application and her record lands in the same SQLite
// store, keyed by the provider's issuer and sub. Signing out ends the
// provider's session too (RP-initiated logout back to gatehouse's
// signed-out page), so the next login asks for the password again. The
// name alice, now held by the OpenID provider's user, is refused to the
// SAML IdP's alice.
func TestDemoOIDCLogin(t *testing.T) {
	d := startDemo(t)
	base := fmt.Sprintf("http://localhost:%d", d.port)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}

	page := demoOIDCLogin(t, client, base, "alice", d.password)
	for _, want := range []string{"Hello, alice", "alice@example.com", "Alice Archer", "X-Forwarded-Groups", "admins,staff"} {
		if !strings.Contains(page, want) {
			t.Errorf("upstream page lacks %q:\n%s", want, page)
		}
	}
	db, err := sql.Open("sqlite", "file:"+d.dir+"/gatehouse.db?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var email, display, idp, subject string
	if err := db.QueryRow(`SELECT u.email, u.display_name, i.idp, i.subject FROM gatehouse_users u
		JOIN gatehouse_identities i ON i.user_id = u.id WHERE u.user_name = 'alice'`).Scan(&email, &display, &idp, &subject); err != nil {
		t.Fatalf("alice not in the store: %v", err)
	}
	if email != "alice@example.com" || display != "Alice Archer" || idp != fmt.Sprintf("http://localhost:%d", d.port+4) || subject != "demo-alice" {
		t.Errorf("stored alice = %q %q, identity %q %q", email, display, idp, subject)
	}

	logout, _ := http.NewRequest(http.MethodPost, base+"/.gatehouse/logout", nil)
	logout.Header.Set("Origin", base)
	logout.Header.Set("Accept", "text/html")
	body, final := fetch(t, client, logout)
	if final.String() != base+"/.gatehouse/oidc/signed-out" || !strings.Contains(body, "Signed out") {
		t.Errorf("logout ended at %s:\n%s", final, body)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Accept", "text/html")
	body, final = fetch(t, client, req)
	body, _ = fetch(t, client, chooserLink(t, body, final, "demo-oidc"))
	if !strings.Contains(body, `name="password"`) {
		t.Errorf("after logout the provider signed in without a password:\n%s", body)
	}

	// The SAML IdP's alice: the name is taken by another IdP's user.
	jar2, _ := cookiejar.New(nil)
	client2 := &http.Client{Jar: jar2, Timeout: 10 * time.Second}
	req, _ = http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Accept", "text/html")
	body, final = fetch(t, client2, req)
	body, final = fetch(t, client2, chooserLink(t, body, final, "demo"))
	action, fields := parseForm(t, body, final)
	fields.Set("user", "alice")
	fields.Set("password", d.password)
	body, final = post(t, client2, action, fields)
	action, fields = parseForm(t, body, final)
	resp, err := client2.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "Sign-in failed") || strings.Contains(string(b), "Hello, alice") {
		t.Errorf("the SAML IdP's alice, name taken by the OpenID provider's: %d\n%s", resp.StatusCode, b)
	}
	if !strings.Contains(d.logs.String(), "conflict") {
		t.Errorf("the refusal is not logged as a conflict:\n%s", d.logs.String())
	}
}

// TestDemoOPRefusals: the demo OpenID provider, driven as gatehouse would
// drive it, issues a verifiable ID token and serves UserInfo, and refuses
// a wrong password, an authorization request without PKCE S256, a code
// presented twice (revoking what it bought), a missing or wrong PKCE
// verifier, another redirect URI and a wrong client secret.
func TestDemoOPRefusals(t *testing.T) {
	d := startDemo(t)
	op := fmt.Sprintf("http://localhost:%d", d.port+4)
	callback := fmt.Sprintf("http://localhost:%d/.gatehouse/oidc/callback", d.port)
	secret, err := os.ReadFile(filepath.Join(d.dir, "oidc-client-secret"))
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := oauth2.GenerateVerifier()
	authz := func(password string, edit func(url.Values)) (*http.Response, url.Values) {
		t.Helper()
		v := url.Values{"response_type": {"code"}, "client_id": {"gatehouse-demo"}, "redirect_uri": {callback}, "scope": {"openid email profile groups"},
			"state": {"st"}, "nonce": {"n0nce"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
			"user": {"alice"}, "password": {password}}
		if edit != nil {
			edit(v)
		}
		resp, err := noFollow.PostForm(op+"/authorize", v)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || resp.Header.Get("Location") == "" {
			return resp, nil
		}
		return resp, loc.Query()
	}
	code := func() string {
		t.Helper()
		resp, q := authz(d.password, nil)
		if resp.StatusCode != http.StatusSeeOther || q.Get("code") == "" || q.Get("state") != "st" || q.Get("iss") != op {
			t.Fatalf("authorize: %d %v", resp.StatusCode, q)
		}
		return q.Get("code")
	}
	exchange := func(code, verifier, redirect, secret string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
		if verifier != "" {
			form.Set("code_verifier", verifier)
		}
		req, _ := http.NewRequest(http.MethodPost, op+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("gatehouse-demo", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	userinfo := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, op+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := strings.TrimSpace(string(secret))

	t.Run("valid exchange", func(t *testing.T) {
		status, out := exchange(code(), verifier, callback, good)
		raw, _ := out["id_token"].(string)
		if status != http.StatusOK || raw == "" {
			t.Fatalf("token: %d %v", status, out)
		}
		resp, err := http.Get(op + "/jwks")
		if err != nil {
			t.Fatal(err)
		}
		var keys jose.JSONWebKeySet
		json.NewDecoder(resp.Body).Decode(&keys)
		resp.Body.Close()
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var std jwt.Claims
		var c struct {
			Nonce  string   `json:"nonce"`
			Email  string   `json:"email"`
			Name   string   `json:"name"`
			User   string   `json:"preferred_username"`
			Groups []string `json:"groups"`
		}
		if err := tok.Claims(keys, &std, &c); err != nil {
			t.Fatalf("id token does not verify with the provider's keys: %v", err)
		}
		if err := std.Validate(jwt.Expected{Issuer: op, AnyAudience: jwt.Audience{"gatehouse-demo"}, Subject: "demo-alice"}); err != nil {
			t.Error(err)
		}
		if c.Nonce != "n0nce" || c.Email != "alice@example.com" || c.Name != "Alice Archer" || c.User != "alice" || len(c.Groups) != 2 {
			t.Errorf("id token claims: %+v", c)
		}
		if s := userinfo(out["access_token"].(string)); s != http.StatusOK {
			t.Errorf("userinfo with the access token: %d", s)
		}
		if s := userinfo("not-a-token"); s != http.StatusUnauthorized {
			t.Errorf("userinfo with a made-up token: %d", s)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		if resp, q := authz("wrong-"+d.password, nil); resp.StatusCode != http.StatusUnauthorized || q != nil {
			t.Errorf("authorize: %d, redirect %v", resp.StatusCode, q)
		}
		if resp, q := authz(d.password, func(v url.Values) { v.Set("user", "mallory") }); resp.StatusCode != http.StatusUnauthorized || q != nil {
			t.Errorf("unknown user: %d, redirect %v", resp.StatusCode, q)
		}
	})
	t.Run("no PKCE", func(t *testing.T) {
		for name, edit := range map[string]func(url.Values){
			"no challenge": func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") },
			"plain":        func(v url.Values) { v.Set("code_challenge", verifier); v.Set("code_challenge_method", "plain") },
		} {
			if _, q := authz(d.password, edit); q.Get("error") != "invalid_request" || q.Get("code") != "" {
				t.Errorf("%s: %v", name, q)
			}
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		c := code()
		status, out := exchange(c, verifier, callback, good)
		if status != http.StatusOK {
			t.Fatalf("first exchange: %d %v", status, out)
		}
		if status, again := exchange(c, verifier, callback, good); status != http.StatusBadRequest || again["error"] != "invalid_grant" {
			t.Errorf("second exchange: %d %v", status, again)
		}
		if s := userinfo(out["access_token"].(string)); s != http.StatusUnauthorized {
			t.Errorf("the replayed code's access token still works: %d", s)
		}
	})
	t.Run("bad PKCE verifier", func(t *testing.T) {
		for name, v := range map[string]string{"missing": "", "wrong": oauth2.GenerateVerifier()} {
			c := code()
			if status, out := exchange(c, v, callback, good); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
				t.Errorf("%s verifier: %d %v", name, status, out)
			}
			if status, _ := exchange(c, verifier, callback, good); status != http.StatusBadRequest {
				t.Errorf("%s verifier: the code still works after a failed exchange: %d", name, status)
			}
		}
	})
	t.Run("other redirect URI", func(t *testing.T) {
		if status, out := exchange(code(), verifier, callback+"x", good); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("token: %d %v", status, out)
		}
		if resp, q := authz(d.password, func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }); resp.StatusCode != http.StatusBadRequest || q != nil {
			t.Errorf("authorize with an unregistered redirect URI: %d, redirect %v", resp.StatusCode, q)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		if status, out := exchange(code(), verifier, callback, good+"x"); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
			t.Errorf("token: %d %v", status, out)
		}
	})
}

// TestDemoAddsOIDCToOlderConfig: a demo dir from before the demo had an
// OpenID provider (its config names only the SAML IdP, and it has no
// client secret) gains the provider, with link_by on the SAML IdP's
// mapping, which SCIM with two IdPs needs; its edits are kept. Removed
// again from a dir that has the secret, the provider stays removed.
func TestDemoAddsOIDCToOlderConfig(t *testing.T) {
	dir := t.TempDir()
	_, stop := runDemo(t, dir)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The config as the demo wrote it before: no link_by, no demo-oidc.
	older := regexp.MustCompile(`(?s)\n *link_by: user_name[^\n]*\n  - name: demo-oidc\n.*?\nstore:`).ReplaceAllString(string(cfg), "\nstore:")
	older = strings.Replace(older, "  format: console", "  format: console # edited", 1)
	if strings.Contains(older, "demo-oidc") || strings.Contains(older, "link_by") {
		t.Fatalf("could not make an older config:\n%s", older)
	}
	if err := os.WriteFile(cfgPath, []byte(older), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "oidc-client-secret")); err != nil {
		t.Fatal(err)
	}
	d, stop := runDemo(t, dir)
	jar, _ := cookiejar.New(nil)
	page := demoOIDCLogin(t, &http.Client{Jar: jar, Timeout: 10 * time.Second}, fmt.Sprintf("http://localhost:%d", d.port), "bob", regexp.MustCompile(`bob / (\S+)`).FindStringSubmatch(d.banner)[1])
	if !strings.Contains(page, "Hello, bob") {
		t.Errorf("login through the added provider:\n%s", page)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	upgraded, _ := os.ReadFile(cfgPath)
	if n := strings.Count(string(upgraded), "link_by: user_name"); n != 2 || !strings.Contains(string(upgraded), "# edited") {
		t.Errorf("upgraded config (%d link_by):\n%s", n, upgraded)
	}

	// Removed by hand: kept removed.
	without := regexp.MustCompile(`(?s)\n  - name: demo-oidc\n.*?\nstore:`).ReplaceAllString(string(upgraded), "\nstore:")
	if err := os.WriteFile(cfgPath, []byte(without), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stop = runDemo(t, dir)
	defer stop()
	if kept, _ := os.ReadFile(cfgPath); strings.Contains(string(kept), "demo-oidc") {
		t.Errorf("the provider came back:\n%s", kept)
	}
}
