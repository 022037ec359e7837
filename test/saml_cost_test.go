package test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/etree"

	"gatehouse/provision"
	"gatehouse/proxy"
)

// The CPU that one unauthenticated SAML message costs gatehouse, for the
// hostile shapes of issue 15 beside valid logins, measured as process CPU
// time (user and system, from getrusage) over a batch of requests served
// in-process, so that only gatehouse's own work is counted. The figures
// are ratios taken in one run, never absolute times.

// slowStore gives JIT a minute: the first login of a user in thousands of
// groups writes thousands of memberships, which takes longer than the default
// five seconds under the race detector.
func slowStore(c *proxy.Config) { c.JITTimeout = time.Minute }

// cpuTime is the CPU time this process has used.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// costShape is one kind of request: make builds the i-th request (before
// the clock runs) and want is the status it must get.
type costShape struct {
	name string
	make func(i int) *http.Request
	want int
	// large marks a shape as big as the largest legitimate messages the
	// limits admit: it is held against the login of a user in as many
	// groups as provision admits (provision.MaxGroups), not against a
	// typical login.
	large bool
}

// cpuPerRequest serves n requests of the shape and returns the CPU each
// cost on average.
func cpuPerRequest(t testing.TB, h *harness, s costShape, n int) time.Duration {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = s.make(i)
	}
	runtime.GC()
	start := cpuTime(t)
	for _, req := range reqs {
		rec := httptest.NewRecorder()
		h.proxy.ServeHTTP(rec, req)
		if s.want != 0 && rec.Code != s.want {
			t.Fatalf("%s: status %d, want %d (%v)", s.name, rec.Code, s.want, h.refusals())
		}
	}
	runtime.GC() // the garbage a request leaves is part of its cost
	return (cpuTime(t) - start) / time.Duration(n)
}

// acsRequest is a POST of form to the ACS with the login-state cookie, if
// any.
func acsRequest(form string, cookie *http.Cookie) *http.Request {
	req := httptest.NewRequest(http.MethodPost, goldenBase+"/.gatehouse/saml/acs", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	return req
}

func responseForm(doc []byte, relay string) string {
	return url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {relay}}.Encode()
}

// manyGroups is alice in n groups.
func manyGroups(n int) person {
	p := alice
	p.groups = nil
	for i := range n {
		p.groups = append(p.groups, fmt.Sprintf("group-%05d", i))
	}
	return p
}

// costShapes are the valid logins and the hostile shapes, on h.
func costShapes(t testing.TB, h *harness) (valid, large costShape, hostile []costShape) {
	big := manyGroups(provision.MaxGroups)
	big.nameID, big.uid, big.mail = "cost-big-0001", "bigalice", "bigalice@example.com"
	firstLogin(t, h, alice)
	firstLogin(t, h, big)
	login := func(p person, tag string) func(int) *http.Request {
		return func(i int) *http.Request {
			doc := signedAssertion(t, goldenSpec(p, fmt.Sprintf("cost-%s-%05d", tag, i)), h.idp)
			relay, cookie := h.pendingLogin(t)
			return acsRequest(responseForm(doc, relay), cookie)
		}
	}
	withState := func(doc []byte) func(int) *http.Request {
		return func(int) *http.Request {
			relay, cookie := h.pendingLogin(t)
			return acsRequest(responseForm(doc, relay), cookie)
		}
	}
	slo := func(q string) func(int) *http.Request {
		return func(int) *http.Request {
			return httptest.NewRequest(http.MethodGet, goldenBase+"/.gatehouse/saml/slo?"+q, nil)
		}
	}
	garbage := make([]byte, 2<<20)
	rand.Read(garbage)
	hugeForm := responseForm(garbage, strings.Repeat("r", 43))
	head := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r">`
	// An unsigned response as large as the largest legitimate one (a
	// user in as many groups as provision admits): it passes the scan, is
	// built as a tree, and is refused for want of a signature.
	largestDoc := serialize(assemble(respond(goldenSpec(big, "cost-largest"))))

	// A real, signed response with thousands of small elements where
	// none belong (the second red team's shape: 11,000 empty elements in
	// Extensions, 60 KB), with a flood of comments, and with names the
	// round-trip check must judge one by one.
	padded := func(tag string, fill func(*etree.Element)) []byte {
		resp, a := respond(goldenSpec(alice, "cost-"+tag))
		ext := etree.NewElement("samlp:Extensions")
		fill(ext)
		resp.InsertChildAt(1, ext)
		signed := sign(t, a, h.idp)
		// Forged: the attacker has no IdP key, so the signature is broken.
		signed.FindElement(".//NameID").SetText("mallory")
		return serialize(assemble(resp, signed))
	}
	extensionsDoc := padded("extensions", func(e *etree.Element) {
		for range 11000 {
			e.CreateElement("e")
		}
	})
	commentsDoc := padded("comments", func(e *etree.Element) {
		for range 10_000 {
			e.CreateComment("")
		}
	})
	oddDoc := padded("odd-names", func(e *etree.Element) {
		for i := range 900 {
			e.CreateElement(fmt.Sprintf("e·%d", i))
		}
	})

	valid = costShape{name: "valid-login", make: login(alice, "valid"), want: http.StatusSeeOther}
	large = costShape{name: "valid-login-max-groups", make: login(big, "large"), want: http.StatusSeeOther}
	hostile = []costShape{
		{name: "slo-get-deflated-element-bomb", make: slo(deflatedQuery(t, elementBomb(65000), nil)), want: http.StatusForbidden},
		{name: "slo-get-element-bomb-signed-by-idp", make: slo(deflatedQuery(t, elementBomb(65000), h.idp.key)), want: http.StatusForbidden},
		{name: "acs-huge-post-no-login-state", make: func(int) *http.Request { return acsRequest(hugeForm, nil) }, want: http.StatusForbidden},
		{name: "acs-huge-post-forged-login-cookie", make: func(int) *http.Request {
			return acsRequest(hugeForm, &http.Cookie{Name: "__Host-gatehouse_login_0", Value: strings.Repeat("A", 200)})
		}, want: http.StatusForbidden},
		{name: "acs-garbage-with-login-state", make: withState(garbage[:64<<10]), want: http.StatusForbidden},
		{name: "acs-deep-nesting", make: withState([]byte(head + strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000) + "</samlp:Response>")), want: http.StatusForbidden},
		{name: "acs-many-attributes", make: withState([]byte(head + "<a" + buildAttrs(10000) + "/></samlp:Response>")), want: http.StatusForbidden},
		{name: "acs-element-bomb", make: withState([]byte(head + strings.Repeat("<a/>", 25000) + "</samlp:Response>")), want: http.StatusForbidden},
		{name: "acs-empty-elements-in-extensions", make: withState(extensionsDoc), want: http.StatusForbidden},
		{name: "acs-comment-flood", make: withState(commentsDoc), want: http.StatusForbidden},
		{name: "acs-unusual-names", make: withState(oddDoc), want: http.StatusForbidden},
		// The largest body the ACS reads (2 MiB): with a login state it is
		// read whole (the RelayState may come last), so it costs what
		// reading a legitimate response of that size costs.
		{name: "acs-huge-garbage-with-login-state", make: func(int) *http.Request {
			relay, cookie := h.pendingLogin(t)
			return acsRequest(strings.Replace(hugeForm, strings.Repeat("r", 43), relay, 1), cookie)
		}, want: http.StatusForbidden, large: true},
		{name: "acs-largest-unsigned-within-limits", make: withState(largestDoc), want: http.StatusForbidden, large: true},
	}
	return valid, large, hostile
}

// TestHostileSAMLCostsNoMoreThanALogin: every hostile shape refused
// early costs no more CPU than a typical valid login (BenchmarkHostileSAML
// also holds the largest shapes against the login of a user in as many
// groups as provision admits). A ratio in one run, not a time.
func TestHostileSAMLCostsNoMoreThanALogin(t *testing.T) {
	h := newHarness(t, options{base: goldenBase, idpSLO: []string{bindingRedirect}, proxy: slowStore, storeTimeout: time.Minute})
	h.upstream.discard = true
	valid, _, hostile := costShapes(t, h)
	const n = 40
	v := cpuPerRequest(t, h, valid, n)
	for _, s := range hostile {
		if s.large {
			continue // held against the largest valid login by BenchmarkHostileSAML
		}
		c := cpuPerRequest(t, h, s, n)
		t.Logf("%-40s %8.0f µs CPU, %.3f of a valid login", s.name, float64(c.Microseconds()), float64(c)/float64(v))
		if c > v {
			t.Errorf("%s costs %v CPU a request, more than a valid login (%v)", s.name, c, v)
		}
	}
}

// BenchmarkHostileSAML reports the CPU of each hostile shape beside that
// of a valid login, and their ratios; `make bench` runs it.
func BenchmarkHostileSAML(b *testing.B) {
	h := newHarness(b, options{base: goldenBase, idpSLO: []string{bindingRedirect}, proxy: slowStore, storeTimeout: time.Minute})
	h.upstream.discard = true
	valid, large, hostile := costShapes(b, h)
	const n = 200
	b.ResetTimer()
	v := cpuPerRequest(b, h, valid, n)
	l := cpuPerRequest(b, h, large, 20)
	b.ReportMetric(float64(v.Microseconds()), "valid-login-cpu-µs")
	b.ReportMetric(float64(l.Microseconds()), "valid-login-max-groups-cpu-µs")
	for _, s := range hostile {
		ref, count := v, n
		if s.large {
			ref, count = l, 20
		}
		c := cpuPerRequest(b, h, s, count)
		b.ReportMetric(float64(c.Microseconds()), s.name+"-cpu-µs")
		b.ReportMetric(float64(c)/float64(ref), s.name+"/login")
		if c > ref {
			b.Errorf("%s costs %v CPU a request, more than the login it is held against (%v)", s.name, c, ref)
		}
	}
}

// hostilePaths are the longest paths gatehouse reads (max_path_length),
// made of the spellings that give the reserved-prefix and rule readings
// the most work, and one byte longer.
func hostilePaths(h *harness, maxLen int) []costShape {
	fill := func(unit string, n int) string { return strings.Repeat(unit, n/len(unit))[:n/len(unit)*len(unit)] }
	get := func(path string) func(int) *http.Request {
		return func(int) *http.Request {
			req := httptest.NewRequest(http.MethodGet, goldenBase+"/", nil)
			req.URL.RawPath, req.URL.Path = "", ""
			u, _ := url.Parse(goldenBase + path)
			req.URL = u
			req.RequestURI = path
			return req
		}
	}
	var shapes []costShape
	for _, unit := range []string{"/%252e%253bgatehouse~1;x:y", "/.gatehouse%2e;a/", "/g~1", "/a.php"} {
		shapes = append(shapes, costShape{name: "path-" + unit, make: get(fill(unit, maxLen)), want: 0})
	}
	shapes = append(shapes, costShape{name: "path-one-byte-too-long", make: get("/" + strings.Repeat("a", maxLen)), want: http.StatusRequestURITooLong})
	return shapes
}

// withPathRules gives the proxy rules and a public path, so every request
// path is read under every reading; and JIT a minute, for the first login
// of the user in thousands of groups that costShapes makes.
func withPathRules(c *proxy.Config) {
	slowStore(c)
	c.Authorization = []proxy.Rule{{Path: "/admin/", Allow: proxy.AllowDeny}, {Path: "/", Allow: proxy.AllowAuthenticated}}
	c.PublicPaths = []string{"/static/"}
}

// TestHostilePathsCostNoMoreThanALogin: every reading of the longest path
// gatehouse admits costs less than a valid login, and a longer one is
// refused (414) before any reading. A ratio in one run, not a time.
func TestHostilePathsCostNoMoreThanALogin(t *testing.T) {
	h := newHarness(t, options{base: goldenBase, proxy: withPathRules, storeTimeout: time.Minute})
	h.upstream.discard = true
	valid, _, _ := costShapes(t, h)
	const n = 40
	v := cpuPerRequest(t, h, valid, n)
	for _, s := range hostilePaths(h, 2048) {
		c := cpuPerRequest(t, h, s, n)
		t.Logf("%-40s %8.0f µs CPU, %.3f of a valid login", s.name, float64(c.Microseconds()), float64(c)/float64(v))
		if c > v {
			t.Errorf("%s costs %v CPU a request, more than a valid login (%v)", s.name, c, v)
		}
	}
}

// BenchmarkHostilePaths reports the CPU of the longest hostile paths
// beside that of a valid login; `make bench` runs it.
func BenchmarkHostilePaths(b *testing.B) {
	h := newHarness(b, options{base: goldenBase, proxy: withPathRules, storeTimeout: time.Minute})
	h.upstream.discard = true
	valid, _, _ := costShapes(b, h)
	const n = 200
	b.ResetTimer()
	v := cpuPerRequest(b, h, valid, n)
	b.ReportMetric(float64(v.Microseconds()), "valid-login-cpu-µs")
	for _, s := range hostilePaths(h, 2048) {
		c := cpuPerRequest(b, h, s, n)
		b.ReportMetric(float64(c.Microseconds()), s.name+"-cpu-µs")
		b.ReportMetric(float64(c)/float64(v), s.name+"/login")
	}
}
