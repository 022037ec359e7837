package proxy

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"gatehouse/provision"
	"gatehouse/session"
)

// Options are the dependencies of a Proxy.
type Options struct {
	Logger   *zap.Logger
	Sessions *session.Manager
	Store    provision.Store
	Pages    *Pages
	// IdPs holds the JIT policy of each IdP, by configured name.
	IdPs map[string]IdPPolicy
	// Transport reaches the upstream; default: a pooled transport tuned
	// for one upstream host.
	Transport http.RoundTripper
	Now       func() time.Time
	// SCIM, when set, serves everything under the reserved SCIM path
	// (PathSCIM); otherwise those paths answer 404.
	SCIM http.Handler
	// OnLogin, when set, is told what each login did (metrics).
	OnLogin func(LoginEvent)
	// Checks are further readiness checks (Redis, the ACME certificate);
	// the store's and the IdPs' metadata are always checked (see
	// Readiness).
	Checks []Check
	// IdentityKeys sign the identity JWT when Config.SignedIdentity is
	// set (see ParseIdentityKey); the first signs, all are published.
	IdentityKeys []*ecdsa.PrivateKey
	// TunnelCheck is how often open upgraded connections are checked
	// against their session, user and lifetime; default 5s. A logout, a
	// single logout and Forget check at once.
	TunnelCheck time.Duration
	// Audit receives the audit events (logins); default Logger.Named("audit").
	// cmd gives it a core of its own that log.level cannot silence.
	Audit *zap.Logger
	// Access receives the access log, one line per request at info level;
	// default Logger.Named("access"). A logger that does not write info
	// (zap.NewNop()) turns it off.
	Access *zap.Logger
}

// Proxy is gatehouse's http.Handler.
type Proxy struct {
	cfg       Config
	log       *zap.Logger
	audit     *zap.Logger
	access    *zap.Logger // nil: no access log
	sessions  *session.Manager
	store     provision.Store
	pages     *Pages
	idps      map[string]IdPPolicy
	now       func() time.Time
	rp        *httputil.ReverseProxy
	routes    map[string]http.Handler // exact paths
	scim      http.Handler            // the subtree under prefix+PathSCIM
	strip     stripper
	cookies   []string
	headers   headerSet
	users     *userCache
	public    []string
	rules     []rule
	signer    *signer // nil unless signed_identity is on
	checks    []Check
	ready     readiness
	loginHook func(LoginEvent)

	origin      origin         // base_url's scheme and host
	trusted     []netip.Prefix // trusted_proxies
	limit       *limiter       // nil when rate_limit is disabled
	tunnels     *tunnels
	publicSlots *publicSlots // public_max_concurrent
	tunnelCheck time.Duration
	known       *knownUsers // last good record per login key (continue_on_store_error)
	jit         coalescer   // concurrent identical logins share one store call (jit.go)

	// forwardedHost and forwardedProto are origin's host and scheme as
	// header values, shared by every request (capacity 1: an append
	// copies).
	forwardedHost, forwardedProto []string
}

// NewTransport is the default transport to the upstream: pooled for one
// host under load.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// stateCookiePrefixes name the short-lived cookies that bind a login's or
// a logout's state to the browser (Path=/, so the browser sends them with
// every request); like the session cookie, they never reach the upstream.
var stateCookiePrefixes = session.StateCookiePrefixes()

// New builds the proxy.
func New(cfg Config, opts Options) (*Proxy, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil || opts.Sessions == nil || opts.Store == nil || opts.Pages == nil {
		return nil, errors.New("proxy: Logger, Sessions, Store and Pages are required")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("proxy: Config.BaseURL is required (the session's base_url)")
	}
	target, _ := url.Parse(cfg.Upstream)
	if opts.Audit == nil {
		opts.Audit = opts.Logger.Named("audit")
	}
	if opts.Access == nil {
		opts.Access = opts.Logger.Named("access")
	}
	p := &Proxy{
		cfg: cfg, log: opts.Logger, audit: opts.Audit, sessions: opts.Sessions, store: opts.Store,
		pages: opts.Pages, idps: opts.IdPs, now: opts.Now, routes: map[string]http.Handler{},
		headers: newHeaderSet(cfg.Headers), users: newUserCache(cfg.UserCacheBytes, opts.Logger.Named("users")), public: cfg.PublicPaths, rules: compileRules(cfg.Authorization),
		cookies: []string{opts.Sessions.CookieName()}, checks: opts.Checks, loginHook: opts.OnLogin,
		limit: newLimiter(cfg.RateLimit), tunnels: newTunnels(), publicSlots: newPublicSlots(cfg.PublicMaxConcurrent), tunnelCheck: opts.TunnelCheck, known: newKnownUsers(cfg.KnownUsersBytes, opts.Logger.Named("users")),
	}
	var err error
	if p.origin, err = canonicalOrigin(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("proxy: base_url: %w", err) // the session section validates it
	}
	p.forwardedHost, p.forwardedProto = []string{p.origin.host}, []string{p.origin.scheme}
	p.trusted, _ = parseTrusted(cfg.TrustedProxies) // checked by Validate
	opts.Sessions.CacheSessions(cfg.SessionCacheBytes)
	if opts.Access.Core().Enabled(zap.InfoLevel) {
		p.access = opts.Access
	}
	if p.tunnelCheck <= 0 {
		p.tunnelCheck = 5 * time.Second
	}
	if p.now == nil {
		p.now = time.Now
	}
	stripped := p.headers.names()
	if si := cfg.SignedIdentity; si != nil {
		var err error
		if p.signer, err = newSigner(*si, opts.IdentityKeys); err != nil {
			return nil, err
		}
		stripped = append(stripped, p.signer.header)
		p.users.tokenBase = signedTokenBytes(p.signer)
	}
	// The request ID is gatehouse's to set, like the identity headers.
	stripped = append(stripped, RequestIDHeader)
	p.strip = stripperFor(cfg.Headers, stripped)

	transport := opts.Transport
	if transport == nil {
		transport = NewTransport()
	}
	transport = timedTransport{transport}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			p.prepare(pr.Out.Header, identityFrom(pr.In.Context()))
			p.setForwarded(pr)
			if i := requestInfoFrom(pr.In.Context()); i != nil && i.id != "" {
				pr.Out.Header[RequestIDHeader] = i.idValue[:]
			}
		},
		ModifyResponse: func(res *http.Response) error {
			// The response carries gatehouse's request ID (set when the
			// request arrived); an upstream's echo would repeat it.
			res.Header.Del(RequestIDHeader)
			return p.modifyResponse(res)
		},
		Transport:    transport,
		BufferPool:   bufferPool{},
		ErrorHandler: p.upstreamError,
		ErrorLog:     zap.NewStdLog(p.log.Named("reverseproxy")),
	}

	pre := cfg.Prefix
	p.routes[pre+PathMetadata] = http.HandlerFunc(opts.Sessions.ServeMetadata)
	p.routes[pre+PathACS] = opts.Sessions.ACS(p.login)
	p.routes[pre+PathLogin] = http.HandlerFunc(opts.Sessions.ServeLogin)
	p.routes[pre+PathLogout] = p.thenRecheckTunnels(opts.Sessions.ServeLogout)
	p.routes[pre+PathSLO] = p.thenRecheckTunnels(opts.Sessions.ServeSLO)
	p.routes[pre+PathOIDCCallback] = opts.Sessions.OIDCCallback(p.login)
	p.routes[pre+PathOIDCBackchannelLogout] = p.thenRecheckTunnelsOnOK(opts.Sessions.ServeBackchannelLogout)
	p.routes[pre+PathOIDCSignedOut] = http.HandlerFunc(opts.Sessions.ServeOIDCSignedOut)
	p.routes[pre+PathHealthz] = http.HandlerFunc(p.ServeHealthz)
	p.routes[pre+PathLivez] = http.HandlerFunc(p.ServeHealthz)
	p.routes[pre+PathReadyz] = http.HandlerFunc(p.ServeReadyz)
	if p.signer != nil {
		p.routes[pre+PathJWKS] = http.HandlerFunc(p.signer.serveJWKS)
	}
	p.scim = opts.SCIM
	p.pages.bind(cfg.Prefix, cfg.BaseURL)
	return p, nil
}

// prepare applies the header rules to an outbound request: strip every
// spelling of every identity header and gatehouse's cookies, then set the
// headers of the authenticated user, if any.
func (p *Proxy) prepare(h http.Header, id *identity) {
	p.strip.strip(h)
	stripCookies(h, p.cookies, stateCookiePrefixes)
	if id != nil {
		id.set(h)
		if p.signer != nil {
			tok, err := p.signer.tokenFor(id, p.now())
			if err != nil {
				p.log.Error("sign identity token", zap.String("user_id", id.userID), zap.Error(err))
				return
			}
			h[p.signer.header] = []string{tok}
		}
	}
}

type ctxKey struct{}

// identityFrom is the user a request is proxied as (see forward).
func identityFrom(ctx context.Context) *identity {
	if i := requestInfoFrom(ctx); i != nil && i.identity != nil {
		return i.identity
	}
	id, _ := ctx.Value(ctxKey{}).(*identity)
	return id
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := &requestInfo{start: time.Now(), hasClient: true}
	info.client.derive(r, p.trusted)
	info.id = p.requestIDOf(r)
	info.idValue[0] = info.id
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, info))
	w.Header()[RequestIDHeader] = info.idValue[:] // shared; an append copies
	if p.access != nil {
		aw := &accessWriter{ResponseWriter: w}
		defer p.logAccess(aw, r, info, r.Method, r.URL.EscapedPath())
		w = aw
	}
	w = closeIfBodyUnread(w, r)
	if p.offHost(w, r) {
		return
	}
	if n := len(r.URL.EscapedPath()); n > p.cfg.MaxPathLength {
		p.pages.refuseRequest(w, r, http.StatusRequestURITooLong, "path_length",
			fmt.Errorf("path of %d bytes, at most %d (max_path_length)", n, p.cfg.MaxPathLength))
		return
	}
	if reserved(r.URL.EscapedPath(), p.cfg.Prefix) {
		if p.limitedPath(r.URL.Path) && p.rateLimited(w, r) {
			return
		}
		p.limitEndpointBody(w, r)
		p.serveReserved(w, r)
		return
	}
	if p.refuseTunnel(w, r) {
		return
	}
	r, j, ok := p.authorize(w, r)
	if !ok {
		return
	}
	if j.deny != nil {
		p.pages.closed(w, r, session.Failure{Page: session.AccessDenied, Reason: "forbidden",
			Err: fmt.Errorf("authorization[%d] denies %s %s", j.deny.index, r.Method, r.URL.Path)})
		return
	}
	if j.public {
		p.forward(w, r, nil, nil)
		return
	}
	s, ok := p.sessions.Load(r)
	if !ok {
		p.unauthenticated(w, r)
		return
	}
	id, err := p.identity(r.Context(), s.UserID)
	switch {
	case errors.Is(err, provision.ErrNotFound):
		// The user was deleted, or an unprovisioned session outlived this
		// process: start over.
		p.unauthenticated(w, r)
		return
	case err != nil:
		p.pages.Problem(w, r, session.Failure{Page: session.Unavailable, Reason: "store", Err: err})
		return
	case !id.active:
		p.pages.deactivated(w, r, session.Failure{Page: session.AccessDenied, Reason: "inactive",
			Err: fmt.Errorf("user %s is deactivated", id.userID)}, id.user.UserName)
		return
	case !p.admit(w, r, j, s, id):
		return
	}
	info.userID, info.userName = id.userID, id.user.UserName
	p.sessions.Touch(w, s)
	p.forward(w, r, &s, id)
}

// identity returns the user's cached identity, reading the store when the
// entry is missing or older than the TTL. If the store fails, a stale
// entry is served (and retried a few seconds later) rather than failing
// every request of every signed-in user.
func (p *Proxy) identity(ctx context.Context, userID string) (*identity, error) {
	now := p.now()
	// The generation is read before the entry: a Forget after this point
	// keeps what is read below (or the entry) from being cached again.
	gen := p.users.generation()
	e := p.users.get(userID)
	if e != nil && now.Sub(e.fetched) < p.cfg.UserCacheTTL {
		return e, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.JITTimeout)
	defer cancel()
	u, err := p.store.User(ctx, userID)
	switch {
	case err == nil:
		fresh := p.identityOf(u, now)
		p.users.putRead(fresh, gen)
		if !u.Active {
			p.known.forgetUser(userID)
		}
		return fresh, nil
	case errors.Is(err, provision.ErrNotFound):
		p.users.drop(userID)
		p.known.forgetUser(userID)
		return nil, err
	case e != nil:
		retry := &identity{userID: e.userID, active: e.active, user: e.user, headers: e.headers,
			fetched: now.Add(-p.cfg.UserCacheTTL + 5*time.Second)}
		if !p.users.putRead(retry, gen) {
			// The record was forgotten (a SCIM change) during the read:
			// the last good copy is no longer good.
			return nil, fmt.Errorf("read user: %w", err)
		}
		p.log.Warn("user store unavailable; serving cached identity", zap.String("user_id", userID), zap.Error(err))
		return retry, nil
	default:
		return nil, fmt.Errorf("read user: %w", err)
	}
}

func (p *Proxy) identityOf(u provision.User, now time.Time) *identity {
	return &identity{userID: u.ID, active: u.Active, user: u, headers: p.headers.build(u), fetched: now}
}

func (p *Proxy) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r) {
		if p.rateLimited(w, r) {
			return
		}
		p.sessions.StartLogin(w, r, "", r.URL.RequestURI())
		return
	}
	p.pages.unauthorized(w, r)
}

func (p *Proxy) serveReserved(w http.ResponseWriter, r *http.Request) {
	if h, ok := p.routes[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	if p.scim != nil && strings.HasPrefix(r.URL.Path, p.cfg.Prefix+PathSCIM) {
		p.scim.ServeHTTP(w, r)
		return
	}
	p.pages.notFound(w, r)
}

// reserved reports whether an escaped request path falls under the
// reserved prefix as any server behind gatehouse might read it (see
// underPrefix: decoded once or repeatedly, case-insensitively, with or
// without ";" parameters, stream names, trailing dots, control
// characters and what follows a NUL; after a script segment; with a
// format suffix or as a short name). Such paths are answered by
// gatehouse and never proxied, with or without authorization rules.
func reserved(p, prefix string) bool {
	if strings.HasPrefix(p, prefix) {
		return true
	}
	// Readings only drop and fold characters: a plain path that does not
	// hold the prefix's first name in any case, nor a short name, cannot
	// read as it, so the common request skips the work. (Escapes, and
	// Unicode that folds to ASCII letters, take the full path.)
	first, _, _ := strings.Cut(strings.Trim(prefix, "/"), "/")
	if asciiPrintable(p) && !strings.ContainsAny(p, "%~") && !containsFold(p, first) {
		return false
	}
	return underPrefix(p, prefix)
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains sub, ASCII case-insensitively.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func underPath(p, pub string) bool {
	if strings.HasSuffix(pub, "/") {
		return strings.HasPrefix(p, pub)
	}
	return p == pub || strings.HasPrefix(p, pub+"/")
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if c := clientFrom(r.Context()); c != nil && c.body.slow() {
		// A body read that timed out also cancels the request's context:
		// tell the client before treating it as gone.
		p.pages.refuseRequest(w, r, http.StatusRequestTimeout, "body_timeout", err)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody is left to answer.
		p.log.Debug("client cancelled request", logString("path", r.URL.Path))
		return
	}
	p.pages.badGateway(w, r, err)
}

// bufferPool lends ReverseProxy 32 KiB copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// Forget drops the cached identity of a user, so that the next request of
// any session of theirs reads the store again (SCIM calls it after every
// change to the user).
func (p *Proxy) Forget(userID string) {
	p.users.drop(userID)
	p.known.forgetUser(userID)
	p.recheckTunnels()
}

// thenRecheckTunnels runs h (a logout) and then has the open tunnels
// checked at once.
// thenRecheckTunnelsOnOK is thenRecheckTunnels for an endpoint anyone can
// post to: only an answer of 200 (sessions revoked) makes the tunnels be
// checked again, so that refused posts cannot keep the checker busy.
func (p *Proxy) thenRecheckTunnelsOnOK(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		if sw.status == http.StatusOK {
			p.recheckTunnels()
		}
	})
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (p *Proxy) thenRecheckTunnels(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r)
		p.recheckTunnels()
	})
}
