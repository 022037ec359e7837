package main

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/provision/sqldir"
	"gatehouse/proxy"
	"gatehouse/session"
)

// metrics are gatehouse's Prometheus metrics, in a registry of their own,
// served on the admin listener. The packages know nothing of Prometheus:
// they call hooks that cmd fills.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	upstream   prometheus.Histogram
	logins     *prometheus.CounterVec
	samlFail   *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	jit        *prometheus.CounterVec
	storeTime  prometheus.Histogram
	scim       *prometheus.CounterVec
	scimTime   prometheus.Histogram
	coalesced  prometheus.Counter
	statusText [600]string // status code labels, made once
	// requestsBy are requests' children by status code, each resolved at
	// its first use (a label lookup per request costs more than the rest
	// of the count).
	requestsBy [600]atomic.Pointer[prometheus.Counter]
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_requests_total",
		Help: "Requests answered, by HTTP status."}, []string{"code"})
	m.upstream = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gatehouse_upstream_duration_seconds",
		Help: "Time for the upstream to answer a proxied request (to its response headers).", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_logins_total",
		Help: "Logins, by IdP and outcome (created, updated, unchanged, linked, refused, unprovisioned)."}, []string{"idp", "outcome"})
	m.samlFail = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_saml_failures_total",
		Help: "SAML responses and messages refused, by reason."}, []string{"reason"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_refusals_total",
		Help: "Requests answered with an error page, by reason and status."}, []string{"reason", "code"})
	m.jit = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_jit_total",
		Help: "JIT provisioning results: created, updated, unchanged, linked, refused, failed."}, []string{"result"})
	m.storeTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gatehouse_jit_store_duration_seconds",
		Help: "Time the user store took for one login's JIT upsert.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)})
	m.scim = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_scim_requests_total",
		Help: "SCIM requests, by operation and status."}, []string{"op", "code"})
	m.scimTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gatehouse_scim_request_duration_seconds",
		Help: "Time to answer a SCIM request.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)})
	m.coalesced = prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_jit_coalesced_total",
		Help: "Logins that shared a concurrent identical login's store call instead of making their own."})
	bi := readBuildInfo()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gatehouse_build_info",
		Help: "1, labelled with the version, the commit (\"-dirty\" when built with changes) and the Go version."},
		[]string{"version", "revision", "goversion"})
	build.WithLabelValues(bi.Version, bi.revision(), bi.GoVersion).Set(1)
	m.reg.MustRegister(m.requests, m.upstream, m.logins, m.samlFail, m.refusals, m.jit, m.storeTime, m.scim, m.scimTime, m.coalesced, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for i := range m.statusText {
		m.statusText[i] = strconv.Itoa(i)
	}
	return m
}

func (m *metrics) code(status int) string {
	if status >= 0 && status < len(m.statusText) {
		return m.statusText[status]
	}
	return strconv.Itoa(status)
}

// stateCollector reports, at scrape, the health of the dependencies and
// readiness (from proxy.Readiness, whose store and Redis round trips are
// shared for a second and bounded by its timeout), each IdP's metadata
// state and the certificates' expiry. It makes no round trip of its own.
type stateCollector struct {
	p  *proxy.Proxy
	sm *session.Manager
	// tls is when the serving certificate expires (zero: none yet); nil
	// without TLS.
	tls func() time.Time
}

var (
	descStoreUp = prometheus.NewDesc("gatehouse_store_up", "1 while the user store answers.", nil, nil)
	descRedisUp = prometheus.NewDesc("gatehouse_redis_up", "1 while Redis answers (with state.redis).", nil, nil)
	descReady   = prometheus.NewDesc("gatehouse_ready", "1 while /readyz passes.", nil, nil)
	descIdPInfo = prometheus.NewDesc("gatehouse_idp_info",
		"1 for each configured IdP, labelled with its kind (saml or oidc): join it on idp to count logins, refusals and metadata by kind.", []string{"idp", "kind"}, nil)
	descIdPUp = prometheus.NewDesc("gatehouse_idp_metadata_up",
		"1 while the IdP's metadata is loaded and usable (its validUntil not passed).", []string{"idp"}, nil)
	descValidUntil = prometheus.NewDesc("gatehouse_idp_metadata_valid_until_timestamp_seconds",
		"The validUntil of the IdP's loaded metadata (absent when it declares none).", []string{"idp"}, nil)
	descLastRefresh = prometheus.NewDesc("gatehouse_idp_metadata_last_refresh_success_timestamp_seconds",
		"When the IdP's metadata last loaded successfully (absent until it has); source is url (refreshed every metadata_refresh) or file (read at start and on SIGHUP only).",
		[]string{"idp", "source"}, nil)
	descCertExpiry = prometheus.NewDesc("gatehouse_certificate_expiry_timestamp_seconds",
		"When a certificate expires: tls (the serving certificate), sp and sp_encryption (the SAML SP's), idp/<name> (the IdP's soonest-expiring signing certificate).",
		[]string{"certificate"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreUp, descRedisUp, descReady, descIdPInfo, descIdPUp, descValidUntil, descLastRefresh, descCertExpiry} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rd := c.p.Readiness(ctx)
	up := func(err error) float64 {
		if err != nil {
			return 0
		}
		return 1
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if r, ok := rd.Check("store"); ok {
		gauge(descStoreUp, up(r.Err))
	}
	if r, ok := rd.Check("redis"); ok {
		gauge(descRedisUp, up(r.Err))
	}
	ready := 0.0
	if rd.Ready {
		ready = 1
	}
	gauge(descReady, ready)
	timestamp := func(d *prometheus.Desc, t time.Time, labels ...string) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixNano())/1e9, labels...)
		}
	}
	if c.tls != nil {
		timestamp(descCertExpiry, c.tls(), "tls")
	}
	for _, sp := range c.sm.SPCertificates() {
		timestamp(descCertExpiry, sp.NotAfter, sp.Name)
	}
	for _, s := range c.sm.MetadataStates() {
		gauge(descIdPInfo, 1, s.IdP, s.Kind)
		gauge(descIdPUp, up(s.Err), s.IdP)
		timestamp(descValidUntil, s.ValidUntil, s.IdP)
		// A file is never refreshed: the source label keeps its age from
		// reading as a failing refresh (the alert asks for source="url").
		source := "file"
		if s.FromURL {
			source = "url"
		}
		timestamp(descLastRefresh, s.LastSuccess, s.IdP, source)
		timestamp(descCertExpiry, s.SigningCertExpiry, "idp/"+s.IdP)
	}
}

// observe registers the state gauges of p and sm (see stateCollector).
func (m *metrics) observe(p *proxy.Proxy, sm *session.Manager, tls func() time.Time) {
	m.reg.MustRegister(&stateCollector{p: p, sm: sm, tls: tls})
}

func (m *metrics) onLogin(e proxy.LoginEvent) {
	m.logins.WithLabelValues(e.IdP, e.Outcome).Inc()
	if e.JIT != "" {
		m.jit.WithLabelValues(e.JIT).Inc()
	}
	if e.StoreTime > 0 {
		m.storeTime.Observe(e.StoreTime.Seconds())
	}
	if e.Coalesced {
		m.coalesced.Inc()
	}
}

// writeQueue is a store that queues its write transactions in gatehouse
// (SQLite: one writer at a time).
type writeQueue interface{ WriteQueue() sqldir.WriteQueueStats }

// observeWriteQueue registers the writer queue's figures, read at scrape,
// for a store that has one.
func (m *metrics) observeWriteQueue(st any) {
	q, ok := st.(writeQueue)
	if !ok {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_store_write_queue_waiting",
			Help: "Store writes waiting now for the one SQLite writer."}, func() float64 { return float64(q.WriteQueue().Waiting) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_store_write_queue_waits_total",
			Help: "Store writes that found the SQLite writer busy and queued."}, func() float64 { return float64(q.WriteQueue().Waits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_store_write_queue_wait_seconds_total",
			Help: "Time store writes spent queued for the SQLite writer."}, func() float64 { return q.WriteQueue().WaitTime.Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_store_write_queue_timeouts_total",
			Help: "Store writes whose deadline passed while queued for the SQLite writer."}, func() float64 { return float64(q.WriteQueue().TimedOut) }),
	)
}

// observeReplay registers the in-memory replay cache's figures, read at
// scrape.
func (m *metrics) observeReplay(r *session.MemoryReplay) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_replay_cache_bytes",
			Help: "Bytes the replay cache's unexpired entries take (entries times their fixed cost)."}, func() float64 { return float64(r.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_replay_cache_max_bytes",
			Help: "The replay cache's bound (state.replay_cache_max_bytes); at it, new logins get 503."}, func() float64 { return float64(r.Stats().MaxBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_replay_cache_full_total",
			Help: "Logins refused because the replay cache was full."}, func() float64 { return float64(r.Stats().Refused) }),
	)
}

func (m *metrics) onProblem(reason string, status int, login bool) {
	m.refusals.WithLabelValues(reason, m.code(status)).Inc()
	if login {
		m.samlFail.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) onSCIM(op string, status int, d time.Duration) {
	m.scim.WithLabelValues(op, m.code(status)).Inc()
	m.scimTime.Observe(d.Seconds())
}

// handler counts every answer by status.
func (m *metrics) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requestCounter(sw.status).Inc()
	})
}

// requestCounter is gatehouse_requests_total's child for status.
func (m *metrics) requestCounter(status int) prometheus.Counter {
	if status < 0 || status >= len(m.requestsBy) {
		return m.requests.WithLabelValues(m.code(status))
	}
	if c := m.requestsBy[status].Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(m.code(status))
	m.requestsBy[status].Store(&c)
	return c
}

// transport times the upstream.
func (m *metrics) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(r)
		m.upstream.Observe(time.Since(start).Seconds())
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// statusWriter records the status; Unwrap keeps flushing and hijacking
// (WebSocket upgrades) working through http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// adminHandler serves the admin listener: metrics and probes. Its
// /readyz?verbose gives each failure's cause; the public listener's names
// the checks only.
func adminHandler(m *metrics, p *proxy.Proxy, profiles bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", p.ServeHealthz)
	mux.HandleFunc("GET /livez", p.ServeHealthz)
	mux.HandleFunc("GET /readyz", p.ServeReadyzDetailed)
	if profiles {
		// Only here: the package's init also registers them on
		// http.DefaultServeMux, which no server of gatehouse's uses
		// (every one has a handler of its own).
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}
