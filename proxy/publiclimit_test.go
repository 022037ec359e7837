package proxy

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestPublicSlotsPerClient: places are counted per client address (an
// IPv6 client by its /64), a request over the bound is refused after
// its wait or when its client goes away, and an address with nothing in
// flight is forgotten (the map is bounded by the requests in progress).
func TestPublicSlotsPerClient(t *testing.T) {
	s := newPublicSlots(2)
	a := netip.MustParseAddr("2001:db8::1")
	sameNet := netip.MustParseAddr("2001:db8::ffff")
	other := netip.MustParseAddr("192.0.2.7")
	ctx := context.Background()
	r1, ok1 := s.acquire(ctx, a, time.Millisecond)
	r2, ok2 := s.acquire(ctx, sameNet, time.Millisecond)
	if !ok1 || !ok2 {
		t.Fatal("the first two places were refused")
	}
	if _, ok := s.acquire(ctx, a, 20*time.Millisecond); ok {
		t.Error("a third request of the same /64 got a place")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := s.acquire(cancelled, a, time.Hour); ok {
		t.Error("a request whose client went away got a place")
	}
	r3, ok := s.acquire(ctx, other, time.Millisecond)
	if !ok {
		t.Error("another client was refused")
	}
	freed := make(chan struct{})
	go func() { time.Sleep(10 * time.Millisecond); r1(); close(freed) }()
	r4, ok := s.acquire(ctx, a, 10*time.Second)
	if !ok {
		t.Fatal("a freed place was not taken by the waiting request")
	}
	if n := s.inFlight(a); n != 2 {
		t.Errorf("in flight %d, want 2", n)
	}
	<-freed // r1 has given its place back and left
	r2()
	r3()
	r4()
	s.mu.Lock()
	n := len(s.clients)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d idle clients still tracked", n)
	}
}

// TestPublicEdgeKeysValidate: the bounds of the keys for requests without
// a session.
func TestPublicEdgeKeysValidate(t *testing.T) {
	for name, set := range map[string]func(*Config){
		"public_body_timeout":         func(c *Config) { c.PublicBodyTimeout = time.Millisecond },
		"public_upgrade_max_lifetime": func(c *Config) { c.PublicUpgradeMaxLifetime = -time.Second },
		"public_max_concurrent":       func(c *Config) { c.PublicMaxConcurrent = -1 },
	} {
		c := Config{Upstream: "http://app:8080", BaseURL: "https://sso.example.com"}.WithDefaults()
		if err := c.Validate(); err != nil {
			t.Fatalf("defaults: %v", err)
		}
		set(&c)
		if err := c.Validate(); err == nil || !containsFold(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
