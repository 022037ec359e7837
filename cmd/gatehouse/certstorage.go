package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// redisCertStorage is certmagic's storage in Redis, for replicas: they
// share certificates and ACME accounts, and the lock makes one replica
// solve each challenge while the others wait for its result. Each value
// is a hash of the data and its modification time; an index set per
// directory serves List.
type redisCertStorage struct {
	rdb    *redis.Client
	prefix string

	mu    sync.Mutex
	locks map[string]string // lock name -> our token
}

var _ certmagic.Storage = (*redisCertStorage)(nil)

// lockTTL bounds how long a crashed replica's lock blocks the others; a
// held lock is refreshed well before.
const lockTTL = 60 * time.Second

func newRedisCertStorage(rdb *redis.Client, prefix string) *redisCertStorage {
	return &redisCertStorage{rdb: rdb, prefix: prefix + "certmagic:", locks: map[string]string{}}
}

// cleanKey is a storage key without dot segments or leading slash.
func cleanKey(key string) string { return path.Clean("/" + key)[1:] }

// parentDir is the directory a key is listed in, "" at the top.
func parentDir(key string) string {
	if p := path.Dir(key); p != "." {
		return p
	}
	return ""
}

// The lock scripts act only on a lock that still holds our token.
var (
	extendLock  = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	releaseLock = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)

func (s *redisCertStorage) data(key string) string { return s.prefix + "data:" + key }
func (s *redisCertStorage) dir(p string) string    { return s.prefix + "dir:" + p }

// Store writes the value and records it in the index of every parent.
func (s *redisCertStorage) Store(ctx context.Context, key string, value []byte) error {
	key = cleanKey(key)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, s.data(key), "v", value, "m", time.Now().UnixNano())
	for child := key; child != ""; child = parentDir(child) {
		pipe.SAdd(ctx, s.dir(parentDir(child)), child)
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (s *redisCertStorage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.rdb.HGet(ctx, s.data(cleanKey(key)), "v").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fs.ErrNotExist
	}
	return v, err
}

// Delete removes a key, or every key under it; a missing key is no error.
func (s *redisCertStorage) Delete(ctx context.Context, key string) error {
	key = cleanKey(key)
	keys, err := s.List(ctx, key, true)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	pipe := s.rdb.TxPipeline()
	for _, k := range append(keys, key) {
		pipe.Del(ctx, s.data(k), s.dir(k))
	}
	pipe.SRem(ctx, s.dir(parentDir(key)), key)
	_, err = pipe.Exec(ctx)
	return err
}

func (s *redisCertStorage) Exists(ctx context.Context, key string) bool {
	key = cleanKey(key)
	n, err := s.rdb.Exists(ctx, s.data(key), s.dir(key)).Result()
	return err == nil && n > 0
}

func (s *redisCertStorage) List(ctx context.Context, p string, recursive bool) ([]string, error) {
	p = cleanKey(p)
	children, err := s.rdb.SMembers(ctx, s.dir(p)).Result()
	if err != nil {
		return nil, err
	}
	if len(children) == 0 && !s.Exists(ctx, p) {
		return nil, fs.ErrNotExist
	}
	sort.Strings(children)
	out := append([]string(nil), children...)
	if recursive {
		for _, c := range children {
			sub, err := s.List(ctx, c, true)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

func (s *redisCertStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	key = cleanKey(key)
	vals, err := s.rdb.HMGet(ctx, s.data(key), "v", "m").Result()
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if vals[0] == nil {
		if n, _ := s.rdb.Exists(ctx, s.dir(key)).Result(); n > 0 {
			return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
		}
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	v, _ := vals[0].(string)
	m, _ := vals[1].(string)
	nanos, _ := strconv.ParseInt(m, 10, 64)
	return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, nanos), Size: int64(len(v)), IsTerminal: true}, nil
}

// Lock takes a named lock across replicas, waiting for it, and keeps it
// alive until Unlock.
func (s *redisCertStorage) Lock(ctx context.Context, name string) error {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := s.prefix + "lock:" + name
	for {
		ok, err := s.rdb.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	s.mu.Lock()
	s.locks[name] = token
	s.mu.Unlock()
	go s.keepAlive(key, name, token)
	return nil
}

// keepAlive extends a held lock until it is released.
func (s *redisCertStorage) keepAlive(key, name, token string) {
	for {
		time.Sleep(lockTTL / 3)
		s.mu.Lock()
		held := s.locks[name] == token
		s.mu.Unlock()
		if !held {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		extendLock.Run(ctx, s.rdb, []string{key}, token, lockTTL.Milliseconds())
		cancel()
	}
}

// Unlock releases a lock this replica holds (and only such a lock).
func (s *redisCertStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	token, ok := s.locks[name]
	delete(s.locks, name)
	s.mu.Unlock()
	if !ok {
		return errors.New("certmagic storage: unlock of a lock not held: " + name)
	}
	return releaseLock.Run(ctx, s.rdb, []string{s.prefix + "lock:" + name}, token).Err()
}
