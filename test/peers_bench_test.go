package test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPeers measures gatehouse beside its peers, each a process of its
// own so that CPU time and RSS are each one's own (issue 19):
//
//   - logins: gatehouse against crewjam/saml's samlsp (test/peers/samlsp,
//     HS256 session and request-tracker cookies), 16 concurrent, in
//     interleaved rounds: logins/s, ACS-only logins/s, server CPU and
//     allocations per login, for a repeat login (one unchanged user) and a
//     first login (new users: gatehouse creates them, samlsp has no store);
//   - proxied: gatehouse against a bare Go reverse proxy (test/peers/
//     bareproxy) to the same upstream, wrk at 64 and 16 connections, with
//     a fresh session cookie and with a stale one that gatehouse re-seals
//     on every request (a client that never stores a refreshed cookie);
//   - memory: VmRSS of gatehouse fresh, under proxied load, and after
//     20,000 first logins with 10,000 sessions in use; of the bare proxy
//     fresh and under load.
//
// `make bench` runs it last; it ends with a summary table of the figures,
// their ratios and the goals, headed by the load average at the
// start of the run. GATEHOUSE_BIN measures another build of gatehouse,
// GATEHOUSE_BENCH_CONFIG adds lines to its config.
func BenchmarkPeers(b *testing.B) {
	load, _ := os.ReadFile("/proc/loadavg")
	sum := &peersSummary{load: strings.TrimSpace(string(load))}
	env := newPeersEnv(b)
	for _, part := range []struct {
		name string
		run  func(*testing.B, *peersEnv, *peersSummary)
	}{{"logins", benchPeerLogins}, {"proxied", benchPeerProxied}, {"memory", benchPeerMemory}} {
		t0, ran := time.Now(), false
		if b.Run(part.name, func(b *testing.B) { ran = true; part.run(b, env, sum) }) && ran {
			sum.took = append(sum.took, fmt.Sprintf("%s %v", part.name, time.Since(t0).Round(time.Second)))
		}
	}
	sum.print(os.Stdout)
}

// peersEnv is what the parts share: the three binaries, the IdP and its
// metadata, and the upstream.
type peersEnv struct {
	gatehouse, samlsp, bareproxy string
	idp                          signer
	metadata                     string
	upstream                     string
	client                       *http.Client
	users                        atomic.Int64 // new users so far
	seq                          atomic.Int64 // responses so far
}

func newPeersEnv(b *testing.B) *peersEnv {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk is required: apt-get install wrk (make bench does this)")
	}
	dir := b.TempDir()
	// GATEHOUSE_BIN names another build of gatehouse to measure (an older
	// version, for a before-and-after table); by default this tree's.
	bin := os.Getenv("GATEHOUSE_BIN")
	if bin == "" {
		bin = buildGatehouse(b)
	}
	e := &peersEnv{gatehouse: bin, idp: loadSigner(b, "idp")}
	for _, p := range []struct {
		bin *string
		pkg string
	}{{&e.samlsp, "samlsp"}, {&e.bareproxy, "bareproxy"}} {
		*p.bin = filepath.Join(dir, p.pkg)
		if out, err := exec.Command("go", "build", "-o", *p.bin, "gatehouse/test/peers/"+p.pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", p.pkg, err, out)
		}
	}
	e.metadata = writeMetadata(b, dir, "corp", idpEntityID, idpSSO, e.idp)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(benchBody)
	}))
	b.Cleanup(up.Close)
	e.upstream = up.URL
	e.client = &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}
	b.Cleanup(e.client.CloseIdleConnections)
	return e
}

// sp is one SAML SP under test: where it starts logins and takes
// responses, what it answers, and how to read its process.
type sp struct {
	name       string
	base, host string
	acs        string
	audience   string // its entity ID
	statePfx   string // its login-state cookie's name prefix
	session    string // its session cookie's name
	acsStatus  int    // its answer to a good response
	pid        int
	mallocs    func() (float64, error)
	heapInuse  func() (float64, error) // nil where the process does not tell
	admin      string                  // its metrics page, where it has one
}

// startGatehouse runs the gatehouse binary on SQLite in a fresh directory
// with the corp IdP and the upstream, the login rate limit off (all the
// load comes from one address) and the cookie section's extra lines.
func (e *peersEnv) startGatehouse(b *testing.B, name, cookieExtra string) *sp {
	b.Helper()
	dir := b.TempDir()
	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	config := processConfig(base, e.upstream, e.metadata, dir, "rate_limit:\n  disabled: true\n"+benchConfigExtra())
	config = strings.Replace(config, "cookie:\n", "cookie:\n"+cookieExtra, 1)
	r := startReplica(b, e.gatehouse, name, config,
		[]string{"GATEHOUSE_TEST_COOKIE_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}, port)
	s := &sp{name: "gatehouse", base: r.base, host: r.host, acs: base + "/.gatehouse/saml/acs",
		audience: base + "/.gatehouse/saml/metadata", statePfx: "gatehouse_login_", session: "gatehouse",
		acsStatus: http.StatusSeeOther, pid: r.process.Pid}
	metric := func(name string) func() (float64, error) {
		return func() (float64, error) { return e.scrape(r.admin+"/metrics", name) }
	}
	s.mallocs, s.heapInuse = metric("go_memstats_mallocs_total"), metric("go_memstats_heap_inuse_bytes")
	s.admin = r.admin + "/metrics"
	return s
}

// benchConfigExtra is GATEHOUSE_BENCH_CONFIG, YAML lines added to the
// config of every gatehouse the benchmark starts (an A/B of one key, such
// as "release_startup_pages: false"), ending in a newline.
func benchConfigExtra() string {
	extra := os.Getenv("GATEHOUSE_BENCH_CONFIG")
	if extra != "" && !strings.HasSuffix(extra, "\n") {
		extra += "\n"
	}
	return extra
}

// scrape reads one unlabelled metric from a Prometheus text page.
func (e *peersEnv) scrape(page, name string) (float64, error) {
	resp, err := e.client.Get(page)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", page, name)
}

// startSAMLSP runs the samlsp peer with the same IdP metadata.
func (e *peersEnv) startSAMLSP(b *testing.B) *sp {
	b.Helper()
	port := freePort(b)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startPeer(b, "samlsp", e.samlsp, base+"/debug/mallocs",
		"-listen", fmt.Sprintf("127.0.0.1:%d", port), "-url", base, "-idp-metadata", e.metadata)
	s := &sp{name: "samlsp", base: base, host: fmt.Sprintf("127.0.0.1:%d", port), acs: base + "/saml/acs",
		audience: base + "/saml/metadata", statePfx: "saml_", session: "token", acsStatus: http.StatusFound,
		pid: p.pid}
	s.mallocs = func() (float64, error) {
		resp, err := e.client.Get(base + "/debug/mallocs")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		return strconv.ParseFloat(strings.TrimSpace(string(body)), 64)
	}
	return s
}

// peerProcess is a peer binary the benchmark started.
type peerProcess struct {
	pid  int
	log  string
	base string
}

// startPeer runs bin with args, its output in a file, until ready answers
// 200; it stops the process when b ends.
func startPeer(b *testing.B, name, bin, ready string, args ...string) *peerProcess {
	b.Helper()
	p := &peerProcess{log: filepath.Join(b.TempDir(), name+".log")}
	out, err := os.Create(p.log)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	output := func() string { s, _ := os.ReadFile(p.log); return string(s) }
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			b.Errorf("%s did not stop within 10s of SIGTERM", name)
			cmd.Process.Kill()
			<-exited
		}
		if b.Failed() {
			b.Logf("%s output:\n%s", name, output())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			b.Fatalf("%s exited at start:\n%s", name, output())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not ready within 30s:\n%s", name, output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startBareProxy runs the bare reverse proxy to the upstream.
func (e *peersEnv) startBareProxy(b *testing.B) *peerProcess {
	b.Helper()
	port := freePort(b)
	p := startPeer(b, "bareproxy", e.bareproxy, fmt.Sprintf("http://127.0.0.1:%d/ready", port),
		"-listen", fmt.Sprintf("127.0.0.1:%d", port), "-upstream", e.upstream)
	p.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	return p
}

// started is a login after its first leg: the AuthnRequest's ID, the
// RelayState and the login-state cookie.
type started struct {
	id, relay string
	state     *http.Cookie
	doc       []byte // the signed response, once signed
}

// start asks s for a protected page without a cookie and checks that it
// answers with a redirect to the IdP and its login-state cookie.
func (e *peersEnv) start(s *sp) (started, error) {
	req, _ := http.NewRequest(http.MethodGet, s.base+"/home", nil)
	req.Host = s.host
	req.Header.Set("Accept", "text/html")
	resp, err := e.client.Do(req)
	if err != nil {
		return started{}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), idpSSO) {
		return started{}, fmt.Errorf("%s: start: %d %q", s.name, resp.StatusCode, resp.Header.Get("Location"))
	}
	l := started{relay: loc.Query().Get("RelayState")}
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, s.statePfx) && c.Value != "" {
			l.state = c
		}
	}
	if l.state == nil {
		return started{}, fmt.Errorf("%s: start: no login-state cookie", s.name)
	}
	if l.id, err = authnRequestID(loc); err != nil {
		return started{}, fmt.Errorf("%s: start: %w", s.name, err)
	}
	return l, nil
}

// authnRequestID reads the ID of the deflated SAMLRequest in a redirect;
// decodeRedirectRequest does the same but fails the test, which a worker
// goroutine must not do.
func authnRequestID(loc *url.URL) (string, error) {
	var id string
	var failed bool
	t := &recordingTB{fail: func() { failed = true }}
	func() {
		defer func() { recover() }()
		id = decodeRedirectRequest(t, loc).SelectAttrValue("ID", "")
	}()
	if failed || id == "" {
		return "", errors.New("no AuthnRequest ID in the redirect")
	}
	return id, nil
}

// recordingTB lets a test helper run outside the test's goroutine: Fatal
// records the failure and unwinds with a panic the caller recovers.
type recordingTB struct {
	testing.TB
	fail func()
}

func (r *recordingTB) Helper()               {}
func (r *recordingTB) Fatal(...any)          { r.fail(); panic(r) }
func (r *recordingTB) Fatalf(string, ...any) { r.fail(); panic(r) }

// sign gives l the IdP's signed response for p, addressed to s.
func (e *peersEnv) sign(s *sp, l *started, p person) error {
	n := e.seq.Add(1)
	rs := spec{now: time.Now(), issuer: idpEntityID, inResponseTo: l.id, destination: s.acs, recipient: s.acs,
		audience: s.audience, nameID: p.nameID, nameIDFormat: fmtPersist, attrs: p.attrs(),
		responseID: fmt.Sprintf("_peer-resp-%d", n), assertionID: fmt.Sprintf("_peer-assert-%d", n),
		sessionIndex: fmt.Sprintf("_peer-sess-%d", n)}
	var failed bool
	func() {
		defer func() {
			if r := recover(); r != nil {
				failed = true
			}
		}()
		l.doc = signedAssertion(&recordingTB{fail: func() { failed = true }}, rs, e.idp)
	}()
	if failed {
		return errors.New("signing failed")
	}
	return nil
}

// finish posts l's response to s's ACS and returns the session cookie s
// set; anything but s's redirect with a session cookie is an error.
func (e *peersEnv) finish(s *sp, l started) (*http.Cookie, error) {
	resp, err := e.post(s, l)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != s.acsStatus || resp.Header.Get("Location") == "" {
		return nil, fmt.Errorf("%s: ACS: %d, want %d with a Location", s.name, resp.StatusCode, s.acsStatus)
	}
	for _, c := range resp.Cookies() {
		if c.Name == s.session && c.Value != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%s: ACS: %d without a session cookie", s.name, resp.StatusCode)
}

func (e *peersEnv) post(s *sp, l started) (*http.Response, error) {
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(l.doc)}, "RelayState": {l.relay}}
	req, _ := http.NewRequest(http.MethodPost, s.acs, strings.NewReader(form.Encode()))
	req.Host = s.host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.AddCookie(l.state)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// login is one whole login of p at s, untimed; it returns the session.
func (e *peersEnv) login(s *sp, p person) (*http.Cookie, error) {
	l, err := e.start(s)
	if err == nil {
		err = e.sign(s, &l, p)
	}
	if err != nil {
		return nil, err
	}
	return e.finish(s, l)
}

// newUser is a person no SP has seen.
func (e *peersEnv) newUser() person {
	i := e.users.Add(1)
	p := alice
	p.nameID = fmt.Sprintf("peer-%07d", i)
	p.uid = fmt.Sprintf("peer%07d", i)
	p.mail = p.uid + "@example.com"
	p.display, p.given, p.family, p.employeeID = "Peer "+p.uid, "Peer", p.uid, fmt.Sprintf("P%07d", i)
	return p
}

// parallel runs f(0..n-1) on c workers and returns the wall time, the
// number of calls that failed and the first error.
func parallel(n, c int, f func(i int) error) (time.Duration, int, error) {
	var next, failed atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), int(failed.Load()), first
}

// procCPU is the user and system CPU time pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name is in parentheses and may hold spaces; utime and
	// stime are fields 14 and 15, counted in USER_HZ (100 on Linux).
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procRSS is pid's resident set in bytes.
func procRSS(b *testing.B, pid int) int64 {
	b.Helper()
	v, err := readRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// rssParts is VmRSS with its anonymous part and its part backed by files
// (the binary's pages that have run), for the log.
func rssParts(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for line := range strings.Lines(string(raw)) {
		for _, k := range []string{"VmRSS:", "RssAnon:", "RssFile:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				parts = append(parts, fmt.Sprintf("%s %.1f MiB", strings.TrimSuffix(k, ":"), kb/1024))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// goMemory is what gatehouse's metrics say of the Go runtime's memory, for
// the log.
func (e *peersEnv) goMemory(g *sp) string {
	var parts []string
	for _, m := range []struct{ name, metric string }{
		{"heap in use", "go_memstats_heap_inuse_bytes"},
		{"stacks", "go_memstats_stack_inuse_bytes"},
		{"heap idle", "go_memstats_heap_idle_bytes"},
		{"returned", "go_memstats_heap_released_bytes"},
		{"from the OS", "go_memstats_sys_bytes"},
	} {
		v, err := e.scrape(g.admin, m.metric)
		if err != nil {
			return err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", m.name, v/(1<<20)))
	}
	return "Go: " + strings.Join(parts, ", ")
}

// readRSS is VmRSS from /proc/PID/status, in bytes.
func readRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: %q", pid, line)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// loginRound is one timed round of n logins at one SP.
type loginRound struct {
	perSec, acsPerSec float64
	cpuMs, allocs     float64
}

// loginConcurrency is how many logins run at once.
const loginConcurrency = 16

// timedLogins makes n logins at s of who(i), 16 at a time: the starts
// (timed), then the responses signed from two goroutines (untimed), then
// the ACS posts (timed). Every answer is checked.
func (e *peersEnv) timedLogins(b *testing.B, s *sp, n int, who func(int) person) loginRound {
	b.Helper()
	must := func(d time.Duration, failed int, err error) time.Duration {
		b.Helper()
		if failed > 0 {
			b.Fatalf("%s: %d of %d failed; the first: %v", s.name, failed, n, err)
		}
		return d
	}
	mallocs := func() float64 {
		b.Helper()
		v, err := s.mallocs()
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	logins := make([]started, n)
	// Reading the count allocates too: two reads in a row measure that.
	m0 := mallocs()
	m1 := mallocs()
	c0 := procCPU(b, s.pid)
	tStart := must(parallel(n, loginConcurrency, func(i int) (err error) { logins[i], err = e.start(s); return err }))
	c1 := procCPU(b, s.pid)
	must(parallel(n, 2, func(i int) error { return e.sign(s, &logins[i], who(i)) }))
	c2 := procCPU(b, s.pid)
	tACS := must(parallel(n, loginConcurrency, func(i int) error { _, err := e.finish(s, logins[i]); return err }))
	c3 := procCPU(b, s.pid)
	m2 := mallocs()
	return loginRound{
		perSec:    float64(n) / (tStart + tACS).Seconds(),
		acsPerSec: float64(n) / tACS.Seconds(),
		cpuMs:     float64((c1-c0)+(c3-c2)) / float64(time.Millisecond) / float64(n),
		allocs:    ((m2 - m1) - (m1 - m0)) / float64(n),
	}
}

// loginsPerRound is the logins of one SP in one round.
const loginsPerRound = 800

func benchPeerLogins(b *testing.B, e *peersEnv, sum *peersSummary) {
	g := e.startGatehouse(b, "gatehouse", "")
	s := e.startSAMLSP(b)
	sps := []*sp{g, s}

	// Both must refuse a response whose signature does not hold, or
	// their figures mean nothing.
	for _, x := range sps {
		l, err := e.start(x)
		if err == nil {
			err = e.sign(x, &l, alice)
		}
		if err != nil {
			b.Fatal(err)
		}
		l.doc = bytes.Replace(l.doc, []byte(">"+alice.mail+"<"), []byte(">mallory@example.com<"), 1)
		resp, err := e.post(x, l)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusForbidden {
			b.Fatalf("%s answered %d to a response whose signed assertion was altered, want 403", x.name, resp.StatusCode)
		}
		for _, c := range resp.Cookies() {
			if c.Name == x.session && c.Value != "" {
				b.Fatalf("%s set a session for a response whose signed assertion was altered", x.name)
			}
		}
	}

	// A session each issues opens their protected page.
	for _, x := range sps {
		c, err := e.login(x, alice)
		if err != nil {
			b.Fatal(err)
		}
		e.proxiedPage(b, x.base, c.Name+"="+c.Value)
	}

	// Warm up.
	for _, x := range sps {
		e.timedLogins(b, x, 100, func(int) person { return alice })
	}

	kinds := []struct {
		name string
		who  func(int) person
	}{
		{"repeat", func(int) person { return alice }},
		{"first", func(int) person { return e.newUser() }},
	}
	const rounds = 3
	got := map[string]map[string][]loginRound{}
	b.ResetTimer()
	for r := range rounds {
		for _, k := range kinds {
			if got[k.name] == nil {
				got[k.name] = map[string][]loginRound{}
			}
			order := sps
			if r%2 == 1 {
				order = []*sp{s, g}
			}
			for _, x := range order {
				lr := e.timedLogins(b, x, loginsPerRound, k.who)
				got[k.name][x.name] = append(got[k.name][x.name], lr)
				b.Logf("round %d %s %s: %.0f logins/s, ACS only %.0f/s, %.2f ms CPU/login, %.0f allocs/login",
					r+1, k.name, x.name, lr.perSec, lr.acsPerSec, lr.cpuMs, lr.allocs)
			}
		}
	}
	b.StopTimer()
	for _, k := range kinds {
		f := loginFigures{kind: k.name}
		for i, name := range []string{"gatehouse", "samlsp"} {
			rs := got[k.name][name]
			pick := func(v func(loginRound) float64) float64 {
				var xs []float64
				for _, r := range rs {
					xs = append(xs, v(r))
				}
				return median(xs)
			}
			f.perSec[i] = pick(func(r loginRound) float64 { return r.perSec })
			f.acsPerSec[i] = pick(func(r loginRound) float64 { return r.acsPerSec })
			f.cpuMs[i] = pick(func(r loginRound) float64 { return r.cpuMs })
			f.allocs[i] = pick(func(r loginRound) float64 { return r.allocs })
		}
		b.ReportMetric(f.perSec[0], k.name+"-gatehouse-logins/s")
		b.ReportMetric(f.perSec[1], k.name+"-samlsp-logins/s")
		b.ReportMetric(f.perSec[0]/f.perSec[1], k.name+"-logins/s-ratio")
		b.ReportMetric(f.cpuMs[0], k.name+"-gatehouse-CPU-ms/login")
		b.ReportMetric(f.cpuMs[1], k.name+"-samlsp-CPU-ms/login")
		b.ReportMetric(f.allocs[0], k.name+"-gatehouse-allocs/login")
		b.ReportMetric(f.allocs[1], k.name+"-samlsp-allocs/login")
		sum.logins = append(sum.logins, f)
	}
}

// runWrkAt is runWrk with the number of connections given; it fails the
// benchmark on any non-2xx or 3xx answer.
func runWrkAt(b *testing.B, target, cookie string, conns int, d time.Duration) wrkResult {
	b.Helper()
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency",
		"-H", "Cookie: "+cookie, "-H", "X-Forwarded-User: spoofed", target).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	if m := wrkErr.FindStringSubmatch(s); m != nil {
		b.Fatalf("wrk saw %s failed responses at %s:\n%s", m[1], target, s)
	}
	if strings.Contains(s, "Socket errors") {
		b.Fatalf("wrk saw socket errors at %s:\n%s", target, s)
	}
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		b.Fatalf("no throughput in wrk output:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, pm := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(pm[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[pm[3]]
		if pm[1] == "50" {
			r.p50 = time.Duration(v * float64(unit))
		} else {
			r.p99 = time.Duration(v * float64(unit))
		}
	}
	if r.p99 == 0 {
		b.Fatalf("no p99 in wrk output:\n%s", s)
	}
	return r
}

// proxiedPage checks that base answers the upstream's page with the
// cookie, and reports whether it set a session cookie doing so.
func (e *peersEnv) proxiedPage(b *testing.B, base, cookie string) (refreshed bool) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/page", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := e.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body := readAll(b, resp)
	if resp.StatusCode != http.StatusOK || body != string(benchBody) {
		b.Fatalf("%s/page answers %d, not the upstream page", base, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse" && c.Value != "" {
			return true
		}
	}
	return false
}

// idleStep is how old a cookie's last-seen time must be before gatehouse
// re-seals it, for cookie.idle_timeout 1m (its minimum): min(1m, 1m/10).
const idleStep = 6 * time.Second

func benchPeerProxied(b *testing.B, e *peersEnv, sum *peersSummary) {
	bare := e.startBareProxy(b)
	fresh := e.startGatehouse(b, "gatehouse", "")
	stale := e.startGatehouse(b, "gatehouse-idle-1m", "  idle_timeout: 1m\n")
	session := func(g *sp) string {
		b.Helper()
		c, err := e.login(g, alice)
		if err != nil {
			b.Fatal(err)
		}
		return c.Name + "=" + c.Value
	}
	freshCookie, staleCookie := session(fresh), session(stale)
	e.proxiedPage(b, bare.base, freshCookie)
	if e.proxiedPage(b, fresh.base, freshCookie) {
		b.Fatal("gatehouse re-sealed a cookie just issued")
	}
	runWrkAt(b, bare.base+"/warmup", freshCookie, 64, time.Second)
	runWrkAt(b, fresh.base+"/warmup", freshCookie, 64, time.Second)
	runWrkAt(b, stale.base+"/warmup", staleCookie, 64, time.Second)

	const rounds = 3
	d := 5 * time.Second
	b.ResetTimer()
	for _, conns := range []int{64, 16} {
		var rb, rf, rs []wrkResult
		for r := range rounds {
			// A fresh login for each round keeps both sessions inside
			// their idle timeout; the stale one is measured last, once
			// its cookie is past the re-seal step.
			freshCookie, staleCookie = session(fresh), session(stale)
			loggedIn := time.Now()
			if r%2 == 0 {
				rb = append(rb, runWrkAt(b, bare.base+"/page", freshCookie, conns, d))
				rf = append(rf, runWrkAt(b, fresh.base+"/page", freshCookie, conns, d))
			} else {
				rf = append(rf, runWrkAt(b, fresh.base+"/page", freshCookie, conns, d))
				rb = append(rb, runWrkAt(b, bare.base+"/page", freshCookie, conns, d))
			}
			time.Sleep(time.Until(loggedIn.Add(idleStep + 500*time.Millisecond)))
			if !e.proxiedPage(b, stale.base, staleCookie) {
				b.Fatalf("gatehouse did not re-seal a cookie %v old with idle_timeout 1m", time.Since(loggedIn).Round(time.Second))
			}
			rs = append(rs, runWrkAt(b, stale.base+"/page", staleCookie, conns, d))
			// wrk counts a redirect as a success: the sessions must still
			// be good after their rounds.
			e.proxiedPage(b, stale.base, staleCookie)
			if e.proxiedPage(b, fresh.base, freshCookie) {
				b.Fatal("gatehouse re-sealed the fresh cookie within the round")
			}
			b.Logf("c%d round %d: bare %.0f req/s p99 %v | gatehouse %.0f req/s p99 %v | stale cookie %.0f req/s p99 %v",
				conns, r+1, rb[r].rps, rb[r].p99, rf[r].rps, rf[r].p99, rs[r].rps, rs[r].p99)
		}
		for _, c := range []struct {
			cookie string
			g      []wrkResult
		}{{"fresh", rf}, {"stale", rs}} {
			row := proxiedRow{conns: conns, cookie: c.cookie, bareRPS: wrkMedian(rb, false), bareP99: wrkMedian(rb, true),
				gRPS: wrkMedian(c.g, false), gP99: wrkMedian(c.g, true)}
			name := fmt.Sprintf("c%d-%s-", conns, c.cookie)
			b.ReportMetric(row.gRPS, name+"gatehouse-req/s")
			b.ReportMetric(row.bareRPS, name+"bare-req/s")
			b.ReportMetric(row.gRPS/row.bareRPS, name+"req/s-ratio")
			b.ReportMetric(row.gP99/row.bareP99, name+"p99-ratio")
			sum.proxied = append(sum.proxied, row)
		}
	}
	b.StopTimer()
}

// wrkMedian is the median req/s, or p99 in µs, of the rounds.
func wrkMedian(rs []wrkResult, p99 bool) float64 {
	var xs []float64
	for _, r := range rs {
		if p99 {
			xs = append(xs, float64(r.p99.Microseconds()))
		} else {
			xs = append(xs, r.rps)
		}
	}
	return median(xs)
}

// maxRSSDuring samples pid's VmRSS every 200ms while f runs and returns
// the largest.
func maxRSSDuring(b *testing.B, pid int, f func()) int64 {
	b.Helper()
	type peak struct {
		rss int64
		err error
	}
	done, result := make(chan struct{}), make(chan peak)
	go func() {
		var p peak
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- p
				return
			case <-tick.C:
				v, err := readRSS(pid)
				if err != nil {
					p.err = err
				}
				p.rss = max(p.rss, v)
			}
		}
	}()
	f()
	close(done)
	p := <-result
	if p.err != nil {
		b.Fatal(p.err)
	}
	return max(p.rss, procRSS(b, pid))
}

// Memory: how many first logins, and how many of their sessions stay in
// use.
const (
	memoryLogins   = 20_000
	memorySessions = 10_000
)

func benchPeerMemory(b *testing.B, e *peersEnv, sum *peersSummary) {
	g := e.startGatehouse(b, "gatehouse", "")
	bare := e.startBareProxy(b)
	m := &memoryFigures{}
	cookie, err := e.login(g, alice)
	if err != nil {
		b.Fatal(err)
	}
	ck := cookie.Name + "=" + cookie.Value
	e.proxiedPage(b, bare.base, ck)
	m.fresh[0], m.fresh[1] = procRSS(b, g.pid), procRSS(b, bare.pid)
	b.Logf("fresh: gatehouse %s (%s); bare proxy %s", rssParts(g.pid), e.goMemory(g), rssParts(bare.pid))

	b.ResetTimer()
	m.load[1] = maxRSSDuring(b, bare.pid, func() { runWrkAt(b, bare.base+"/page", ck, 64, 5*time.Second) })
	m.load[0] = maxRSSDuring(b, g.pid, func() { runWrkAt(b, g.base+"/page", ck, 64, 5*time.Second) })
	b.Logf("after proxied load: gatehouse %s (%s); bare proxy %s", rssParts(g.pid), e.goMemory(g), rssParts(bare.pid))

	// 20,000 first logins, pipelined: starts on four workers, signing on
	// two, ACS posts on four; the last 10,000 sessions are kept.
	cookies := make([]*http.Cookie, memorySessions)
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) { failed.Add(1); once.Do(func() { firstErr = err }) }
	toSign, toPost := make(chan int, 64), make(chan int, 64)
	logins := make([]started, memoryLogins)
	people := make([]person, memoryLogins)
	var next atomic.Int64
	var starters, signers, posters sync.WaitGroup
	var done atomic.Int64
	t0, cpu0 := time.Now(), procCPU(b, g.pid)
	for range 4 {
		starters.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= memoryLogins {
					return
				}
				l, err := e.start(g)
				if err != nil {
					fail(err)
					continue
				}
				logins[i], people[i] = l, e.newUser()
				toSign <- i
			}
		})
	}
	for range 2 {
		signers.Go(func() {
			for i := range toSign {
				if err := e.sign(g, &logins[i], people[i]); err != nil {
					fail(err)
					continue
				}
				toPost <- i
			}
		})
	}
	for range 4 {
		posters.Go(func() {
			for i := range toPost {
				c, err := e.finish(g, logins[i])
				if err != nil {
					fail(err)
				} else if k := i - (memoryLogins - memorySessions); k >= 0 {
					cookies[k] = c
				}
				logins[i] = started{} // the response is not needed any more
				if n := done.Add(1); n%5000 == 0 {
					v, _ := readRSS(g.pid)
					b.Logf("%d first logins after %v, gatehouse at %.1f MiB", n, time.Since(t0).Round(time.Second), float64(v)/(1<<20))
				}
			}
		})
	}
	starters.Wait()
	close(toSign)
	signers.Wait()
	close(toPost)
	posters.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d first logins failed; the first: %v", n, memoryLogins, firstErr)
	}
	b.Logf("%d first logins in %v, gatehouse CPU %.2f ms/login", memoryLogins, time.Since(t0).Round(time.Second),
		float64(procCPU(b, g.pid)-cpu0)/float64(time.Millisecond)/memoryLogins)
	// One proxied request with each session kept, so that whatever
	// gatehouse holds per session is held.
	_, bad, err := parallel(memorySessions, 8, func(i int) error {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/page", nil)
		req.AddCookie(cookies[i])
		resp, err := e.client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("session %d: %d", i, resp.StatusCode)
		}
		return nil
	})
	if bad > 0 {
		b.Fatalf("%d of %d sessions failed; the first: %v", bad, memorySessions, err)
	}
	m.afterLogins = procRSS(b, g.pid)
	b.Logf("after the logins: gatehouse %s (%s)", rssParts(g.pid), e.goMemory(g))
	if v, err := g.heapInuse(); err == nil {
		m.heapInuse = int64(v)
	}
	b.StopTimer()
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(mib(m.fresh[0]), "gatehouse-fresh-MiB")
	b.ReportMetric(mib(m.load[0]), "gatehouse-load-MiB")
	b.ReportMetric(mib(m.afterLogins), "gatehouse-20k-logins-MiB")
	b.ReportMetric(mib(m.fresh[1]), "bare-fresh-MiB")
	b.ReportMetric(mib(m.load[1]), "bare-load-MiB")
	sum.memory = m
}

// peersSummary is what BenchmarkPeers's parts measured, for the table.
type peersSummary struct {
	load    string
	took    []string // each part that ran, and how long it took
	logins  []loginFigures
	proxied []proxiedRow
	memory  *memoryFigures
}

// loginFigures are medians of the rounds; index 0 is gatehouse, 1 samlsp.
type loginFigures struct {
	kind                             string
	perSec, acsPerSec, cpuMs, allocs [2]float64
}

type proxiedRow struct {
	conns                        int
	cookie                       string
	gRPS, bareRPS, gP99, bareP99 float64 // p99 in µs
}

// memoryFigures are VmRSS in bytes; index 0 is gatehouse, 1 the bare proxy.
type memoryFigures struct {
	fresh, load [2]int64
	afterLogins int64
	heapInuse   int64 // gatehouse's Go heap in use after the logins
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// print writes the summary table of the parts that ran.
func (s *peersSummary) print(w io.Writer) {
	fmt.Fprintf(w, "\nBenchmarkPeers summary (load average at start: %s)\n", s.load)
	row := func(what, g, peer, ratio, goal string) {
		fmt.Fprintf(w, "  %-40s %11s %11s %7s  %s\n", what, g, peer, ratio, goal)
	}
	f0 := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	if len(s.logins) > 0 {
		fmt.Fprintf(w, "logins, %d concurrent, %d per round, median of 3 rounds\n", loginConcurrency, loginsPerRound)
		row("", "gatehouse", "samlsp", "ratio", "goal")
		for _, f := range s.logins {
			want := map[string]float64{"repeat": 1.3, "first": 1.1}[f.kind]
			ratio := f.perSec[0] / f.perSec[1]
			row(f.kind+" logins/s", f0(f.perSec[0]), f0(f.perSec[1]), f2(ratio), fmt.Sprintf(">=%.1fx %s", want, verdict(ratio >= want)))
			row(f.kind+" ACS-only logins/s", f0(f.acsPerSec[0]), f0(f.acsPerSec[1]), f2(f.acsPerSec[0]/f.acsPerSec[1]), "")
			row(f.kind+" server CPU ms/login", f2(f.cpuMs[0]), f2(f.cpuMs[1]), f2(f.cpuMs[0]/f.cpuMs[1]), "")
			row(f.kind+" allocations/login", f0(f.allocs[0]), f0(f.allocs[1]), f2(f.allocs[0]/f.allocs[1]), "")
		}
	}
	if len(s.proxied) > 0 {
		fmt.Fprintf(w, "proxied, wrk -t2, 1 KiB page, median of 3 rounds of 5s\n")
		row("", "gatehouse", "bare proxy", "ratio", "goal")
		for _, p := range s.proxied {
			rr, pr := p.gRPS/p.bareRPS, p.gP99/p.bareP99
			row(fmt.Sprintf("c%d %s cookie req/s", p.conns, p.cookie), f0(p.gRPS), f0(p.bareRPS), f2(rr), ">=0.95x "+verdict(rr >= 0.95))
			row(fmt.Sprintf("c%d %s cookie p99 ms", p.conns, p.cookie), f2(p.gP99/1000), f2(p.bareP99/1000), f2(pr), "<=1.3x "+verdict(pr <= 1.3))
		}
	}
	if m := s.memory; m != nil {
		mib := func(v int64) string { return strconv.FormatFloat(float64(v)/(1<<20), 'f', 1, 64) }
		fmt.Fprintf(w, "memory, VmRSS MiB\n")
		row("", "gatehouse", "bare proxy", "", "goal")
		row("fresh (one login)", mib(m.fresh[0]), mib(m.fresh[1]), "", "")
		row("max under proxied load, c64", mib(m.load[0]), mib(m.load[1]), "", "<25 "+verdict(m.load[0] < 25<<20))
		row(fmt.Sprintf("after %dk logins, %dk sessions", memoryLogins/1000, memorySessions/1000), mib(m.afterLogins), "", "",
			"<40 "+verdict(m.afterLogins < 40<<20))
		if m.heapInuse > 0 {
			row("  of which Go heap in use", mib(m.heapInuse), "", "", "")
		}
	}
	if len(s.took) > 0 {
		fmt.Fprintf(w, "parts run: %s\n", strings.Join(s.took, ", "))
	}
}
