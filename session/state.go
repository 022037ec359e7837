package session

import (
	"context"
	"sync"
	"time"
)

// loginState is one SP-initiated login, from the AuthnRequest to the
// response. It travels sealed in a short-lived cookie scoped to the ACS
// path, under a name derived from the RelayState token, so gatehouse keeps
// no memory per pending login: a flood of login starts costs nothing, and
// a login started on one replica finishes on any other.
type loginState struct {
	Token     string // the RelayState sent to the IdP
	RequestID string
	IdP       string // configured IdP name
	ReturnTo  string // same-origin relative path
	Expires   time.Time
	// AuthnContext, when set, are the classes this login must be made
	// with (a step-up), space-separated.
	AuthnContext string
}

// maxReturnInState bounds the return path kept in the cookie; a longer
// one falls back to "/" so that the cookie stays well under 4 KiB.
const maxReturnInState = 1536

// stateFormat 2 added AuthnContext. Login states live minutes, so an
// older one is simply refused (the user starts again).
const stateFormat = 2

func (st loginState) encode() []byte {
	return pack(stateFormat, []time.Time{st.Expires}, st.Token, st.RequestID, st.IdP, st.ReturnTo, st.AuthnContext)
}

func decodeState(b []byte) (loginState, error) {
	var st loginState
	if err := unpack(b, stateFormat, []*time.Time{&st.Expires}, &st.Token, &st.RequestID, &st.IdP, &st.ReturnTo, &st.AuthnContext); err != nil {
		return loginState{}, err
	}
	return st, nil
}

// ReplayCache remembers accepted assertion IDs until they expire. Claim
// returns false when the ID was already claimed. The in-memory default
// serves one instance; replicas share one.
type ReplayCache interface {
	Claim(ctx context.Context, id string, until time.Time) (bool, error)
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
