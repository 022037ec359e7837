package test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse/session"
	"gatehouse/test/redistest"
)

// redisState is one replica's connection to a shared Redis, subscribed to
// the revocation feed.
func redisState(t testing.TB, addr string) *session.RedisState {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	st := session.NewRedisState(rdb, "gatehouse-test:", 12*time.Hour, zap.NewNop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go st.Run(ctx)
	select {
	case <-st.Subscribed():
	case <-time.After(10 * time.Second):
		t.Fatal("no subscription to the shared revocations")
	}
	return st
}

// BenchmarkRedisState: the same gatehouse with its state in memory and in
// a real Redis, in one run. Proxied requests of a signed-in user, in
// alternating wrk rounds (target: no measurable difference, as the
// request path reads the local revocation list only), and unchanged
// logins, which pay one Redis round trip for the replay cache.
func BenchmarkRedisState(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Fatal("wrk is required: apt-get install wrk (make bench does this)")
	}
	srv := redistest.Start(b)
	memory := newHarness(b, options{})
	shared := newHarness(b, options{state: redisState(b, srv.Addr)})
	inMemory, inRedis := alternateWrk(b, memory, shared)
	b.Logf("proxied rounds (req/s): memory %.0f, redis %.0f", inMemory, inRedis)

	// Logins: the replay cache is one Redis SET NX per assertion.
	const n = 1000
	rate := func(h *harness) float64 {
		h.upstream.discard = true
		firstLogin(b, h, alice)
		return n / timeLogins(b, h, prepareLogins(b, h, n, func(int) person { return alice })).Seconds()
	}
	lm := rate(newHarness(b, options{base: goldenBase}))
	lr := rate(newHarness(b, options{base: goldenBase, state: redisState(b, srv.Addr)}))
	// Reported last: timeLogins resets the timer, which drops metrics.
	m, r := median(inMemory), median(inRedis)
	b.ReportMetric(m, "memory-req/s")
	b.ReportMetric(r, "redis-req/s")
	b.ReportMetric(r/m, "throughput-ratio")
	b.ReportMetric(lm, "memory-logins/s")
	b.ReportMetric(lr, "redis-logins/s")
	b.ReportMetric(lr/lm, "login-ratio")
}
