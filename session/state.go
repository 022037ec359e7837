package session

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// LoginState is the server-side state of one SP-initiated login, from the
// AuthnRequest to the response. The RelayState sent to the IdP is only an
// opaque reference to it.
type LoginState struct {
	RequestID string
	IdP       string // configured IdP name
	ReturnTo  string // same-origin relative path
	Expires   time.Time
}

// StateStore keeps pending logins. Take returns a state at most once.
// The in-memory default serves one instance; a shared implementation lets
// a login started on one replica finish on another.
type StateStore interface {
	Put(ctx context.Context, token string, st LoginState) error
	Take(ctx context.Context, token string) (LoginState, bool, error)
}

// ReplayCache remembers accepted assertion IDs until they expire. Claim
// returns false when the ID was already claimed.
type ReplayCache interface {
	Claim(ctx context.Context, id string, until time.Time) (bool, error)
}

// MemoryStates is a bounded in-memory StateStore. States share one
// lifetime, so insertion order is expiry order; when full, the oldest
// pending login is dropped (its user just starts over).
type MemoryStates struct {
	mu    sync.Mutex
	now   func() time.Time
	max   int
	order *list.List // of string tokens, oldest first
	items map[string]*list.Element
	data  map[string]LoginState
}

// NewMemoryStates returns a store holding at most max pending logins.
func NewMemoryStates(max int, now func() time.Time) *MemoryStates {
	return &MemoryStates{now: now, max: max, order: list.New(), items: map[string]*list.Element{}, data: map[string]LoginState{}}
}

func (m *MemoryStates) Put(_ context.Context, token string, st LoginState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire()
	for m.order.Len() >= m.max {
		m.remove(m.order.Front().Value.(string))
	}
	m.items[token] = m.order.PushBack(token)
	m.data[token] = st
	return nil
}

func (m *MemoryStates) Take(_ context.Context, token string) (LoginState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.data[token]
	if !ok {
		return LoginState{}, false, nil
	}
	m.remove(token)
	if !m.now().Before(st.Expires) {
		return LoginState{}, false, nil
	}
	return st, true, nil
}

// Len reports how many logins are pending.
func (m *MemoryStates) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

func (m *MemoryStates) expire() {
	now := m.now()
	for e := m.order.Front(); e != nil; e = m.order.Front() {
		tok := e.Value.(string)
		if now.Before(m.data[tok].Expires) {
			return
		}
		m.remove(tok)
	}
}

func (m *MemoryStates) remove(tok string) {
	if e, ok := m.items[tok]; ok {
		m.order.Remove(e)
		delete(m.items, tok)
		delete(m.data, tok)
	}
}

// MemoryReplay is the in-memory ReplayCache. Only validated assertions
// reach it, so its size follows the rate of real logins; expired IDs are
// swept at most once a minute.
type MemoryReplay struct {
	mu        sync.Mutex
	now       func() time.Time
	seen      map[string]time.Time
	nextSweep time.Time
}

// NewMemoryReplay returns an empty replay cache.
func NewMemoryReplay(now func() time.Time) *MemoryReplay {
	return &MemoryReplay{now: now, seen: map[string]time.Time{}}
}

func (m *MemoryReplay) Claim(_ context.Context, id string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.After(m.nextSweep) {
		for k, t := range m.seen {
			if now.After(t) {
				delete(m.seen, k)
			}
		}
		m.nextSweep = now.Add(time.Minute)
	}
	if t, ok := m.seen[id]; ok && !now.After(t) {
		return false, nil
	}
	m.seen[id] = until
	return true, nil
}
