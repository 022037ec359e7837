package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml/xmlenc"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/session"
	"gatehouse/test/slapd"
)

// The benchmarks measure gatehouse against a baseline in the same run, as
// ratios, because the machines are shared and noisy. `make bench` runs
// them once each (-benchtime 1x); each does its own timed rounds.

// wrkResult is one wrk run.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
}

var (
	wrkRPS = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkErr = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// runWrk drives target with wrk at 64 connections (see runWrkAt).
func runWrk(b *testing.B, target, cookie string, d time.Duration) wrkResult {
	b.Helper()
	return runWrkAt(b, target, cookie, 64, d)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkAuthenticatedProxy: wrk drives authenticated GETs through
// gatehouse and through a bare httputil.ReverseProxy to the same upstream,
// in alternating rounds, at 64 and at 16 connections; it reports both and
// their ratio. A second gatehouse, whose clock is past the cookie's
// refresh step, serves a client that never stores the refreshed cookie
// (every request finds the cookie stale): the stale- figures.
func BenchmarkAuthenticatedProxy(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk is required: apt-get install wrk (make bench does this)")
	}
	h := newHarness(b, options{accessLog: io.Discard}) // the access log on, as by default
	cookie := benchSession(b, h)
	hs := newHarness(b, options{accessLog: io.Discard})
	staleCookie := benchSession(b, hs)
	hs.clock.Advance(2 * time.Minute) // past the refresh step, within the idle timeout
	body := benchBody

	target, _ := url.Parse(h.upstream.server.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport:  tunedTransport(),
		BufferPool: &benchPool{},
		ErrorLog:   log.New(io.Discard, "", 0),
	})
	defer bare.Close()
	for _, c := range []struct{ base, cookie string }{{bare.URL, cookie}, {h.base, cookie}, {hs.base, staleCookie}} {
		req, _ := http.NewRequest(http.MethodGet, c.base+"/page", nil)
		req.Header.Set("Cookie", c.cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got := readAll(b, resp)
		if resp.StatusCode != http.StatusOK || got != string(body) {
			b.Fatalf("%s/page answers %d, not the upstream page", c.base, resp.StatusCode)
		}
		if refreshed := len(resp.Header["Set-Cookie"]) > 0; refreshed != (c.base == hs.base) {
			b.Fatalf("%s/page: Set-Cookie %q", c.base, resp.Header["Set-Cookie"])
		}
	}

	const rounds = 3
	d := 5 * time.Second
	runWrk(b, h.base+"/warmup", cookie, time.Second)
	runWrk(b, hs.base+"/warmup", staleCookie, time.Second)
	runWrk(b, bare.URL+"/warmup", cookie, time.Second)
	pick := func(rs []wrkResult, f func(wrkResult) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	rps := func(r wrkResult) float64 { return r.rps }
	p50 := func(r wrkResult) float64 { return float64(r.p50.Microseconds()) }
	p99 := func(r wrkResult) float64 { return float64(r.p99.Microseconds()) }
	b.ResetTimer()
	for _, conns := range []int{64, 16} {
		var g, st, base []wrkResult
		for i := range rounds {
			base = append(base, runWrkAt(b, bare.URL+"/page", cookie, conns, d))
			g = append(g, runWrkAt(b, h.base+"/page", cookie, conns, d))
			st = append(st, runWrkAt(b, hs.base+"/page", staleCookie, conns, d))
			b.Logf("c%d round %d: gatehouse %.0f req/s p50 %v p99 %v | stale cookie %.0f req/s p99 %v | bare %.0f req/s p50 %v p99 %v", conns, i+1,
				g[i].rps, g[i].p50, g[i].p99, st[i].rps, st[i].p99, base[i].rps, base[i].p50, base[i].p99)
		}
		pre := fmt.Sprintf("c%d-", conns)
		b.ReportMetric(pick(g, rps), pre+"gatehouse-req/s")
		b.ReportMetric(pick(base, rps), pre+"bare-req/s")
		b.ReportMetric(pick(g, rps)/pick(base, rps), pre+"throughput-ratio")
		b.ReportMetric(pick(st, rps)/pick(base, rps), pre+"stale-throughput-ratio")
		b.ReportMetric(pick(g, p50), pre+"gatehouse-p50-µs")
		b.ReportMetric(pick(base, p50), pre+"bare-p50-µs")
		b.ReportMetric(pick(g, p99)/pick(base, p99), pre+"p99-ratio")
		b.ReportMetric(pick(st, p99)/pick(base, p99), pre+"stale-p99-ratio")
	}
	b.StopTimer()
}

var benchBody = []byte(strings.Repeat("x", 1024))

// benchSession makes the upstream answer a 1 KiB page, logs alice in and
// returns her Cookie header. The fake clock stays at t0, so the session
// cannot expire mid-run.
func benchSession(b *testing.B, h *harness) string {
	b.Helper()
	h.upstream.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(benchBody)
	}
	h.upstream.discard = true
	c := h.browser()
	resp := h.login(c, "/", alice)
	resp.Body.Close()
	u, _ := url.Parse(h.base)
	var cookies []string
	for _, ck := range c.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	return strings.Join(cookies, "; ")
}

// BenchmarkSignedIdentity: authenticated throughput with the signed
// identity JWT against the same gatehouse without it, in alternating wrk
// rounds of one run; it reports both, their ratio and the added time per
// request.
func BenchmarkSignedIdentity(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk is required: apt-get install wrk (make bench does this)")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	plain := newHarness(b, options{})
	signed := newHarness(b, options{identityKeys: []*ecdsa.PrivateKey{key}})
	without, with := alternateWrk(b, plain, signed)
	w, wo := median(with), median(without)
	b.ReportMetric(wo, "without-jwt-req/s")
	b.ReportMetric(w, "with-jwt-req/s")
	b.ReportMetric(w/wo, "throughput-ratio")
	// Two cores serve the requests: per-request CPU added, roughly.
	b.ReportMetric((1/w-1/wo)*2e6, "added-µs/request")
}

// BenchmarkAccessLogCost: authenticated throughput with the access log
// (on by default: one JSON line per request, here to a discarding sink)
// against the same gatehouse with log.access: false, in alternating wrk
// rounds; it reports both, their ratio and the added time per request.
func BenchmarkAccessLogCost(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk is required: apt-get install wrk (make bench does this)")
	}
	off := newHarness(b, options{accessOff: true})
	on := newHarness(b, options{accessLog: io.Discard})
	without, with := alternateWrk(b, off, on)
	w, wo := median(with), median(without)
	b.ReportMetric(wo, "without-log-req/s")
	b.ReportMetric(w, "with-log-req/s")
	b.ReportMetric(w/wo, "throughput-ratio")
	b.ReportMetric((1/w-1/wo)*2e6, "added-µs/request")
}

// alternateWrk signs alice in on x and y and measures their authenticated
// throughput in alternating wrk rounds; it returns each one's req/s.
func alternateWrk(b *testing.B, x, y *harness) (xs, ys []float64) {
	b.Helper()
	xc, yc := benchSession(b, x), benchSession(b, y)
	runWrk(b, x.base+"/warmup", xc, time.Second)
	runWrk(b, y.base+"/warmup", yc, time.Second)
	const rounds = 3
	d := 5 * time.Second
	b.ResetTimer()
	for range rounds {
		xs = append(xs, runWrk(b, x.base+"/page", xc, d).rps)
		ys = append(ys, runWrk(b, y.base+"/page", yc, d).rps)
	}
	b.StopTimer()
	return xs, ys
}

// benchPool gives the baseline the same buffer reuse gatehouse has, so the
// ratio measures gatehouse's own work (session, headers, identity cache).
type benchPool struct{ p sync.Pool }

func (bp *benchPool) Get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}
func (bp *benchPool) Put(b []byte) { bp.p.Put(&b) }

// tunedTransport matches the pool settings gatehouse uses upstream, so the
// baseline is not handicapped by Go's default of two idle connections.
func tunedTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 256
	return t
}

// BenchmarkUnchangedLogins: logins per second through the ACS for a user
// whose attributes have not changed: structural checks, signature check,
// replay cache, JIT read path (no write) and session issue. Responses are
// signed beforehand, so only the SP's work is timed.
func BenchmarkUnchangedLogins(b *testing.B) {
	h := newHarness(b, options{base: goldenBase})
	h.upstream.discard = true
	const n = 2000
	firstLogin(b, h, alice)
	elapsed := timeLogins(b, h, prepareLogins(b, h, n, func(int) person { return alice }))
	b.ReportMetric(float64(n)/elapsed.Seconds(), "logins/s")
	b.ReportMetric(float64(elapsed.Microseconds())/n*4, "µs/login")
}

// BenchmarkLDAPLogins compares logins with the user store in slapd to the
// same logins on SQLite, in one run: the repeat login of an unchanged
// user (LDAP operations sent, time added per login) and the first login
// of new users (entry and memberships created).
func BenchmarkLDAPLogins(b *testing.B) {
	srv := slapd.Start(b, slapd.WithSchema(ldapdir.SchemaLDIF, "gatehouseState"))
	const repeat, first = 2000, 300
	newUser := func(i int) person {
		p := alice
		p.nameID, p.uid, p.mail = fmt.Sprintf("new-%05d", i), fmt.Sprintf("user%05d", i), fmt.Sprintf("user%05d@example.com", i)
		return p
	}
	type result struct{ repeat, first time.Duration }
	run := func(store provision.Store) result {
		h := newHarness(b, options{base: goldenBase, store: store})
		h.upstream.discard = true
		firstLogin(b, h, alice)
		var r result
		r.repeat = timeLogins(b, h, prepareLogins(b, h, repeat, func(int) person { return alice }))
		r.first = timeLogins(b, h, prepareLogins(b, h, first, newUser))
		return r
	}
	sq := run(nil)
	st := newLDAPStore(b, srv, srv.NewTenant(b))
	h := newHarness(b, options{base: goldenBase, store: st})
	h.upstream.discard = true
	firstLogin(b, h, alice)
	docs := prepareLogins(b, h, repeat, func(int) person { return alice })
	before := st.Stats()
	repeatLDAP := timeLogins(b, h, docs)
	mid := st.Stats()
	docs = prepareLogins(b, h, first, newUser)
	firstLDAP := timeLogins(b, h, docs)
	after := st.Stats()

	per := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) * 4 } // 4 workers
	b.ReportMetric(per(sq.repeat, repeat), "sqlite-repeat-µs/login")
	b.ReportMetric(per(repeatLDAP, repeat), "ldap-repeat-µs/login")
	b.ReportMetric(per(repeatLDAP, repeat)-per(sq.repeat, repeat), "ldap-added-µs/repeat-login")
	b.ReportMetric(float64(repeatLDAP)/float64(sq.repeat), "ldap/sqlite-repeat-ratio")
	b.ReportMetric(float64(mid.Searches-before.Searches)/repeat, "ldap-searches/repeat-login")
	b.ReportMetric(float64(mid.Adds+mid.Modifies+mid.ModifyDNs+mid.Deletes-before.Adds-before.Modifies-before.ModifyDNs-before.Deletes)/repeat, "ldap-writes/repeat-login")
	b.ReportMetric(per(sq.first, first), "sqlite-first-µs/login")
	b.ReportMetric(per(firstLDAP, first), "ldap-first-µs/login")
	b.ReportMetric(float64(firstLDAP)/float64(sq.first), "ldap/sqlite-first-ratio")
	b.ReportMetric(float64(after.Searches-mid.Searches)/first, "ldap-searches/first-login")
	b.ReportMetric(float64(after.Compares-mid.Compares)/first, "ldap-compares/first-login")
	b.ReportMetric(float64(after.Adds+after.Modifies-mid.Adds-mid.Modifies)/first, "ldap-writes/first-login")
}

// BenchmarkEncryptedLogins: logins per second with the assertion
// encrypted (RSA-OAEP, AES-256-CBC) against the same logins with it plain,
// in one run, through the whole ACS.
func BenchmarkEncryptedLogins(b *testing.B) {
	key, cert := spKeyPair(b, b.TempDir(), "sp")
	// crewjam/saml's own AES-GCM encrypter is broken (wrong nonce size),
	// so the encrypted logins are AES-CBC, which the IdP must allow.
	h := newHarness(b, options{base: goldenBase, spKeys: []session.SPKey{key}, corp: allowCBC})
	h.upstream.discard = true
	firstLogin(b, h, alice)
	const n = 1000
	plain := prepareLogins(b, h, n, func(int) person { return alice })
	enc := make([]preparedLogin, n)
	encrypt := withCrewjam(xmlenc.OAEP(), xmlenc.AES256CBC, false)
	for i := range enc {
		resp, a := respond(goldenSpec(alice, fmt.Sprintf("bench-enc-%05d", i)))
		enc[i].doc = serialize(assemble(resp, encrypt(b, sign(b, a, h.idp), cert, key.CertFile)))
		enc[i].relay, enc[i].cookie = h.pendingLogin(b)
	}
	tp := timeLogins(b, h, plain)
	te := timeLogins(b, h, enc)
	b.ReportMetric(float64(n)/tp.Seconds(), "plain-logins/s")
	b.ReportMetric(float64(n)/te.Seconds(), "encrypted-logins/s")
	b.ReportMetric(tp.Seconds()/te.Seconds(), "encrypted/plain-throughput")
}

// firstLogin provisions p once.
func firstLogin(b testing.TB, h *harness, p person) {
	b.Helper()
	if rec := postGolden(b, h, signedAssertion(b, goldenSpec(p, "bench-first-"+p.nameID), h.idp), false); rec.Code != http.StatusSeeOther {
		b.Fatalf("first login: %d", rec.Code)
	}
}

type preparedLogin struct {
	doc    []byte
	relay  string
	cookie *http.Cookie
}

// prepareLogins signs n responses (for who(i)) and starts their logins,
// so that timing covers only the ACS.
func prepareLogins(b *testing.B, h *harness, n int, who func(int) person) []preparedLogin {
	b.Helper()
	out := make([]preparedLogin, n)
	for i := range out {
		s := goldenSpec(who(i), fmt.Sprintf("bench-%s-%05d", who(i).nameID, i))
		out[i].doc = signedAssertion(b, s, h.idp)
		out[i].relay, out[i].cookie = h.pendingLogin(b)
	}
	return out
}

// timeLogins posts the prepared logins from four workers and returns the
// wall time.
func timeLogins(b *testing.B, h *harness, logins []preparedLogin) time.Duration {
	b.Helper()
	b.ResetTimer()
	start := time.Now()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(logins)) {
					return
				}
				l := logins[i]
				if rec := h.postACS(l.doc, l.relay, l.cookie); rec.Code != http.StatusSeeOther {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d logins failed", failed.Load())
	}
	return elapsed
}
