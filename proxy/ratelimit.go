package proxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// limiterEntryBytes is what one tracked client costs the limiter,
// counted against rate_limit.max_bytes: its 48-byte entry and its place
// in the index (a 16-byte address and a 4-byte position), with room for
// the index's growth (see TestRateLimiterEntryCost).
const limiterEntryBytes = 128

// limiter is a token bucket per client address (see limitKey), holding at
// most max clients, each in a fixed-size entry: when full, the client seen
// least recently is forgotten (it comes back with a full burst).
type limiter struct {
	mu      sync.Mutex
	perSec  float64 // tokens a second
	burst   float64
	max     int
	index   map[[16]byte]int32 // client → entries
	entries []limitEntry
	// head and tail are the most and the least recently seen entries
	// (-1: none); prev and next link the entries in that order.
	head, tail int32
}

type limitEntry struct {
	key        [16]byte
	tokens     float64
	last       int64 // Unix nanoseconds of the last refill
	reported   int64 // Unix nanoseconds of the last logged refusal
	prev, next int32
}

// newLimiter returns nil when the limit is disabled.
func newLimiter(c RateLimitConfig) *limiter {
	if c.Disabled {
		return nil
	}
	return &limiter{perSec: float64(c.PerMinute) / 60, burst: float64(c.Burst), max: max(1, c.maxClients()),
		index: map[[16]byte]int32{}, head: -1, tail: -1}
}

// allow takes a token for the client at now; when none is left it
// returns how long until one is, and whether this refusal should be
// logged (the first of each minute, so that a flood is not a log flood).
func (l *limiter) allow(client netip.Addr, now time.Time) (ok bool, wait time.Duration, report bool) {
	key := limitKey(client).As16()
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	i, found := l.index[key]
	switch {
	case found:
		l.unlink(i)
	case len(l.entries) < l.max:
		i = int32(len(l.entries))
		l.entries = append(l.entries, limitEntry{})
	default: // full: the least recently seen client's entry is reused
		i = l.tail
		l.unlink(i)
		delete(l.index, l.entries[i].key)
	}
	if !found {
		l.entries[i] = limitEntry{key: key, tokens: l.burst, last: t, reported: t - int64(time.Minute)}
		l.index[key] = i
	}
	l.pushFront(i)
	e := &l.entries[i]
	if d := t - e.last; d > 0 {
		e.tokens = min(l.burst, e.tokens+float64(d)/1e9*l.perSec)
		e.last = t
	}
	if e.tokens >= 1 {
		e.tokens--
		return true, 0, false
	}
	wait = time.Duration((1 - e.tokens) / l.perSec * 1e9)
	if report = t-e.reported >= int64(time.Minute); report {
		e.reported = t
	}
	return false, max(wait, 1), report
}

func (l *limiter) unlink(i int32) {
	e := &l.entries[i]
	if e.prev >= 0 {
		l.entries[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next >= 0 {
		l.entries[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
}

func (l *limiter) pushFront(i int32) {
	e := &l.entries[i]
	e.prev, e.next = -1, l.head
	if l.head >= 0 {
		l.entries[l.head].prev = i
	}
	l.head = i
	if l.tail < 0 {
		l.tail = i
	}
}

// size is the number of clients tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.index)
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

// limitedPath reports whether a reserved path starts SAML or OpenID
// Connect work: the SAML and OIDC endpoints, the login and the logout.
func (p *Proxy) limitedPath(path string) bool {
	pre := p.cfg.Prefix
	return strings.HasPrefix(path, pre+"saml/") || strings.HasPrefix(path, pre+"oidc/") || path == pre+PathLogin || path == pre+PathLogout
}
