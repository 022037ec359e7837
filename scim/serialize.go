package scim

import (
	"context"
	"sync"
)

// A PATCH reads a resource, applies its operations and writes the result
// on condition that the resource is still at the version it read. Two
// PATCHes of one resource at once make one of them read again
// (readModifyWrite); twenty at once would retry each other out. Within
// one server they take turns instead, through a lock per resource, so a
// retry is left for writers on other replicas (or the import).
//
// The turn covers the read-modify-write only, never the answer: a client
// that does not read its answer would otherwise keep every other PATCH
// of the resource waiting until its socket closed.

// keyedLock holds one lock per key while someone holds or waits for it.
// The zero value is ready to use.
type keyedLock struct {
	mu   sync.Mutex
	held map[string]*keyTurn
}

type keyTurn struct {
	ch      chan struct{} // holds a token while the key is locked
	waiters int           // holders and waiters; the entry goes at zero
}

// lock waits for key, or for ctx to end. It returns the unlock function.
func (k *keyedLock) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.held == nil {
		k.held = map[string]*keyTurn{}
	}
	t := k.held[key]
	if t == nil {
		t = &keyTurn{ch: make(chan struct{}, 1)}
		k.held[key] = t
	}
	t.waiters++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if t.waiters--; t.waiters == 0 {
			delete(k.held, key)
		}
		k.mu.Unlock()
	}
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// do runs fn in key's turn: it waits for key (or for ctx to end), runs fn
// and lets the next one in as fn returns, whatever way it returns.
func (k *keyedLock) do(ctx context.Context, key string, fn func() error) error {
	unlock, err := k.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}
