package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse/proxy"
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
	statusText [600]string // status code labels, made once
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
	m.reg.MustRegister(m.requests, m.upstream, m.logins, m.samlFail, m.refusals, m.jit, m.storeTime, m.scim, m.scimTime,
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

// health registers a gauge that is 1 while check passes, asked at scrape.
func (m *metrics) health(name, help string, check func(context.Context) error) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if check(ctx) != nil {
			return 0
		}
		return 1
	}))
}

func (m *metrics) onLogin(e proxy.LoginEvent) {
	m.logins.WithLabelValues(e.IdP, e.Outcome).Inc()
	if e.JIT != "" {
		m.jit.WithLabelValues(e.JIT).Inc()
	}
	if e.StoreTime > 0 {
		m.storeTime.Observe(e.StoreTime.Seconds())
	}
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
		m.requests.WithLabelValues(m.code(sw.status)).Inc()
	})
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

// adminHandler serves the admin listener: metrics and probes.
func adminHandler(m *metrics, p *proxy.Proxy) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if problems := p.Readiness(r.Context()); len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, pr := range problems {
				w.Write([]byte(pr + "\n"))
			}
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}
