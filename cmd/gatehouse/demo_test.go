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

	"golang.org/x/net/html"
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
// the ports. A stop (Ctrl-C) is a clean exit.
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
		fmt.Sprintf("entity_id: http://localhost:%d/metadata", d2.port+1)} {
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
