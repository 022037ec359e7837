package proxy

import (
	"container/list"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// limiter is a token bucket per client address (see limitKey), holding at
// most max clients: when full, the client seen least recently is
// forgotten.
type limiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	max     int
	clients map[netip.Addr]*list.Element
	order   *list.List // of *bucket; front: most recently seen
}

type bucket struct {
	key      netip.Addr
	lim      *rate.Limiter
	reported time.Time // when a refusal was last logged
}

// newLimiter returns nil when the limit is disabled.
func newLimiter(c RateLimitConfig) *limiter {
	if c.Disabled {
		return nil
	}
	return &limiter{every: rate.Limit(float64(c.PerMinute) / 60), burst: c.Burst, max: c.MaxClients,
		clients: map[netip.Addr]*list.Element{}, order: list.New()}
}

// allow takes a token for the client at now; when none is left it
// returns how long until one is, and whether this refusal should be
// logged (the first of each minute, so that a flood is not a log flood).
func (l *limiter) allow(client netip.Addr, now time.Time) (ok bool, wait time.Duration, report bool) {
	key := limitKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.clients[key]; ok {
		l.order.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		if l.order.Len() >= l.max {
			oldest := l.order.Back()
			l.order.Remove(oldest)
			delete(l.clients, oldest.Value.(*bucket).key)
		}
		b = &bucket{key: key, lim: rate.NewLimiter(l.every, l.burst)}
		l.clients[key] = l.order.PushFront(b)
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		report = now.Sub(b.reported) >= time.Minute
		if report {
			b.reported = now
		}
		return false, d, report
	}
	return true, 0, false
}

// size is the number of clients tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}

// rateLimited answers 429 and reports true when the request's client has
// started too much SAML work (a login start, a message to a SAML
// endpoint) lately.
func (p *Proxy) rateLimited(w http.ResponseWriter, r *http.Request) bool {
	if p.limit == nil {
		return false
	}
	ip := ClientIP(r.Context())
	if !ip.IsValid() {
		return false // not from a network connection (a test's recorder)
	}
	ok, wait, report := p.limit.allow(ip, p.now())
	if ok {
		return false
	}
	secs := int((wait + time.Second - 1) / time.Second)
	if report {
		p.log.Warn("client rate limited (logged once a minute per client)", zap.String("client_ip", ip.String()),
			logString("method", r.Method), logString("path", r.URL.Path), zap.Int("retry_after", secs))
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	p.pages.tooManyRequests(w, r)
	return true
}

// limitedPath reports whether a reserved path starts SAML work: the SAML
// endpoints, the login and the logout.
func (p *Proxy) limitedPath(path string) bool {
	pre := p.cfg.Prefix
	return strings.HasPrefix(path, pre+"saml/") || path == pre+PathLogin || path == pre+PathLogout
}
