package proxy

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A request without a session (a public path or rule) holds an upstream
// connection, and one of the upstream's workers, for a client nobody
// knows: while its body trickles in, while its answer is read slowly, or
// as long as its upgraded connection lives. publicSlots bounds how many
// such requests one client address has at the upstream at once. A
// request over the bound waits a little for a place (a page's burst of
// assets), then is refused.

// publicWait is how long a request without a session waits for a place.
const publicWait = 5 * time.Second

// publicSlots counts the session-less requests of each client address
// (see limitKey) at the upstream. An address is tracked only while it
// has a request in flight or waiting, so the map is bounded by the
// requests in progress.
type publicSlots struct {
	max int

	mu       sync.Mutex
	clients  map[netip.Addr]*clientSlots
	reported time.Time // when a refusal was last logged
}

// clientSlots holds one address's places: a send takes one, a receive
// gives it back.
type clientSlots struct {
	places chan struct{}
	users  int // holders and waiters; guarded by publicSlots.mu
}

func newPublicSlots(max int) *publicSlots {
	return &publicSlots{max: max, clients: map[netip.Addr]*clientSlots{}}
}

// acquire takes a place for client, waiting up to wait (or until ctx
// ends); ok is false when none came free. release must be called once
// the request is done with the upstream.
func (s *publicSlots) acquire(ctx context.Context, client netip.Addr, wait time.Duration) (release func(), ok bool) {
	key := limitKey(client)
	s.mu.Lock()
	c := s.clients[key]
	if c == nil {
		c = &clientSlots{places: make(chan struct{}, s.max)}
		s.clients[key] = c
	}
	c.users++
	s.mu.Unlock()

	release = func() {
		<-c.places
		s.leave(key, c)
	}
	select {
	case c.places <- struct{}{}:
		return release, true
	default:
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case c.places <- struct{}{}:
		return release, true
	case <-timer.C:
	case <-ctx.Done():
	}
	s.leave(key, c)
	return nil, false
}

// leave forgets an address that has no request left.
func (s *publicSlots) leave(key netip.Addr, c *clientSlots) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.users--
	if c.users == 0 {
		delete(s.clients, key)
	}
}

// inFlight is the number of places an address holds.
func (s *publicSlots) inFlight(client netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[limitKey(client)]; c != nil {
		return len(c.places)
	}
	return 0
}

// publicPlace takes a place at the upstream for a request without a
// session, and reports false after answering 429 when its client has
// public_max_concurrent requests there already. A refusal is logged at
// most once a minute (a flood is not a log flood).
func (p *Proxy) publicPlace(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	ip := ClientIP(r.Context())
	if !ip.IsValid() {
		return func() {}, true // not from a network connection (a test's recorder)
	}
	release, ok = p.publicSlots.acquire(r.Context(), ip, publicWait)
	if ok {
		return release, true
	}
	if r.Context().Err() != nil {
		return nil, false // the client went away while waiting
	}
	if p.publicSlots.report(p.now()) {
		p.log.Warn("request without a session refused: its client is at public_max_concurrent (logged once a minute)",
			zap.String("client_ip", ip.String()), logString("method", r.Method), logString("path", r.URL.Path),
			zap.Int("public_max_concurrent", p.cfg.PublicMaxConcurrent))
	}
	w.Header().Set("Retry-After", "1")
	p.pages.tooManyAtOnce(w, r)
	return nil, false
}

// report reports whether a refusal at now should be logged: the first of
// each minute.
func (s *publicSlots) report(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.reported) < time.Minute {
		return false
	}
	s.reported = now
	return true
}
