package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gatehouse/provision"
	"gatehouse/provision/ldapdir"
	"gatehouse/provision/sqldir"
	"gatehouse/proxy"
	"gatehouse/scim"
	"gatehouse/session"
)

// newLogger builds the process's one logger. Its children named "audit"
// and "access" (and theirs) are streams of their own: written at info
// whatever log.level says, with the same encoding and output.
func newLogger(cfg LogConfig, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	var enc zapcore.Encoder
	if cfg.Format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(jsonEncoderConfig())
	}
	out := zapcore.Lock(zapcore.AddSync(w))
	core := safeCore{zapcore.NewCore(enc, out, level)}
	streams := safeCore{zapcore.NewCore(enc, out, zapcore.InfoLevel)}
	accessOut := zapcore.WriteSyncer(out)
	if d := cfg.accessFlush(); d > 0 {
		// One write of many lines instead of a write per request: the
		// access log's write was most of its cost. A crash loses at most
		// the last interval's lines; Sync (at shutdown) writes them.
		accessOut = &zapcore.BufferedWriteSyncer{WS: out, Size: accessBufferBytes, FlushInterval: d}
	}
	var access zapcore.Core = safeCore{zapcore.NewCore(enc, accessOut, zapcore.InfoLevel)}
	if cfg.Format != "console" {
		// The same JSON bytes as enc's, written without zap's generic
		// encoder (accessCore).
		access = newAccessCore(accessOut, zapcore.InfoLevel)
	}
	return zap.New(streamCore{Core: core, streams: streams, access: access}), nil
}

// accessBufferBytes bounds the access lines held between flushes: a
// full buffer is written at once.
const accessBufferBytes = 256 << 10

// auditClient is the client address a logout's audit event names: the
// one the proxy derived through trusted_proxies.
func auditClient(r *http.Request) string {
	if a := proxy.ClientIP(r.Context()); a.IsValid() {
		return a.String()
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// streamNames are the loggers log.level does not silence.
var streamNames = []string{auditLogger, accessLogger}

const (
	auditLogger  = "audit"
	accessLogger = "access"
)

// streamCore sends the entries of the stream loggers (streamNames) to a
// core at info level, the access log's to its own (buffered) one, and
// every other entry to the configured one.
type streamCore struct {
	zapcore.Core              // at log.level
	streams      zapcore.Core // audit, at info
	access       zapcore.Core // access, at info
}

func (c streamCore) Enabled(l zapcore.Level) bool { return c.Core.Enabled(l) || c.streams.Enabled(l) }

func (c streamCore) With(fields []zapcore.Field) zapcore.Core {
	return streamCore{Core: c.Core.With(fields), streams: c.streams.With(fields), access: c.access.With(fields)}
}

func (c streamCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if stream(e.LoggerName, accessLogger) {
		return c.access.Check(e, ce)
	}
	for _, n := range streamNames {
		if stream(e.LoggerName, n) {
			return c.streams.Check(e, ce)
		}
	}
	return c.Core.Check(e, ce)
}

// Sync writes what the access log holds, then syncs the rest.
func (c streamCore) Sync() error {
	return errors.Join(c.access.Sync(), c.Core.Sync())
}

// stream reports whether a logger named name belongs to the stream n.
func stream(name, n string) bool { return name == n || strings.HasPrefix(name, n+".") }

func serveCommand(ctx context.Context, path string, stderr io.Writer) error {
	f, report := readConfig(path, os.LookupEnv)
	if err := report.Err(); err != nil {
		return err
	}
	logger, err := newLogger(f.Log, stderr)
	if err != nil {
		return err
	}
	defer logger.Sync()
	return serve(ctx, f, logger, nil)
}

// openStore opens the configured backend. This is the only place a
// backend is chosen.
func openStore(ctx context.Context, f *File, logger *zap.Logger) (provision.Store, error) {
	if f.Store.LDAP != nil {
		return ldapdir.New(*f.Store.LDAP)
	}
	for _, c := range f.Store.sql() {
		if c.Mapped != nil {
			return sqldir.OpenMapped(ctx, *c, sqldir.WithLogger(logger))
		}
		return sqldir.Open(ctx, *c, sqldir.WithLogger(logger))
	}
	return nil, errors.New("store: no backend configured")
}

// liveChecks tries what validate cannot: metadata loads and parses, and
// the store can be reached. It changes nothing: a SQLite file is neither
// created nor migrated by a check.
func liveChecks(ctx context.Context, f *File) []error {
	errs := session.CheckMetadata(ctx, nil, f.Session.IdPs)
	if s := f.Store.SQLite; s != nil {
		if fi, err := os.Stat(s.Path); err == nil {
			if !fi.Mode().IsRegular() {
				errs = append(errs, fmt.Errorf("store.sqlite.path: %s is not a regular file", s.Path))
			} else {
				errs = append(errs, storeProblems(sqldir.SQLite, sqldir.Check(ctx, *s))...)
			}
		} else if dir, err := os.Stat(filepath.Dir(s.Path)); err != nil || !dir.IsDir() {
			errs = append(errs, fmt.Errorf("store.sqlite.path: directory %s does not exist", filepath.Dir(s.Path)))
		}
	}
	for name, c := range f.Store.sql() {
		if name == sqldir.SQLite {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		errs = append(errs, storeProblems(name, sqldir.Check(cctx, *c))...)
		cancel()
	}
	if r := f.State.Redis; r != nil && r.options != nil {
		rdb := redis.NewClient(r.options)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := rdb.Ping(cctx).Err(); err != nil {
			errs = append(errs, fmt.Errorf("state.redis: unreachable: %w", err))
		}
		cancel()
		rdb.Close()
	}
	if l := f.Store.LDAP; l != nil {
		st, err := ldapdir.New(*l)
		if err != nil {
			return append(errs, fmt.Errorf("store.ldap: %w", err))
		}
		defer st.Close()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for _, e := range flatten(st.Check(cctx)) {
			errs = append(errs, fmt.Errorf("store.ldap: %w", e))
		}
	}
	return errs
}

// handler wires the store, the SAML service provider and the proxy.
func handler(ctx context.Context, f *File, logger *zap.Logger, m *metrics, rdb *redis.Client,
	checks []proxy.Check) (*proxy.Proxy, *session.Manager, provision.Store, error) {
	st, err := openStore(ctx, f, logger.Named("store"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open store: %w", err)
	}
	pages := proxy.NewPages(logger.Named("pages"))
	pages.Site = f.Pages
	pages.OnProblem = m.onProblem
	// The audit events (logins, logouts, SCIM writes) go to one logger,
	// written whatever log.level says (see newLogger).
	audit := logger.Named(auditLogger)
	access := zap.NewNop()
	if f.Log.accessLog() {
		access = logger.Named(accessLogger)
	}
	sopts := session.Options{Logger: logger.Named("saml"), Pages: pages, Audit: audit,
		ClientAddr: auditClient, RequestID: func(r *http.Request) string { return proxy.RequestID(r.Context()) }}
	if r := f.State.Redis; r != nil {
		rs := session.NewRedisState(rdb, r.KeyPrefix, f.Session.Cookie.MaxAge, logger.Named("redis"), nil)
		go rs.Run(ctx)
		sopts.Replay, sopts.Revocations = rs, rs
		checks = append(checks, proxy.Check{Name: "redis", Check: rs.Ping}) // degraded: sessions go on without it
	} else {
		replay := session.NewMemoryReplay(nil, f.State.ReplayCacheMaxBytes)
		m.observeReplay(replay)
		sopts.Replay = replay
	}
	sm, err := session.New(ctx, f.Session, sopts)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	var p *proxy.Proxy
	var sc *scim.Server
	var reserved []string
	if f.SCIM != nil {
		mount := strings.TrimSuffix(f.Proxy.Prefix+proxy.PathSCIM, "/")
		sc, err = scim.NewServer(f.SCIM.Config, st, scim.Options{
			BaseURL: strings.TrimSuffix(f.Session.BaseURL, "/") + mount, Mount: mount, Logger: logger.Named("scim"), Audit: audit, RequestID: proxy.RequestID,
			OnUserChange: func(id string) { p.Forget(id) }, OnRequest: m.onSCIM,
		})
		if err != nil {
			st.Close()
			return nil, nil, nil, err
		}
		reserved = sc.OwnedFields()
	}
	opts := proxy.Options{Logger: logger.Named("proxy"), Sessions: sm, Store: st, Pages: pages, IdPs: f.policies(reserved), Checks: checks,
		IdentityKeys: f.identityKeys, OnLogin: m.onLogin, Transport: m.transport(proxy.NewTransport()), Audit: audit, Access: access}
	if sc != nil {
		opts.SCIM = sc
	}
	p, err = proxy.New(f.Proxy, opts)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return p, sm, st, nil
}

// serve runs gatehouse until ctx ends, then drains connections. If
// listening is not nil it is called with the bound address.
func serve(ctx context.Context, f *File, logger *zap.Logger, listening func(addr string)) error {
	defer logger.Sync() // the access lines still buffered
	// Every listener is bound first: ACME starts solving challenges at
	// once, on these addresses, and a bind error stops gatehouse before it
	// opens anything.
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	var rln, aln net.Listener
	if f.TLS.RedirectListen != "" {
		if rln, err = net.Listen("tcp", f.TLS.RedirectListen); err != nil {
			return fmt.Errorf("tls.redirect_listen: %w", err)
		}
		defer rln.Close()
	}
	if f.AdminListen != "" {
		if aln, err = net.Listen("tcp", f.AdminListen); err != nil {
			return fmt.Errorf("admin listen: %w", err)
		}
		defer aln.Close()
	}
	bi := readBuildInfo()
	logger.Info("gatehouse starting", zap.String("version", bi.Version), zap.String("revision", bi.revision()),
		zap.String("commit_time", bi.Time), zap.String("go", bi.GoVersion))
	// SIGTERM ends stopping. What runs alongside the listeners (metadata
	// refresh, the Redis subscription, ACME) stops only once serving has
	// (a revocation published during shutdown_delay still arrives), or at
	// once if the signal comes before serving starts.
	stopping := ctx
	ctx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	serving := make(chan struct{})
	context.AfterFunc(stopping, func() {
		select {
		case <-serving:
		default:
			stopRun()
		}
	})

	m := newMetrics()
	var checks []proxy.Check
	var rdb *redis.Client
	if r := f.State.Redis; r != nil {
		rdb = redis.NewClient(r.options)
		defer rdb.Close()
	}
	var am *acme
	if a := f.TLS.ACME; a != nil {
		var storage certmagic.Storage = &certmagic.FileStorage{Path: a.StorageDir}
		if rdb != nil {
			storage = newRedisCertStorage(rdb, f.State.Redis.KeyPrefix)
		}
		if am, err = newACME(ctx, f, storage, logger.Named("acme")); err != nil {
			return err
		}
		defer am.cache.Stop()
		// Without a certificate nothing can be served: not ready.
		checks = append(checks, proxy.Check{Name: "tls", Required: true, Check: func(context.Context) error { return am.ready(a.Domains) }})
	}
	var certs *certFiles
	if f.TLS.CertFile != "" {
		if certs, err = newCertFiles(f.TLS.CertFile, f.TLS.KeyFile, logger); err != nil {
			return err
		}
	}
	p, sm, st, err := handler(ctx, f, logger, m, rdb, checks)
	if err != nil {
		return err
	}
	defer st.Close()
	var tlsExpiry func() time.Time
	switch {
	case am != nil:
		tlsExpiry = func() time.Time { return am.notAfter(f.TLS.ACME.Domains) }
	case certs != nil:
		tlsExpiry = certs.notAfter
	}
	m.observe(p, sm, tlsExpiry)
	m.observeWriteQueue(st)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sm.Run(ctx, f.MetadataRefresh)
	if certs != nil {
		go certs.watch(ctx)
	}

	// net/http's own complaints (TLS handshakes, bad requests) are noise
	// under load: debug level.
	httpLog, err := zap.NewStdLogAt(logger.Named("http"), zapcore.DebugLevel)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           m.handler(p),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          httpLog,
	}
	if f.State.Redis == nil && f.Session.StateDir == "" {
		logger.Warn("logouts are remembered in memory only: a logged-out cookie works again after a restart; set state.dir (or state.redis)")
	}
	logger.Info("gatehouse serving", zap.String("addr", ln.Addr().String()), zap.String("base_url", f.Session.BaseURL),
		zap.String("upstream", f.Proxy.Upstream), zap.Bool("tls", certs != nil || am != nil), zap.Bool("acme", am != nil),
		zap.String("version", bi.Version), zap.String("revision", bi.revision()), zap.String("go", bi.GoVersion))
	errc := make(chan error, 3)
	go func() {
		switch {
		case am != nil:
			errc <- srv.Serve(tls.NewListener(ln, am.tls))
		case certs != nil:
			errc <- srv.Serve(tls.NewListener(ln, modernTLS(&tls.Config{NextProtos: []string{"h2", "http/1.1"}, GetCertificate: certs.getCertificate})))
		default:
			errc <- srv.Serve(ln)
		}
	}()
	if rln != nil {
		h := redirectHandler(f.Session.BaseURL)
		if am != nil {
			h = am.issuer.HTTPChallengeHandler(h)
		}
		redirect := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: httpLog}
		defer redirect.Close()
		go func() { errc <- redirect.Serve(rln) }()
	}
	if listening != nil {
		listening(ln.Addr().String())
	}
	var admin *http.Server
	if aln != nil {
		admin = &http.Server{Handler: adminHandler(m, p, f.AdminPprof), ReadHeaderTimeout: 10 * time.Second, ErrorLog: httpLog}
		logger.Info("admin listener (metrics, probes)", zap.String("addr", aln.Addr().String()))
		go func() { errc <- admin.Serve(aln) }()
	}
	// SIGHUP reloads every IdP's metadata (files and URLs) and the TLS
	// certificate files at once; other configuration changes need a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	releaseStartupMemory(f, logger)
	close(serving)
	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-hup:
			logger.Info("SIGHUP: reloading IdP metadata and TLS certificate files (other configuration changes need a restart)")
			sm.Reload()
			if certs != nil {
				certs.reload()
			}
		case <-stopping.Done():
			done = true
		case <-ctx.Done(): // the signal came during startup
			done = true
		}
	}
	// Not ready from now on; with shutdown_delay, go on serving while load
	// balancers notice and stop sending new requests.
	p.Drain()
	if f.ShutdownDelay > 0 {
		logger.Info("shutting down: readyz answers 503; serving on for shutdown_delay", zap.Duration("delay", f.ShutdownDelay))
		select {
		case <-time.After(f.ShutdownDelay):
		case err := <-errc:
			return err
		}
	}
	logger.Info("shutting down: draining in-flight requests", zap.Duration("limit", f.ShutdownTimeout))
	sctx, scancel := context.WithTimeout(context.Background(), f.ShutdownTimeout)
	defer scancel()
	if admin != nil {
		defer admin.Close()
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return stopping.Err()
}
