package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
)

// TestReadyzRedactsCredentials: a check's cause quoting a DSN or a URL
// with credentials is shown without them on the admin listener.
func TestReadyzRedactsCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"dial postgres://gh:s3cr3t@db:5432/app: refused":              "dial postgres://gh:xxxxx@db:5432/app: refused",
		"redis://:s3cr3t@redis:6379/0 unreachable":                    "redis://:xxxxx@redis:6379/0 unreachable",
		"connect host=db user=gh password=s3cr3t dbname=app failed":   "connect host=db user=gh password=xxxxx dbname=app failed",
		"sqlserver://sa@db?database=app&password='s3cr3t'&x=1 failed": "sqlserver://sa@db?database=app&password=xxxxx&x=1 failed",
		"GET https://idp.example/md?token=s3cr3t: HTTP 404":           "GET https://idp.example/md?token=xxxxx HTTP 404",
		"fetch metadata: HTTP 404":                                    "fetch metadata: HTTP 404",
	} {
		if got := redact(in); got != want || strings.Contains(got, "s3cr3t") {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerboseReadiness: Kubernetes-style lines; a degraded check is
// listed as failed without failing readiness, a required one fails it;
// the public form names the checks only.
func TestVerboseReadiness(t *testing.T) {
	rd := Readiness{Ready: true, Checks: []CheckResult{
		{Name: "shutdown", Required: true},
		{Name: "store", Err: errors.New("dial postgres://u:pw@db/x: refused")},
		{Name: "idp/corp"},
	}}
	detail := verboseReadiness(rd, true, false)
	want := "[+]shutdown ok\n[-]store failed: dial postgres://u:xxxxx@db/x: refused\n[+]idp/corp ok\n" +
		"degraded (not failing readiness; ?strict fails on them): store\nreadyz check passed\n"
	if detail != want {
		t.Errorf("admin verbose:\n%s\nwant:\n%s", detail, want)
	}
	if public := verboseReadiness(rd, false, false); strings.Contains(public, "dial") || !strings.Contains(public, "[-]store failed\n") {
		t.Errorf("public verbose:\n%s", public)
	}
	if strict := verboseReadiness(rd, false, true); !strings.HasSuffix(strict, "readyz check failed\n") {
		t.Errorf("strict verbose:\n%s", strict)
	}
	rd.Ready = false
	rd.Checks[0].Err = errShuttingDown
	if v := verboseReadiness(rd, true, false); !strings.Contains(v, "[-]shutdown failed: shutting down\n") || !strings.HasSuffix(v, "readyz check failed\n") {
		t.Errorf("shutting down:\n%s", v)
	}
}

// countingStore answers Ping after a pause, counting the calls.
type countingStore struct {
	provision.Store
	pings atomic.Int32
}

func (s *countingStore) Ping(ctx context.Context) error {
	s.pings.Add(1)
	time.Sleep(20 * time.Millisecond)
	return nil
}

// TestReadinessChecksShared: probes and scrapers arriving together share
// one round trip per dependency for readyCacheTTL, and a dependency that
// hangs is given up after readyTimeout and reported as failing.
func TestReadinessChecksShared(t *testing.T) {
	st := &countingStore{}
	var redisCalls atomic.Int32
	p := &Proxy{log: zap.NewNop(), store: st, checks: []Check{
		{Name: "redis", Check: func(ctx context.Context) error { redisCalls.Add(1); return nil }},
		{Name: "hangs", Check: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	}}
	start := time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			r := p.ioChecks(context.Background())
			if r["store"] != nil || r["redis"] != nil || r["hangs"] == nil {
				t.Errorf("results: %v", r)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took > readyTimeout+time.Second {
		t.Errorf("a hanging check held the probes for %v", took)
	}
	if n, m := st.pings.Load(), redisCalls.Load(); n != 1 || m != 1 {
		t.Errorf("50 probes at once made %d store pings and %d Redis checks, want 1 each", n, m)
	}
	p.ready.at = time.Now().Add(-readyCacheTTL) // the results have aged
	p.ioChecks(context.Background())
	if n := st.pings.Load(); n != 2 {
		t.Errorf("after readyCacheTTL: %d store pings, want 2", n)
	}
}

// TestRedactPasswordWithAt (security, F8): a password holding "@" is
// hidden up to the last "@" before the host, not the first.
func TestRedactPasswordWithAt(t *testing.T) {
	for in, want := range map[string]string{
		"dial postgres://u:p@ss@db:5432/app: refused":   "dial postgres://u:xxxxx@db:5432/app: refused",
		"redis://:a@b@c@redis:6379/0 unreachable":       "redis://:xxxxx@redis:6379/0 unreachable",
		`parse "mysql://gh:s3@cr3t@db/app": bad port`:   `parse "mysql://gh:xxxxx@db/app": bad port`,
		"ldaps://cn=admin:s3cr3t@ldap.example:636 down": "ldaps://cn=admin:xxxxx@ldap.example:636 down",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactKeysInsideNames (security, F8): secret-bearing keys are
// redacted inside longer names and in their short forms.
func TestRedactKeysInsideNames(t *testing.T) {
	for in, want := range map[string]string{
		"host=db sslpassword=s3cr3t sslmode=require": "host=db sslpassword=xxxxx sslmode=require",
		"Server=db;Pass=s3cr3t;Database=app":         "Server=db;Pass=xxxxx;Database=app",
		"host=db pwd = s3cr3t user=gh":               "host=db pwd = xxxxx user=gh",
		"?client_secret=s3cr3t&x=1":                  "?client_secret=xxxxx&x=1",
		"auth_token=s3cr3t access_key=s3cr3t":        "auth_token=xxxxx access_key=xxxxx",
		`password="s3 cr3t" next`:                    `password=xxxxx next`,
		"secret=s3cr3t":                              "secret=xxxxx",
		// Second red-team pass: braces, YAML and JSON forms, odd URL
		// passwords.
		"Server=db;Password={s3;cr3t};Database=app":      "Server=db;Password=xxxxx;Database=app",
		"Server=db;Password={s3}}cr3t};Database=app":     "Server=db;Password=xxxxx;Database=app",
		"password: s3cr3t":                               "password: xxxxx",
		`{"password":"s3cr3t","user":"gh"}`:              `{"password":xxxxx,"user":"gh"}`,
		`{"password": "s3\"cr3t"}`:                       `{"password": xxxxx}`,
		"postgres://gh:s3 cr3t@db/app refused":           "postgres://gh:xxxxx@db/app refused",
		`sqlserver://gh:s3"<cr3t@db:1433?database=app x`: `sqlserver://gh:xxxxx@db:1433?database=app x`,
	} {
		if got := redact(in); got != want || strings.Contains(got, "s3cr3t") {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProbeHandlersGetHeadOnly (F8): the probe handlers, as both
// listeners mount them, answer GET and HEAD only: 405 with Allow
// otherwise, before any check runs (st is never pinged).
func TestProbeHandlersGetHeadOnly(t *testing.T) {
	st := &countingStore{}
	p := &Proxy{log: zap.NewNop(), store: st}
	for name, h := range map[string]http.HandlerFunc{"healthz": p.ServeHealthz, "readyz": p.ServeReadyz, "admin readyz": p.ServeReadyzDetailed} {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, "PROPFIND"} {
			if name != "healthz" && (m == http.MethodGet || m == http.MethodHead) {
				continue // needs an SP; TestProbesGetHeadOnly (test/) serves them
			}
			w := httptest.NewRecorder()
			h(w, httptest.NewRequest(m, "/"+strings.ReplaceAll(name, " ", "-")+"?verbose", nil))
			want := http.StatusOK
			if m != http.MethodGet && m != http.MethodHead {
				want = http.StatusMethodNotAllowed
			}
			if w.Code != want || (want == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD") {
				t.Errorf("%s %s: %d, Allow %q; want %d", m, name, w.Code, w.Header().Get("Allow"), want)
			}
		}
	}
	if n := st.pings.Load(); n != 0 {
		t.Errorf("refused probes pinged the store %d times", n)
	}
}
