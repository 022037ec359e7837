package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gatehouse/test/redistest"
)

func newTestRedisState(t *testing.T, addr string) *RedisState {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	return NewRedisState(rdb, "gatehouse-test:", 12*time.Hour, zap.NewNop(), nil)
}

func follow(t *testing.T, s *RedisState) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go s.Run(ctx)
	select {
	case <-s.Subscribed():
	case <-time.After(10 * time.Second):
		t.Fatal("no subscription")
	}
}

// TestRedisCatchUp: a replica that starts (or reconnects) after other
// replicas revoked sessions applies those revocations from Redis; past
// the bound it keeps the newest, which matter most.
func TestRedisCatchUp(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newTestRedisState(t, srv.Addr), newTestRedisState(t, srv.Addr)
	ctx := context.Background()
	now := time.Now()
	total := maxCatchUp + 50
	for i := range total {
		at := now.Add(time.Duration(i-total) * time.Millisecond)
		if err := a.Revoke(ctx, fmt.Sprintf("session-%d", i), at, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	follow(t, b)
	if _, ok := b.RevokedAt(fmt.Sprintf("session-%d", total-1)); !ok {
		t.Error("the newest revocation was not caught up")
	}
	if _, ok := b.RevokedAt(fmt.Sprintf("session-%d", total-maxCatchUp)); !ok {
		t.Error("the oldest revocation within the bound was not caught up")
	}
	if _, ok := b.RevokedAt("session-0"); ok {
		t.Error("a revocation beyond the bound was applied; the bound is not enforced")
	}
	// Published from now on: applied from the subscription.
	if err := a.Revoke(ctx, "later", time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := b.RevokedAt("later"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a published revocation did not arrive")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
