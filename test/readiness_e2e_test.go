package test

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/test/pgtest"
	"gatehouse/test/redistest"
)

// metadataServer serves an IdP's metadata over HTTPS, with a validUntil
// validFor after each fetch, until it is switched off (404).
type metadataServer struct {
	*httptest.Server
	mu       sync.Mutex
	doc      []byte
	validFor time.Duration
	off      bool
	caFile   string // its certificate, for SSL_CERT_FILE
}

func newMetadataServer(t *testing.T, doc []byte, validFor time.Duration) *metadataServer {
	t.Helper()
	s := &metadataServer{doc: doc, validFor: validFor}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.off {
			http.NotFound(w, r)
			return
		}
		doc := s.doc
		if s.validFor > 0 {
			until := time.Now().Add(s.validFor).UTC().Format(time.RFC3339)
			doc = bytes.Replace(doc, []byte("<md:EntityDescriptor "), []byte(`<md:EntityDescriptor validUntil="`+until+`" `), 1)
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(doc)
	}))
	t.Cleanup(s.Close)
	s.caFile = filepath.Join(t.TempDir(), "metadata-ca.pem")
	if err := os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *metadataServer) setOff(off bool) {
	s.mu.Lock()
	s.off = off
	s.mu.Unlock()
}

// startProcess runs `gatehouse serve` ($PORT and $ADMIN stand for its
// ports) without waiting for readiness; exited is closed when it ends.
func startProcess(t *testing.T, bin, name, config string, env []string) (r *replica, exited chan struct{}) {
	t.Helper()
	port, adminPort := freePort(t), freePort(t)
	config = strings.NewReplacer("$PORT", fmt.Sprint(port), "$ADMIN", fmt.Sprint(adminPort)).Replace(config)
	dir := t.TempDir()
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r = &replica{name: name, base: base, admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), host: strings.TrimPrefix(base, "http://"),
		log: filepath.Join(dir, name+".log")}
	out, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.process = cmd.Process
	exited = make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, r.output())
		}
	})
	return r, exited
}

// fetch GETs url and returns the status and body; 0 when nothing answers.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := noRedirects.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue is the value of one sample (name with labels, as written)
// in r's /metrics, or -1 when absent.
func metricValue(t *testing.T, r *replica, sample string) float64 {
	t.Helper()
	_, text := fetch(t, r.admin+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// eventually polls cond for up to 10 seconds (readiness results are
// reused for a second).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loginVia starts a login at the named IdP and answers it with p's
// response signed by key; it returns the ACS's answer, or the login
// endpoint's when that did not send the browser to the IdP.
func loginVia(t *testing.T, r *replica, idp, issuer, sso string, key signer, p person) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.base+"/.gatehouse/login?idp="+idp+"&return=/home", nil)
	req.Host = r.host
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusFound {
		return resp
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), sso) {
		t.Fatalf("login at %s: sent to %q", idp, loc)
	}
	var pending *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "gatehouse_login_") {
			pending = c
		}
	}
	if pending == nil {
		t.Fatalf("login at %s: no login-state cookie", idp)
	}
	id := decodeRedirectRequest(t, loc).SelectAttrValue("ID", "")
	n := processSeq.Add(1)
	acs := r.base + "/.gatehouse/saml/acs"
	doc := signedAssertion(t, spec{now: time.Now(), issuer: issuer, inResponseTo: id, destination: acs, recipient: acs,
		audience: r.base + "/.gatehouse/saml/metadata", nameID: p.nameID, nameIDFormat: fmtPersist, attrs: p.attrs(),
		responseID: fmt.Sprintf("_ready-resp-%d", n), assertionID: fmt.Sprintf("_ready-assert-%d", n),
		sessionIndex: fmt.Sprintf("_ready-sess-%d", n)}, key)
	return postResponse(t, r, doc, loc.Query().Get("RelayState"), pending)
}

const readinessCookieKey = "GATEHOUSE_TEST_COOKIE_KEY=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

// TestDegradedDependencies: one IdP's metadata goes away, then
// PostgreSQL, then Redis, under one gatehouse process. At each step the
// process stays live and ready (so that a Service keeps every replica),
// /readyz?verbose and the metrics name what failed, an established
// session still reaches the upstream, a login at the broken IdP gets the
// 503 page while the other IdP still works (until the store is down too),
// and ?strict fails. No DSN password appears in any probe or metric.
func TestDegradedDependencies(t *testing.T) {
	bin := buildGatehouse(t)
	pg := pgtest.Start(t)
	dsn := strings.Replace(pg.Database(t), "postgres://postgres@", "postgres://postgres:n0t-the-pw-9d1@", 1)
	rds := redistest.Start(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Forwarded-User"))
	}))
	defer upstream.Close()
	dir := t.TempDir()
	corpKey, partnerKey := loadSigner(t, "idp"), loadSigner(t, "other")
	const validFor = 8 * time.Second
	partnerMeta := newMetadataServer(t, idpMetadata(partnerEntityID, partnerSSO, partnerKey), validFor)
	config := fmt.Sprintf(`version: 1
listen: 127.0.0.1:$PORT
admin_listen: 127.0.0.1:$ADMIN
base_url: http://127.0.0.1:$PORT
upstream: %s
shutdown_timeout: 5s
cookie:
  insecure: true
  keys: ["${GATEHOUSE_TEST_COOKIE_KEY}"]
idps:
  - name: corp
    entity_id: %s
    metadata_file: %s
    mapping: {user_name: %s}
  - name: partner
    entity_id: %s
    metadata_url: %s/metadata
    metadata_unsigned: true
    mapping: {user_name: %[4]s}
store:
  postgres:
    dsn: ${GATEHOUSE_TEST_DSN}
    timeout: 2s
state:
  redis:
    url: ${GATEHOUSE_TEST_REDIS_URL}
`, upstream.URL, idpEntityID, writeMetadata(t, dir, "corp", idpEntityID, idpSSO, corpKey), attrUID, partnerEntityID, partnerMeta.URL)
	g, _ := startProcess(t, bin, "gatehouse", config, []string{readinessCookieKey, "GATEHOUSE_TEST_DSN=" + dsn,
		"GATEHOUSE_TEST_REDIS_URL=redis://" + rds.Addr + "/0", "SSL_CERT_FILE=" + partnerMeta.caFile})
	eventually(t, "ready at start", func() bool { c, _ := fetch(t, g.admin+"/readyz?strict"); return c == 200 })
	loadedAt := time.Now()

	corpLogin := func() *http.Response { return loginVia(t, g, "corp", idpEntityID, idpSSO, corpKey, alice) }
	partnerLogin := func() *http.Response {
		return loginVia(t, g, "partner", partnerEntityID, partnerSSO, partnerKey, person{nameID: "p-0007", uid: "pat"})
	}
	resp := corpLogin()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("corp login: %d", resp.StatusCode)
	}
	session := setSessionCookie(t, resp)
	if resp := partnerLogin(); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("partner login while its metadata is served: %d", resp.StatusCode)
	}
	established := func(step string) {
		t.Helper()
		if code := getWith(t, g, "/home", session); code != http.StatusOK {
			t.Errorf("%s: the established session got %d, want the upstream's 200", step, code)
		}
	}
	// probes checks liveness and readiness on both listeners, and that
	// the verbose output names each failing check (the admin's with its
	// cause, the public one's without).
	probes := func(step string, failing map[string]string) {
		t.Helper()
		for _, u := range []string{g.admin + "/healthz", g.admin + "/livez", g.base + "/.gatehouse/healthz", g.base + "/.gatehouse/livez"} {
			if code, body := fetch(t, u); code != 200 || body != "ok\n" {
				t.Errorf("%s: %s = %d %q", step, u, code, body)
			}
		}
		for _, u := range []string{g.admin + "/readyz", g.base + "/.gatehouse/readyz"} {
			if code, body := fetch(t, u); code != 200 || body != "ready\n" {
				t.Errorf("%s: %s = %d %q, want 200: the instance degrades around it", step, u, code, body)
			}
			if code, _ := fetch(t, u+"?strict"); code != 503 {
				t.Errorf("%s: %s?strict = %d, want 503", step, u, code)
			}
		}
		_, admin := fetch(t, g.admin+"/readyz?verbose")
		_, public := fetch(t, g.base+"/.gatehouse/readyz?verbose")
		for name, cause := range failing {
			if !strings.Contains(admin, "[-]"+name+" failed: ") || !strings.Contains(admin, cause) {
				t.Errorf("%s: admin readyz?verbose does not name %s failing with %q:\n%s", step, name, cause, admin)
			}
			if !strings.Contains(public, "[-]"+name+" failed\n") {
				t.Errorf("%s: public readyz?verbose does not name %s:\n%s", step, name, public)
			}
		}
		for _, cause := range failing {
			if cause != "" && strings.Contains(public, cause) {
				t.Errorf("%s: public readyz?verbose shows the cause %q:\n%s", step, cause, public)
			}
		}
		if !strings.HasSuffix(public, "readyz check passed\n") {
			t.Errorf("%s: public readyz?verbose:\n%s", step, public)
		}
		_, metrics := fetch(t, g.admin+"/metrics")
		for _, text := range []string{admin, public, metrics} {
			if strings.Contains(text, "n0t-the-pw") {
				t.Errorf("%s: the DSN's password is shown:\n%s", step, text)
			}
		}
		if v := metricValue(t, g, "gatehouse_ready"); v != 1 {
			t.Errorf("%s: gatehouse_ready = %v", step, v)
		}
	}

	// 1. The partner's metadata host goes away; once its validUntil has
	// passed, an operator's reload (SIGHUP) cannot refresh it.
	partnerMeta.setOff(true)
	time.Sleep(time.Until(loadedAt.Add(validFor + time.Second)))
	if err := g.process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "partner metadata down", func() bool {
		_, v := fetch(t, g.admin+"/readyz?verbose")
		return strings.Contains(v, "last refresh failed")
	})
	probes("partner metadata gone", map[string]string{"idp/partner": "metadata expired at its validUntil"})
	_, verbose := fetch(t, g.admin+"/readyz?verbose")
	if !strings.Contains(verbose, "HTTP 404") || !strings.Contains(verbose, "[+]idp/corp ok") {
		t.Errorf("admin readyz?verbose should give the refresh's failure and corp ok:\n%s", verbose)
	}
	if v := metricValue(t, g, `gatehouse_idp_metadata_up{idp="partner"}`); v != 0 {
		t.Errorf(`gatehouse_idp_metadata_up{idp="partner"} = %v, want 0`, v)
	}
	if v := metricValue(t, g, `gatehouse_idp_metadata_up{idp="corp"}`); v != 1 {
		t.Errorf(`gatehouse_idp_metadata_up{idp="corp"} = %v, want 1`, v)
	}
	if v := metricValue(t, g, `gatehouse_idp_metadata_last_refresh_success_timestamp_seconds{idp="partner",source="url"}`); v <= 0 || v > float64(loadedAt.Unix()+1) {
		t.Errorf("partner's last refresh success = %v, want the start (%d)", v, loadedAt.Unix())
	}
	established("partner metadata gone")
	if resp := partnerLogin(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a login at the partner without metadata: %d, want the 503 page", resp.StatusCode)
	} else if body := readAll(t, resp); !strings.Contains(body, "Temporarily unavailable") {
		t.Errorf("the partner's login page: %s", body)
	}
	if resp := corpLogin(); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a corp login while the partner is down: %d", resp.StatusCode)
	}

	// 2. PostgreSQL stops.
	pg.Stop()
	eventually(t, "gatehouse_store_up 0", func() bool { return metricValue(t, g, "gatehouse_store_up") == 0 })
	probes("store down", map[string]string{"idp/partner": "metadata expired", "store": ""})
	established("store down")
	if resp := corpLogin(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a corp login with the store down: %d, want the 503 page", resp.StatusCode)
	}

	// 3. Redis stops.
	rds.Stop()
	eventually(t, "gatehouse_redis_up 0", func() bool { return metricValue(t, g, "gatehouse_redis_up") == 0 })
	probes("redis down", map[string]string{"idp/partner": "metadata expired", "store": "", "redis": ""})
	established("redis down")
	if v := metricValue(t, g, "gatehouse_store_up"); v != 0 {
		t.Errorf("gatehouse_store_up = %v", v)
	}

	// Everything back: strictly ready again.
	partnerMeta.setOff(false)
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	rds.Restart(t)
	g.process.Signal(syscall.SIGHUP)
	eventually(t, "strictly ready once everything is back", func() bool { c, _ := fetch(t, g.admin+"/readyz?strict"); return c == 200 })
	for _, s := range []string{"gatehouse_store_up", "gatehouse_redis_up", `gatehouse_idp_metadata_up{idp="partner"}`, "gatehouse_ready"} {
		if v := metricValue(t, g, s); v != 1 {
			t.Errorf("after recovery %s = %v", s, v)
		}
	}
}

// TestReadinessStartupAndShutdown: readiness fails until an IdP's
// metadata has loaded (its URL down at start; liveness is fine all
// along), passes once it has, and fails again as soon as SIGTERM comes:
// during shutdown_delay gatehouse still serves requests with /readyz at
// 503, then exits cleanly.
func TestReadinessStartupAndShutdown(t *testing.T) {
	bin := buildGatehouse(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "public page") }))
	defer upstream.Close()
	meta := newMetadataServer(t, idpMetadata(partnerEntityID, partnerSSO, loadSigner(t, "other")), 0)
	meta.setOff(true)
	config := fmt.Sprintf(`version: 1
listen: 127.0.0.1:$PORT
admin_listen: 127.0.0.1:$ADMIN
base_url: http://127.0.0.1:$PORT
upstream: %s
public_paths: [/public]
shutdown_timeout: 5s
shutdown_delay: 3s
cookie:
  insecure: true
  keys: ["${GATEHOUSE_TEST_COOKIE_KEY}"]
idps:
  - name: partner
    entity_id: %s
    metadata_url: %s/metadata
    metadata_unsigned: true
    mapping: {user_name: %s}
store:
  sqlite:
    path: %s
`, upstream.URL, partnerEntityID, meta.URL, attrUID, filepath.Join(t.TempDir(), "gatehouse.db"))
	g, exited := startProcess(t, bin, "gatehouse", config, []string{readinessCookieKey, "SSL_CERT_FILE=" + meta.caFile})
	eventually(t, "admin listener up", func() bool { c, _ := fetch(t, g.admin+"/healthz"); return c == 200 })
	for _, u := range []string{g.admin + "/readyz", g.base + "/.gatehouse/readyz"} {
		if code, body := fetch(t, u); code != 503 || body != "not ready: startup\n" {
			t.Errorf("before any metadata loaded: %s = %d %q, want 503", u, code, body)
		}
	}
	if _, v := fetch(t, g.admin+"/readyz?verbose"); !strings.Contains(v, "[-]startup failed: no IdP's metadata has loaded yet") ||
		!strings.Contains(v, "[-]idp/partner failed: identity provider metadata is not loaded yet: fetch metadata: HTTP 404") ||
		!strings.HasSuffix(v, "readyz check failed\n") {
		t.Errorf("before any metadata loaded, readyz?verbose:\n%s", v)
	}
	if code, _ := fetch(t, g.base+"/.gatehouse/healthz"); code != 200 {
		t.Errorf("healthz before metadata: %d", code)
	}
	if v := metricValue(t, g, "gatehouse_ready"); v != 0 {
		t.Errorf("gatehouse_ready before metadata = %v", v)
	}
	if v := metricValue(t, g, `gatehouse_idp_metadata_last_refresh_success_timestamp_seconds{idp="partner",source="url"}`); v != -1 {
		t.Errorf("a last refresh success before any: %v", v)
	}

	meta.setOff(false)
	g.process.Signal(syscall.SIGHUP)
	eventually(t, "ready once the metadata loads", func() bool { c, _ := fetch(t, g.base+"/.gatehouse/readyz"); return c == 200 })
	if v := metricValue(t, g, "gatehouse_ready"); v != 1 {
		t.Errorf("gatehouse_ready = %v", v)
	}

	// SIGTERM: not ready at once, serving on for shutdown_delay.
	signalled := time.Now()
	g.process.Signal(syscall.SIGTERM)
	eventually(t, "not ready after SIGTERM", func() bool { c, _ := fetch(t, g.admin+"/readyz"); return c == 503 })
	if since := time.Since(signalled); since > 2*time.Second {
		t.Errorf("readyz took %v to fail after SIGTERM", since)
	}
	if _, v := fetch(t, g.admin+"/readyz?verbose"); !strings.Contains(v, "[-]shutdown failed: shutting down") {
		t.Errorf("readyz?verbose during the shutdown delay:\n%s", v)
	}
	if code, body := fetch(t, g.base+"/public"); code != 200 || body != "public page" {
		t.Errorf("a request during the shutdown delay: %d %q", code, body)
	}
	if code, body := fetch(t, g.base+"/.gatehouse/readyz"); code != 503 || body != "not ready: shutdown\n" {
		t.Errorf("public readyz during the shutdown delay: %d %q", code, body)
	}
	if code, _ := fetch(t, g.base+"/.gatehouse/healthz"); code != 200 {
		t.Errorf("healthz during the shutdown delay: %d", code)
	}
	select {
	case <-exited:
		if since := time.Since(signalled); since < 3*time.Second {
			t.Errorf("exited %v after SIGTERM, before shutdown_delay", since)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not exit within 15s of SIGTERM")
	}
	if out := g.output(); !strings.Contains(out, "readyz now answers 503") || strings.Contains(out, `"level":"error"`) ||
		!regexp.MustCompile(`"msg":"gatehouse starting","version":"[^"]+","revision":"[^"]*","commit_time":"[^"]*","go":"go1`).MatchString(out) {
		t.Errorf("shutdown log:\n%s", out)
	}
}
