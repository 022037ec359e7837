package session

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RedisState is the state replicas share, in Redis: the replay cache and
// the session revocations. The login state needs nothing here: it travels
// sealed in the browser's cookie, so any replica finishes a login another
// started.
//
// Revocations are also kept in each replica's memory, so that a proxied
// request never waits on Redis: a revocation is published, every replica
// applies it from its subscription, and a replica that (re)connects
// catches up from a sorted set of recent revocations. With Redis down,
// logins fail (the replay cache cannot be asked) and established sessions
// go on.
type RedisState struct {
	rdb    *redis.Client
	prefix string
	log    *zap.Logger
	now    func() time.Time
	retain time.Duration // how long revocations are kept in the sorted set
	local  *MemoryRevocations

	mu       sync.Mutex
	lastSeen time.Time // the newest revocation applied
	ready    chan struct{}
	once     sync.Once
}

// maxCatchUp bounds the revocations read on one (re)connection.
const maxCatchUp = 10000

// NewRedisState uses rdb under keys starting with prefix; retain is the
// longest a session lives (revocations older than that end nothing).
func NewRedisState(rdb *redis.Client, prefix string, retain time.Duration, log *zap.Logger, now func() time.Time) *RedisState {
	if now == nil {
		now = time.Now
	}
	return &RedisState{rdb: rdb, prefix: prefix, log: log, now: now, retain: retain, local: NewMemoryRevocations(now), ready: make(chan struct{})}
}

func (s *RedisState) key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

// Claim records an assertion ID until it expires; false when another
// replica (or this one) already did.
func (s *RedisState) Claim(ctx context.Context, id string, until time.Time) (bool, error) {
	ttl := until.Sub(s.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	return s.rdb.SetNX(ctx, s.key("replay", id), 1, ttl).Result()
}

// Revoke records a revocation locally and in Redis, and tells the other
// replicas.
func (s *RedisState) Revoke(ctx context.Context, key string, at, until time.Time) error {
	s.local.Revoke(ctx, key, at, until)
	member := strings.Join([]string{strconv.FormatInt(at.UnixMilli(), 10), strconv.FormatInt(until.UnixMilli(), 10), key}, "|")
	pipe := s.rdb.TxPipeline()
	pipe.ZAdd(ctx, s.key("revocations"), redis.Z{Score: float64(at.UnixMilli()), Member: member})
	pipe.ZRemRangeByScore(ctx, s.key("revocations"), "-inf", strconv.FormatInt(s.now().Add(-s.retain).UnixMilli(), 10))
	pipe.Publish(ctx, s.key("revocations"), member)
	_, err := pipe.Exec(ctx)
	return err
}

// RevokedAt answers from memory.
func (s *RedisState) RevokedAt(key string) (time.Time, bool) { return s.local.RevokedAt(key) }

// Ping checks that Redis answers, for readiness.
func (s *RedisState) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// apply records one published or caught-up revocation.
func (s *RedisState) apply(member string) {
	parts := strings.SplitN(member, "|", 3)
	if len(parts) != 3 {
		return
	}
	at, err1 := strconv.ParseInt(parts[0], 10, 64)
	until, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	s.local.Revoke(context.Background(), parts[2], time.UnixMilli(at), time.UnixMilli(until))
	s.mu.Lock()
	if t := time.UnixMilli(at); t.After(s.lastSeen) {
		s.lastSeen = t
	}
	s.mu.Unlock()
}

// catchUp applies the revocations made since the last one seen (all
// retained ones the first time): the newest maxCatchUp of them, as the
// newest are the sessions most likely still in use.
func (s *RedisState) catchUp(ctx context.Context) error {
	s.mu.Lock()
	since := s.lastSeen.Add(-time.Minute) // overlap: clocks of replicas differ
	s.mu.Unlock()
	if oldest := s.now().Add(-s.retain); since.Before(oldest) {
		since = oldest
	}
	members, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.key("revocations"), ByScore: true, Rev: true,
		Start: "+inf", Stop: strconv.FormatInt(since.UnixMilli(), 10), Count: maxCatchUp}).Result()
	if err != nil {
		return err
	}
	for _, m := range members {
		s.apply(m)
	}
	if len(members) == maxCatchUp {
		s.log.Warn("revocation catch-up hit its bound; older revocations may be missed", zap.Int("applied", len(members)))
	}
	return nil
}

// Run follows the revocations of the other replicas until ctx ends,
// resubscribing and catching up after every disconnection.
func (s *RedisState) Run(ctx context.Context) {
	for ctx.Err() == nil {
		ps := s.rdb.Subscribe(ctx, s.key("revocations"))
		err := s.follow(ctx, ps)
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("redis subscription lost; reconnecting", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *RedisState) follow(ctx context.Context, ps *redis.PubSub) error {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// (Re)subscribed: fetch what was published while away.
			if m.Kind == "subscribe" {
				if err := s.catchUp(ctx); err != nil {
					return err
				}
				s.once.Do(func() { close(s.ready) })
			}
		case *redis.Message:
			s.apply(m.Payload)
		case *redis.Pong:
		default:
			return errors.New("unexpected pub/sub message")
		}
	}
}

// Subscribed is closed once the first subscription has caught up.
func (s *RedisState) Subscribed() <-chan struct{} { return s.ready }
