package proxy

import (
	"math"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// TestRateLimiterTokenBucketPerClient: a client gets its burst, then one
// request per interval, with the wait it must observe; another client is
// unaffected.
func TestRateLimiterTokenBucketPerClient(t *testing.T) {
	l := newLimiter(RateLimitConfig{PerMinute: 60, Burst: 3, MaxClients: 100})
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	for i := range 3 {
		if ok, _, _ := l.allow(a, now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait, report := l.allow(a, now)
	if ok || wait <= 0 || wait > time.Second || !report {
		t.Fatalf("over the burst: ok=%v wait=%v report=%v", ok, wait, report)
	}
	if _, _, report := l.allow(a, now); report {
		t.Error("a second refusal within the minute is logged again")
	}
	if ok, _, _ := l.allow(b, now); !ok {
		t.Error("another client was limited")
	}
	if ok, _, _ := l.allow(a, now.Add(time.Second)); !ok {
		t.Error("a token did not come back after its interval")
	}
}

// TestRateLimiterIPv6SharesSlash64: the addresses of one /64 share a
// bucket (a host can use all of them).
func TestRateLimiterIPv6SharesSlash64(t *testing.T) {
	l := newLimiter(RateLimitConfig{PerMinute: 1, Burst: 1, MaxClients: 100})
	now := time.Now()
	if ok, _, _ := l.allow(netip.MustParseAddr("2001:db8:1:2::1"), now); !ok {
		t.Fatal("first request refused")
	}
	if ok, _, _ := l.allow(netip.MustParseAddr("2001:db8:1:2:ffff::9"), now); ok {
		t.Error("another address of the same /64 got a fresh bucket")
	}
	if ok, _, _ := l.allow(netip.MustParseAddr("2001:db8:1:3::1"), now); !ok {
		t.Error("another /64 was limited")
	}
}

// TestRateLimiterMemoryIsBounded: a flood of distinct addresses keeps
// at most MaxClients buckets, forgetting the least recently seen.
func TestRateLimiterMemoryIsBounded(t *testing.T) {
	l := newLimiter(RateLimitConfig{PerMinute: 1, Burst: 1, MaxClients: 100})
	now := time.Now()
	busy := netip.MustParseAddr("203.0.113.1")
	l.allow(busy, now)
	for i := range 10_000 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
		if i%50 == 0 {
			l.allow(busy, now) // stays recent
		}
	}
	if n := l.size(); n != 100 {
		t.Errorf("%d clients tracked, want 100", n)
	}
	if ok, _, _ := l.allow(busy, now); ok {
		t.Error("a recently seen client's bucket was forgotten")
	}
}

func TestRateLimitDisabled(t *testing.T) {
	if newLimiter(RateLimitConfig{Disabled: true}) != nil {
		t.Error("a disabled limit built a limiter")
	}
}

// TestRateLimiterEntryCost: a tracked client costs at most
// limiterEntryBytes, at any fill, so that max_bytes holds.
func TestRateLimiterEntryCost(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	now := time.Now()
	for _, n := range []int{1000, 7169, 14337, 28673, 65536} {
		// The least of three measurements: whatever else the process
		// allocates or frees meanwhile (goroutines earlier tests left)
		// only adds noise, either way; a difference is taken signed.
		per, size := math.Inf(1), 0
		for range 3 {
			before := heap()
			l := newLimiter(RateLimitConfig{PerMinute: 60, Burst: 10, MaxBytes: n * limiterEntryBytes})
			for i := range n {
				l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
			}
			if d := int64(heap()) - int64(before); d > 0 {
				per = min(per, float64(d)/float64(n))
			}
			size = l.size()
			runtime.KeepAlive(l)
		}
		t.Logf("%d clients: %.1f bytes each", n, per)
		if size != n || per > limiterEntryBytes {
			t.Errorf("%d clients: %d tracked, %.1f bytes each (limiterEntryBytes %d)", n, size, per, limiterEntryBytes)
		}
	}
}

// TestRateLimiterForgetsLeastRecent: when full, the client seen least
// recently is forgotten and comes back with a full burst; the others
// keep their state.
func TestRateLimiterForgetsLeastRecent(t *testing.T) {
	l := newLimiter(RateLimitConfig{PerMinute: 1, Burst: 1, MaxClients: 100})
	now := time.Now()
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	for i := range 100 {
		if ok, _, _ := l.allow(addr(i), now); !ok {
			t.Fatalf("client %d: first request refused", i)
		}
	}
	l.allow(addr(0), now) // 0 is now the most recent; 1 the least
	if ok, _, _ := l.allow(addr(200), now); !ok || l.size() != 100 {
		t.Fatalf("a new client when full: %v, %d tracked", ok, l.size())
	}
	for _, i := range []int{0, 2, 99, 200} {
		if ok, _, _ := l.allow(addr(i), now); ok {
			t.Errorf("client %d lost its bucket", i)
		}
	}
	if ok, _, _ := l.allow(addr(1), now); !ok {
		t.Error("the least recent client was not forgotten")
	}
}
