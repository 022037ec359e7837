//go:build soak

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak runs one gatehouse process (SQLite, SCIM on) under a mixed
// load for SOAK_DURATION (default 1m): proxied requests of signed-in
// users, logins through the ACS (half of them new users), and SCIM
// writes, from several workers. It reports the throughput and errors of
// each, and samples the process's resident memory every second.
//
// Memory is flat when it stops growing once warmed up: the samples after
// the warm-up (the first quarter of the run, at least 20s) are split in
// thirds, and the test fails when the smallest sample of the last third
// is above the largest of the first by more than the slack (4 MiB or a
// tenth, whichever is more). A collector's saw-tooth keeps the last
// third's low points under the first third's peaks; a leak lifts them
// all, by its rate times a third of the run (TestSoakFlatRule).
// The replay cache grows for the lifetime of its entries (the login
// timeout, the assertions' NotOnOrAfter): at the soak's login rate that
// is well inside the slack. Run it with `make soak`
// (SOAK_DURATION=10m make soak).
func TestSoak(t *testing.T) {
	d := time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	g := startMeasured(t, "scim:\n  tokens: [\"${GATEHOUSE_TEST_SCIM_TOKEN}\"]\n")
	// Ten signed-in browsers for the proxied traffic.
	var sessions []*http.Cookie
	for i := range 10 {
		c, err := g.login(person{nameID: fmt.Sprintf("soak-user-%d", i), uid: fmt.Sprintf("soak%d", i), mail: "soak@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, c)
	}
	samples := g.sample(time.Second)
	var proxied, logins, scimWrites, errs atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				switch {
				case w < 5: // proxied requests
					if code, err := g.get(fmt.Sprintf("/page/%d", i), sessions[(w+i)%len(sessions)]); err != nil || code != http.StatusOK {
						fail(fmt.Errorf("proxied request: %d %v", code, err))
					} else {
						proxied.Add(1)
					}
				case w < 7: // logins, half of them new users
					p := person{nameID: fmt.Sprintf("soak-login-%d-%d", w, i%500), uid: fmt.Sprintf("login%d_%d", w, i%500), mail: "soak@example.com"}
					if _, err := g.login(p); err != nil {
						fail(err)
					} else {
						logins.Add(1)
					}
				default: // SCIM writes
					body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"scim-%d-%d"}`, w, i)
					if code, err := g.scimCreate(body); err != nil || code != http.StatusCreated {
						fail(fmt.Errorf("SCIM create: %d %v", code, err))
					} else {
						scimWrites.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	rss := samples()
	secs := d.Seconds()
	t.Logf("soak %s: proxied %d (%.0f/s), logins %d (%.1f/s), SCIM writes %d (%.1f/s), errors %d", d,
		proxied.Load(), float64(proxied.Load())/secs, logins.Load(), float64(logins.Load())/secs,
		scimWrites.Load(), float64(scimWrites.Load())/secs, errs.Load())
	if errs.Load() > 0 {
		t.Errorf("%d requests failed; the first: %v", errs.Load(), firstErr.Load())
	}
	warm := max(d/4, 20*time.Second)
	summary, err := flat(rss, int(warm/time.Second))
	if err != nil {
		t.Error(err)
	}
	t.Log(summary)
	t.Logf("memory: %s", g.memory())
}

// TestMemoryAfterLogins measures the resident memory of one gatehouse
// process (SQLite) fresh, after MEMORY_LOGINS logins of distinct new
// users (default 20,000), and after one proxied request with each of the
// last 10,000 sessions. Run it alone, with the soak tag:
//
//	go test -tags soak -run '^TestMemoryAfterLogins$' -v ./test
func TestMemoryAfterLogins(t *testing.T) {
	n := 20000
	if v := os.Getenv("MEMORY_LOGINS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	g := startMeasured(t, "")
	t.Logf("fresh: %s", g.memory())
	sessions := make([]*http.Cookie, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				c, err := g.login(person{nameID: fmt.Sprintf("mem-user-%d", i), uid: fmt.Sprintf("mem%d", i),
					mail: fmt.Sprintf("mem%d@example.com", i), display: "Memory Test User", groups: []string{"staff"}})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				sessions[i] = c
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d logins (%.0f/s): %s", n, float64(n)/time.Since(start).Seconds(), g.memory())
	live := sessions[max(0, n-10000):]
	next.Store(0)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(live) {
					return
				}
				if code, err := g.get("/", live[i]); err != nil || code != http.StatusOK {
					firstErr.CompareAndSwap(nil, fmt.Errorf("request with session %d: %d %v", i, code, err))
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		t.Fatal(err)
	}
	t.Logf("after a request with each of %d live sessions: %s", len(live), g.memory())
}

// measured is one gatehouse process under measurement.
type measured struct {
	t      *testing.T
	r      *replica
	idp    signer
	base   string
	client *http.Client
}

// startMeasured starts gatehouse serve with SQLite, an upstream that
// answers every request with a short page, and the extra config; env
// adds to the process's environment. The binary is built from this tree, or GATEHOUSE_BIN names one (another
// version, for a comparison).
func startMeasured(t *testing.T, extra string, env ...string) *measured {
	t.Helper()
	bin := os.Getenv("GATEHOUSE_BIN")
	if bin == "" {
		bin = buildGatehouse(t)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(upstream.Close)
	dir := t.TempDir()
	idp := loadSigner(t, "idp")
	metadata := writeMetadata(t, dir, "corp", idpEntityID, idpSSO, idp)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	config := processConfig(base, upstream.URL, metadata, dir, "log:\n  level: warn\n  access: false\nrate_limit:\n  disabled: true\n"+extra)
	env = append([]string{"GATEHOUSE_TEST_COOKIE_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		"GATEHOUSE_TEST_SCIM_TOKEN=" + scimToken}, env...)
	r := startReplica(t, bin, "gatehouse", config, env, port)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &measured{t: t, r: r, idp: idp, base: base, client: &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (g *measured) do(req *http.Request) (*http.Response, error) {
	req.Host = g.r.host
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// login signs p in through the ACS and returns the session cookie.
func (g *measured) login(p person) (*http.Cookie, error) {
	req, _ := http.NewRequest(http.MethodGet, g.base+"/home", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := g.do(req)
	if err != nil {
		return nil, err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), idpSSO) {
		return nil, fmt.Errorf("start login: %d %q", resp.StatusCode, loc)
	}
	var pending *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "gatehouse_login_") {
			pending = c
		}
	}
	if pending == nil {
		return nil, errors.New("start login: no login-state cookie")
	}
	id := decodeRedirectRequest(g.t, loc).SelectAttrValue("ID", "")
	doc := processResponse(g.t, g.base, g.idp, p, id)
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {loc.Query().Get("RelayState")}}
	req, _ = http.NewRequest(http.MethodPost, g.base+"/.gatehouse/saml/acs", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.AddCookie(pending)
	if resp, err = g.do(req); err != nil {
		return nil, err
	}
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse" && c.Value != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("login of %s: %d, no session cookie", p.nameID, resp.StatusCode)
}

// get requests path with a session, as an API client.
func (g *measured) get(path string, session *http.Cookie) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, g.base+path, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(session)
	resp, err := g.do(req)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func (g *measured) scimCreate(body string) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, g.base+"/.gatehouse/scim/v2/Users", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := g.do(req)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// status reads fields of /proc/PID/status, in KiB.
func (g *measured) status(fields ...string) map[string]int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", g.r.process.Pid))
	if err != nil {
		g.t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && slices.Contains(fields, name) {
			out[name], _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return out
}

// memory describes the process's memory now: resident (anonymous and
// file-backed, that is mostly the binary's code and read-only data) and
// the Go heap as the admin listener's metrics report it.
func (g *measured) memory() string {
	s := g.status("VmRSS", "RssAnon", "RssFile")
	heap := ""
	if resp, err := http.Get(g.r.admin + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			for _, name := range []string{"go_memstats_heap_inuse_bytes ", "go_memstats_heap_idle_bytes ", "go_memstats_heap_released_bytes ", "go_memstats_stack_inuse_bytes ", "go_goroutines "} {
				if v, ok := strings.CutPrefix(line, name); ok {
					f, _ := strconv.ParseFloat(v, 64)
					if name == "go_goroutines " {
						heap += fmt.Sprintf(", goroutines %.0f", f)
					} else {
						heap += fmt.Sprintf(", %s %.1f MiB", strings.TrimSuffix(strings.TrimPrefix(name, "go_memstats_"), "_bytes "), f/(1<<20))
					}
				}
			}
		}
	}
	return fmt.Sprintf("RSS %.1f MiB (anonymous %.1f, file %.1f)%s", float64(s["VmRSS"])/1024, float64(s["RssAnon"])/1024, float64(s["RssFile"])/1024, heap)
}

// sample reads the process's RSS (KiB) every interval until the returned
// function is called, which returns the samples.
func (g *measured) sample(every time.Duration) func() []int64 {
	var mu sync.Mutex
	var rss []int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				v := g.status("VmRSS")["VmRSS"]
				mu.Lock()
				rss = append(rss, v)
				mu.Unlock()
			}
		}
	}()
	return func() []int64 {
		close(done)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		return rss
	}
}

// flat reports an error when the RSS samples (KiB, one a second) keep
// growing after the first warm of them: see TestSoak.
func flat(rss []int64, warm int) (string, error) {
	if len(rss) < warm+10 {
		return "", fmt.Errorf("only %d memory samples, %d of them warm-up: run longer", len(rss), warm)
	}
	after := rss[warm:]
	first, last := after[:len(after)/3], after[len(after)-len(after)/3:]
	peak, low := slices.Max(first), slices.Min(last)
	slack := max(4<<10, peak/10)
	summary := fmt.Sprintf("RSS after %ds of warm-up: first third %.1f-%.1f MiB, last third %.1f-%.1f MiB (start %.1f MiB)",
		warm, float64(slices.Min(first))/1024, float64(peak)/1024, float64(low)/1024, float64(slices.Max(last))/1024, float64(rss[0])/1024)
	if low > peak+slack {
		return summary, fmt.Errorf("memory keeps growing: %s; the last third's lowest is above the first third's highest by more than %.1f MiB", summary, float64(slack)/1024)
	}
	return summary, nil
}

// TestSoakFlatRule: the soak's rule passes a collector's saw-tooth and a
// level that steps down, and fails a steady climb and a level that steps
// up for good.
func TestSoakFlatRule(t *testing.T) {
	series := func(n int, f func(i int) int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	const mib = 1024
	for _, c := range []struct {
		name string
		rss  []int64
		flat bool
	}{
		{"saw-tooth", series(60, func(i int) int64 { return 30*mib + int64(i%7)*mib }), true},
		{"steps down", series(60, func(i int) int64 { return 40*mib - int64(min(i, 30))*mib/4 }), true},
		{"climbs 0.5 MiB a second", series(60, func(i int) int64 { return 30*mib + int64(i)*mib/2 }), false},
		{"steps up 8 MiB", series(60, func(i int) int64 { return 30*mib + int64(i/40)*8*mib }), false},
	} {
		if _, err := flat(c.rss, 15); (err == nil) != c.flat {
			t.Errorf("%s: %v, want flat %v", c.name, err, c.flat)
		}
	}
}

// TestMemoryUnderProxiedLoad measures the resident memory of one
// gatehouse process before and during wrk's load of proxied requests of
// one signed-in user (64 connections for MEMORY_LOAD, default 10s), and
// the requests a second it served. MEMORY_ENV adds environment variables
// to the process (GOGC=50,GOMEMLIMIT=16MiB), to compare runtime settings
// in one run:
//
//	go test -tags soak -run '^TestMemoryUnderProxiedLoad$' -v ./test
func TestMemoryUnderProxiedLoad(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("wrk is not installed (Debian: apt-get install wrk)")
	}
	d := 10 * time.Second
	if v := os.Getenv("MEMORY_LOAD"); v != "" {
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	if v := os.Getenv("MEMORY_ENV"); v != "" {
		env = strings.Split(v, ",")
	}
	g := startMeasured(t, "", env...)
	session, err := g.login(person{nameID: "load-user", uid: "load", mail: "load@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := g.get("/", session); err != nil || code != http.StatusOK {
		t.Fatalf("proxied request: %d %v", code, err)
	}
	t.Logf("signed in, idle: %s", g.memory())
	samples := g.sample(500 * time.Millisecond)
	out, err := exec.Command(wrk, "-t2", "-c64", fmt.Sprintf("-d%ds", int(d.Seconds())), "-H", "Cookie: "+session.Name+"="+session.Value,
		"-H", "Accept: application/json", "-H", "Host: "+g.r.host, g.base+"/page").CombinedOutput()
	during := g.memory()
	rss := samples()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	rate := ""
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Requests/sec:"); ok {
			rate = strings.TrimSpace(v)
		}
		if strings.Contains(line, "Non-2xx") {
			t.Errorf("wrk: %s", strings.TrimSpace(line))
		}
	}
	t.Logf("under load (%s, 64 connections, env %v): %s req/s, RSS peak %.1f MiB; at the end: %s", d, env, rate,
		float64(slices.Max(rss))/1024, during)
}
