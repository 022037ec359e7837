package proxy

import (
	"net/netip"
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
