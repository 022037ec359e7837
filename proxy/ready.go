package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Check is one readiness check.
type Check struct {
	Name string
	// Check returns nil while the dependency is fine. It must honour ctx.
	Check func(context.Context) error
	// Required: the instance cannot serve while it fails, and /readyz
	// answers 503. Otherwise a failure is shown as degraded (in
	// /readyz?verbose and the metrics) and /readyz stays 200.
	Required bool
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name     string
	Required bool
	Err      error // nil: ok
}

// Readiness is the outcome of every readiness check.
type Readiness struct {
	// Ready: every required check passes; /readyz answers 200.
	Ready bool
	// Strict: every check passes, degraded ones too (/readyz?strict).
	Strict bool
	// Checks in the order /readyz?verbose lists them: required first.
	Checks []CheckResult
}

// Check returns the named check's result, and whether there is one.
func (r Readiness) Check(name string) (CheckResult, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return CheckResult{}, false
}

const (
	// readyTimeout bounds one round of checks.
	readyTimeout = 2 * time.Second
	// readyCacheTTL is how long the result of the checks that make round
	// trips (store, Redis, ...) is reused: probes on both listeners and
	// every scraper share one round trip per dependency per TTL, and
	// /readyz on the public listener cannot be used to hammer them.
	readyCacheTTL = time.Second
)

// readiness holds the cached results of the checks that do I/O.
type readiness struct {
	draining atomic.Bool
	mu       sync.Mutex // one round of checks at a time; others wait for it
	at       time.Time
	results  map[string]error
}

// Drain marks the instance as shutting down: from now on /readyz answers
// 503, so that load balancers and Kubernetes stop sending new requests
// while in-flight ones finish. It cannot be undone.
func (p *Proxy) Drain() {
	if !p.ready.draining.Swap(true) {
		p.log.Info("shutting down: readyz now answers 503")
	}
}

// Readiness runs the readiness checks (the store's and Redis's results
// are reused for up to a second) and reports whether this instance can
// serve. It is ready unless it is shutting down, no IdP's metadata has
// loaded yet since start, or a required check (an ACME certificate not
// obtained yet) fails. The store, Redis and each IdP's metadata are
// degraded when they fail: logins that need them get an error page, but
// the instance goes on serving everything else.
func (p *Proxy) Readiness(ctx context.Context) Readiness {
	var out []CheckResult
	if p.ready.draining.Load() {
		out = append(out, CheckResult{Name: "shutdown", Required: true, Err: errShuttingDown})
	} else {
		out = append(out, CheckResult{Name: "shutdown", Required: true})
	}
	states := p.sessions.MetadataStates()
	started := CheckResult{Name: "startup", Required: true, Err: errNoMetadataYet}
	for _, s := range states {
		if !s.LastSuccess.IsZero() {
			started.Err = nil
		}
	}
	out = append(out, started)
	res := p.ioChecks(ctx)
	for _, c := range p.checks {
		if c.Required {
			out = append(out, CheckResult{Name: c.Name, Required: true, Err: res[c.Name]})
		}
	}
	out = append(out, CheckResult{Name: "store", Err: res["store"]})
	for _, c := range p.checks {
		if !c.Required {
			out = append(out, CheckResult{Name: c.Name, Err: res[c.Name]})
		}
	}
	for _, s := range states {
		out = append(out, CheckResult{Name: "idp/" + s.IdP, Err: s.Err})
	}
	r := Readiness{Ready: true, Strict: true, Checks: out}
	for _, c := range out {
		if c.Err != nil {
			r.Strict = false
			if c.Required {
				r.Ready = false
			}
		}
	}
	return r
}

var (
	errShuttingDown  = errors.New("shutting down")
	errNoMetadataYet = errors.New("no IdP's metadata has loaded yet")
)

// ioChecks runs the store's ping and the further checks, concurrently,
// each bounded by readyTimeout, or returns the results of a round less
// than readyCacheTTL old.
func (p *Proxy) ioChecks(ctx context.Context) map[string]error {
	rd := &p.ready
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.results != nil && time.Since(rd.at) < readyCacheTTL {
		return rd.results
	}
	// Not the request's context: a client that goes away must not leave
	// a cancelled result for every other prober to read.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	checks := append([]Check{{Name: "store", Check: p.store.Ping}}, p.checks...)
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			errs[i] = c.Check(ctx)
			if errs[i] == nil && ctx.Err() != nil {
				errs[i] = ctx.Err()
			}
		})
	}
	wg.Wait()
	results := make(map[string]error, len(checks))
	for i, c := range checks {
		results[c.Name] = errs[i]
		if prev, had := rd.results[c.Name]; errs[i] != nil && (!had || prev == nil) {
			p.log.Warn("readiness: "+c.Name+" failing", zap.Bool("required", c.Required), zap.Error(errs[i]))
		} else if errs[i] == nil && had && prev != nil {
			p.log.Info("readiness: " + c.Name + " ok again")
		}
	}
	rd.results, rd.at = results, time.Now()
	return results
}

// ServeHealthz is the liveness probe: 200 while the process runs. It
// never depends on anything else, so that a dependency's outage never
// gets the process restarted.
func (p *Proxy) ServeHealthz(w http.ResponseWriter, r *http.Request) {
	if !probeMethod(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// ServeReadyz is the readiness probe on the public listener: 200 or 503
// (see Readiness); ?verbose lists every check by name and state only,
// since anyone can ask for it; ?strict fails on any failing check.
func (p *Proxy) ServeReadyz(w http.ResponseWriter, r *http.Request) {
	p.serveReadyz(w, r, false)
}

// ServeReadyzDetailed is ServeReadyz for the admin listener: ?verbose
// also gives each failure's cause (with credentials removed).
func (p *Proxy) ServeReadyzDetailed(w http.ResponseWriter, r *http.Request) {
	p.serveReadyz(w, r, true)
}

func (p *Proxy) serveReadyz(w http.ResponseWriter, r *http.Request, detail bool) {
	if !probeMethod(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	q := r.URL.Query()
	rd := p.Readiness(r.Context())
	ok := rd.Ready
	if q.Has("strict") {
		ok = rd.Strict
	}
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if !q.Has("verbose") {
		if ok {
			w.Write([]byte("ready\n"))
			return
		}
		var failing []string
		for _, c := range rd.Checks {
			if c.Err != nil && (c.Required || q.Has("strict")) {
				failing = append(failing, c.Name)
			}
		}
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(failing, ", "))
		return
	}
	w.Write([]byte(verboseReadiness(rd, detail, q.Has("strict"))))
}

// probeMethod answers 405 to a probe asked for with any method but GET or
// HEAD, and reports whether the request may be served.
func probeMethod(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// verboseReadiness lists every check Kubernetes style: "[+]name ok" or
// "[-]name failed[: cause]", then the degraded ones, then "readyz check
// passed" or "readyz check failed".
func verboseReadiness(rd Readiness, detail, strict bool) string {
	var b strings.Builder
	var degraded []string
	for _, c := range rd.Checks {
		if c.Err == nil {
			fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
			continue
		}
		fmt.Fprintf(&b, "[-]%s failed", c.Name)
		if detail {
			fmt.Fprintf(&b, ": %s", redact(c.Err.Error()))
		}
		b.WriteString("\n")
		if !c.Required {
			degraded = append(degraded, c.Name)
		}
	}
	if len(degraded) > 0 {
		if strict {
			fmt.Fprintf(&b, "degraded: %s\n", strings.Join(degraded, ", "))
		} else {
			fmt.Fprintf(&b, "degraded (not failing readiness; ?strict fails on them): %s\n", strings.Join(degraded, ", "))
		}
	}
	ok := rd.Ready
	if strict {
		ok = rd.Strict
	}
	if ok {
		b.WriteString("readyz check passed\n")
	} else {
		b.WriteString("readyz check failed\n")
	}
	return b.String()
}

var (
	// userinfo in a URL: scheme://user:password@host. The password runs
	// to the last "@" before the host (a raw "@" in a password is common
	// and some clients accept it), so everything after the user's name up
	// to there is hidden.
	// A password may hold spaces, quotes or "<" when a client accepts it
	// unescaped: everything to the last "@" on the line goes.
	redactUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s"'<>]*):[^\n]*@`)
	// key=value (and key: value, "key":"value") pairs of DSNs, URL
	// queries and structured texts that hold secrets, the key names inside
	// longer ones too (sslpassword, client_secret, auth_token, api_key...);
	// a value in braces is SQL Server's quoting, which may hold ";".
	redactPairs = regexp.MustCompile(`(?i)("?[a-z0-9_.-]*(?:pass|pwd|secret|token|key|cred)[a-z0-9_.-]*"?)(\s*[=:]\s*)(\{(?:[^}]|\}\})*\}|'[^']*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"}]*)`)
)

// redact removes credentials from text that may quote a DSN or a URL.
func redact(s string) string {
	s = redactUserinfo.ReplaceAllString(s, "${1}:xxxxx@")
	return redactPairs.ReplaceAllString(s, "${1}${2}xxxxx")
}
