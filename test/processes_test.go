package test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/test/redistest"
)

// buildGatehouse builds the gatehouse binary into a temporary directory.
func buildGatehouse(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "gatehouse/cmd/gatehouse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// replica is one gatehouse process.
type replica struct {
	name, base, admin string
	// host is base_url's host, which a load balancer in front of the
	// replicas sends as Host (gatehouse redirects any other host there).
	host    string
	log     string // the process's output
	process *os.Process
}

// startReplica runs `gatehouse serve` with the config ($PORT and $ADMIN
// stand for its ports) and waits until it is ready; port 0 picks a free one.
func startReplica(t testing.TB, bin, name, config string, env []string, port int) *replica {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	adminPort := freePort(t)
	config = strings.NewReplacer("$PORT", fmt.Sprint(port), "$ADMIN", fmt.Sprint(adminPort)).Replace(config)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), log: filepath.Join(t.TempDir(), name+".log")}
	if m := regexp.MustCompile(`(?m)^base_url: https?://(\S+)$`).FindStringSubmatch(config); m != nil {
		r.host = m[1]
	}
	out, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.process = cmd.Process
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("%s after SIGTERM: %v, want a clean exit", name, waitErr)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop within 15s of SIGTERM", name)
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, r.output())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start:\n%s", name, r.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 30s:\n%s", name, r.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *replica) output() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

// commandCalls is how many times Redis has run each command.
func commandCalls(t *testing.T, addr string) map[string]int {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		// cmdstat_get:calls=3,usec=...
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		calls[name] = n
	}
	if len(calls) == 0 {
		t.Fatalf("no command stats in INFO:\n%s", info)
	}
	return calls
}

// noRedirects is a client that shows every response as it is.
var noRedirects = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// startLoginAt asks r for a page as a browser would and returns the
// AuthnRequest ID, the RelayState and the login-state cookie.
func startLoginAt(t *testing.T, r *replica) (id, relay string, pending *http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.base+"/home", nil)
	req.Host = r.host
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), idpSSO) {
		t.Fatalf("%s: start login: %d %q", r.name, resp.StatusCode, loc)
	}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "gatehouse_login_") {
			pending = c
		}
	}
	if pending == nil {
		t.Fatalf("%s: no login-state cookie", r.name)
	}
	root := decodeRedirectRequest(t, loc)
	return root.SelectAttrValue("ID", ""), loc.Query().Get("RelayState"), pending
}

// postResponse posts a SAML response to r's ACS with the login state.
func postResponse(t *testing.T, r *replica, doc []byte, relay string, pending *http.Cookie) *http.Response {
	t.Helper()
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {relay}}
	req, _ := http.NewRequest(http.MethodPost, r.base+"/.gatehouse/saml/acs", strings.NewReader(form.Encode()))
	req.Host = r.host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.AddCookie(pending)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// getWith requests path from r with a session cookie, as an API client.
func getWith(t *testing.T, r *replica, path string, session *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.base+path, nil)
	req.Host = r.host
	req.Header.Set("Accept", "application/json")
	req.AddCookie(session)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func setSessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie set (%d)", resp.StatusCode)
	return nil
}

// processConfig is a gatehouse config for the process tests: the corp
// IdP from its metadata file, SQLite in dir, and extra sections last.
func processConfig(base, upstream, metadata, dir, extra string) string {
	return fmt.Sprintf(`version: 1
listen: 127.0.0.1:$PORT
admin_listen: 127.0.0.1:$ADMIN
base_url: %s
upstream: %s
shutdown_timeout: 5s
cookie:
  insecure: true
  keys: ["${GATEHOUSE_TEST_COOKIE_KEY}"]
idps:
  - name: corp
    entity_id: %s
    metadata_file: %s
    mapping:
      user_name: %s
store:
  sqlite:
    path: %s
`, base, upstream, idpEntityID, metadata, attrUID, filepath.Join(dir, "gatehouse.db")) + extra
}

var processSeq atomic.Int64

// processResponse is p's signed response to requestID for the gatehouse
// at base, issued now.
func processResponse(t *testing.T, base string, key signer, p person, requestID string) []byte {
	n := processSeq.Add(1)
	acs := base + "/.gatehouse/saml/acs"
	return signedAssertion(t, spec{now: time.Now(), issuer: idpEntityID, inResponseTo: requestID, destination: acs, recipient: acs,
		audience: base + "/.gatehouse/saml/metadata", nameID: p.nameID, nameIDFormat: fmtPersist, attrs: p.attrs(),
		responseID: fmt.Sprintf("_process-resp-%d", n), assertionID: fmt.Sprintf("_process-assert-%d", n),
		sessionIndex: fmt.Sprintf("_process-sess-%d", n)}, key)
}

// TestReplicaProcesses: two gatehouse processes behind one public URL,
// sharing a real Redis and one store. A login started on A completes on
// B; a response A accepted is refused as a replay by B; a logout on A
// ends the session on B within a second; with Redis stopped, established
// sessions go on and logins get the 503 page, and both recover when Redis
// is back, the revocation feed included.
func TestReplicaProcesses(t *testing.T) {
	bin := buildGatehouse(t)
	srv := redistest.Start(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Forwarded-User"))
	}))
	defer upstream.Close()
	dir := t.TempDir()
	idp := loadSigner(t, "idp")
	metadata := writeMetadata(t, dir, "corp", idpEntityID, idpSSO, idp)
	// Behind a load balancer both replicas answer for one public URL: A's.
	public := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", public)
	config := processConfig(base, upstream.URL, metadata, dir, "state:\n  redis:\n    url: ${GATEHOUSE_TEST_REDIS_URL}\n")
	env := []string{"GATEHOUSE_TEST_COOKIE_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		"GATEHOUSE_TEST_REDIS_URL=redis://" + srv.Addr + "/0"}
	a := startReplica(t, bin, "A", config, env, public)
	b := startReplica(t, bin, "B", config, env, 0)

	response := func(p person, requestID string) []byte { return processResponse(t, base, idp, p, requestID) }

	// A accepts a response; the same response replayed to B is refused.
	id, relay, pending := startLoginAt(t, a)
	doc := response(alice, id)
	if resp := postResponse(t, a, doc, relay, pending); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login on A: %d", resp.StatusCode)
	}
	if resp := postResponse(t, b, doc, relay, pending); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("A's response replayed to B: %d, want 403", resp.StatusCode)
	}

	// A login started on A completes on B, and the session works on both.
	id, relay, pending = startLoginAt(t, a)
	resp := postResponse(t, b, response(alice, id), relay, pending)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login started on A, finished on B: %d", resp.StatusCode)
	}
	session := setSessionCookie(t, resp)
	// Proxied requests never wait on Redis: they send it no command.
	before := commandCalls(t, srv.Addr)
	if before["set"] == 0 {
		t.Fatalf("the logins so far left no SET in Redis's stats: %v", before)
	}
	for range 50 {
		for _, r := range []*replica{a, b} {
			if code := getWith(t, r, "/home", session); code != http.StatusOK {
				t.Fatalf("the session on %s: %d", r.name, code)
			}
		}
	}
	for cmd, n := range commandCalls(t, srv.Addr) {
		housekeeping := cmd == "info" || cmd == "ping" || cmd == "hello" || strings.HasPrefix(cmd, "client|") // connections, this check
		if !housekeeping && n != before[cmd] {
			t.Errorf("100 proxied requests sent Redis %d %s commands", n-before[cmd], cmd)
		}
	}

	// A logout on A ends the session on B within a second.
	req, _ := http.NewRequest(http.MethodPost, a.base+"/.gatehouse/logout", nil)
	req.Host = a.host
	req.Header.Set("Origin", a.base) // logout is a same-origin POST
	req.AddCookie(session)
	if resp, err := noRedirects.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	loggedOut := time.Now()
	for getWith(t, b, "/home", session) != http.StatusUnauthorized {
		if time.Since(loggedOut) > time.Second {
			t.Fatal("a logout on A did not end the session on B within a second")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Another session; then Redis goes away.
	id, relay, pending = startLoginAt(t, b)
	resp = postResponse(t, b, response(alice, id), relay, pending)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second login: %d", resp.StatusCode)
	}
	second := setSessionCookie(t, resp)
	srv.Stop()
	for _, r := range []*replica{a, b} {
		if code := getWith(t, r, "/home", second); code != http.StatusOK {
			t.Errorf("an established session on %s with Redis down: %d, want 200", r.name, code)
		}
	}
	id, relay, pending = startLoginAt(t, a)
	if resp := postResponse(t, a, response(alice, id), relay, pending); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a login with Redis down: %d, want 503", resp.StatusCode)
	}
	srv.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	for _, r := range []*replica{a, b} {
		for {
			id, relay, pending = startLoginAt(t, r)
			if resp := postResponse(t, r, response(alice, id), relay, pending); resp.StatusCode == http.StatusSeeOther {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("logins on %s did not recover after Redis came back: %d", r.name, resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// B's subscription is back too: a logout on A reaches it.
	req, _ = http.NewRequest(http.MethodPost, a.base+"/.gatehouse/logout", nil)
	req.Host = a.host
	req.Header.Set("Origin", a.base) // logout is a same-origin POST
	req.AddCookie(second)
	if resp, err := noRedirects.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	deadline = time.Now().Add(5 * time.Second)
	for getWith(t, b, "/home", second) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("after Redis came back, a logout on A did not reach B")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Readiness followed Redis: both are ready again.
	for _, r := range []*replica{a, b} {
		resp, err := http.Get(r.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s not ready after Redis came back: %d", r.name, resp.StatusCode)
		}
	}
}

// TestSIGHUPReloadsMetadata: the IdP rolls its signing key over and the
// operator sends SIGHUP. The running process then accepts responses
// signed with the new key and refuses the old one, while an open
// keep-alive connection and an established session carry on.
func TestSIGHUPReloadsMetadata(t *testing.T) {
	bin := buildGatehouse(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	dir := t.TempDir()
	oldKey, newKey := loadSigner(t, "idp"), loadSigner(t, "other")
	metadata := writeMetadata(t, dir, "corp", idpEntityID, idpSSO, oldKey)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	config := processConfig(base, upstream.URL, metadata, dir, "")
	g := startReplica(t, bin, "gatehouse", config, []string{"GATEHOUSE_TEST_COOKIE_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))}, port)

	login := func(key signer) *http.Response {
		id, relay, pending := startLoginAt(t, g)
		return postResponse(t, g, processResponse(t, base, key, alice, id), relay, pending)
	}
	resp := login(oldKey)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the IdP's key: %d", resp.StatusCode)
	}
	session := setSessionCookie(t, resp)
	if resp := login(newKey); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login with a key not in the metadata yet: %d, want 403", resp.StatusCode)
	}

	// One keep-alive connection, open across the reload.
	var reused []bool
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func() {
		t.Helper()
		var conn httptrace.GotConnInfo
		req, _ := http.NewRequest(http.MethodGet, g.base+"/home", nil)
		req.Host = g.host
		req.Header.Set("Accept", "application/json")
		req.AddCookie(session)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { conn = i }}))
		resp, err := keepAlive.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the established session: %d", resp.StatusCode)
		}
		reused = append(reused, conn.Reused)
	}
	get()

	writeMetadata(t, dir, "corp", idpEntityID, idpSSO, newKey)
	if err := g.process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := login(newKey)
		if resp.StatusCode == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the new key is still refused: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp := login(oldKey); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after the rollover the old key: %d, want 403", resp.StatusCode)
	}
	get()
	if !reused[1] {
		t.Error("the keep-alive connection did not survive the reload")
	}
}
