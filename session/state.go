package session

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
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
	// Verifier is an OpenID Connect login's PKCE code verifier; its
	// RequestID is the nonce.
	Verifier string
}

// maxReturnInState bounds the return path kept in the cookie; a longer
// one falls back to "/" so that the cookie stays well under 4 KiB.
const maxReturnInState = 1536

// stateFormat 2 added AuthnContext, 3 Verifier. Login states live
// minutes, so an older one is simply refused (the user starts again).
const stateFormat = 3

func (st loginState) encode() []byte {
	return pack(stateFormat, []time.Time{st.Expires}, st.Token, st.RequestID, st.IdP, st.ReturnTo, st.AuthnContext, st.Verifier)
}

func decodeState(b []byte) (loginState, error) {
	var st loginState
	if err := unpack(b, stateFormat, []*time.Time{&st.Expires}, &st.Token, &st.RequestID, &st.IdP, &st.ReturnTo, &st.AuthnContext, &st.Verifier); err != nil {
		return loginState{}, err
	}
	return st, nil
}

// ReplayCache remembers accepted assertion IDs (and used login states)
// until they expire. Claim returns false when the ID was already claimed.
// The in-memory default serves one instance; replicas share one.
type ReplayCache interface {
	Claim(ctx context.Context, id string, until time.Time) (bool, error)
}

// ErrReplayCacheFull is Claim's error when the in-memory replay cache
// holds as many unexpired IDs as its byte bound allows. The login is
// refused (503): forgetting an unexpired ID to make room would admit a
// replay of it.
var ErrReplayCacheFull = errors.New("replay cache full: too many logins within the lifetime of their assertions and login states (state.replay_cache_max_bytes)")

// DefaultReplayCacheBytes bounds the in-memory replay cache unless
// configured: about 150,000 entries. An assertion's is held until the
// assertion can no longer be accepted (two minutes: MaxIssueDelay and the
// clock skew), so that is over 1,000 logins a second sustained; used
// login states (held up to login_timeout) take at most half and give way.
const DefaultReplayCacheBytes = 16 << 20

// ReplayEntryBytes is what one entry of MemoryReplay costs, counted
// against its byte bound: a 16-byte digest of the ID and its expiry as
// Unix seconds, held in a map and in an expiry queue (24 bytes each),
// with room for the map's and the queue's growth (see
// TestMemoryReplayEntryCost).
const ReplayEntryBytes = 112

// replayKey is an ID as the cache holds it: the first 16 bytes of its
// SHA-256, whatever the ID's length. Two IDs sharing a key would make the
// second look replayed (a refused login, never an accepted replay); at
// 128 bits that does not happen by chance, and IdP-chosen IDs cannot aim
// at it.
type replayKey [16]byte

type replayEntry struct {
	key     replayKey
	expires int64 // Unix seconds, rounded up
}

// MemoryReplay is the in-memory ReplayCache: each ID costs ReplayEntryBytes
// until its expiry, and the cache never holds more than its byte bound
// allows. When full it refuses new IDs (ErrReplayCacheFull) rather than
// forget unexpired ones. Expired IDs leave as the clock passes their
// expiry (an expiry queue, no sweep of the whole cache), and the map is
// rebuilt smaller once a burst has drained.
//
// Used login states (ClaimState) are held apart, in at most half the
// bound, and may be forgotten to make room: anyone can get login states
// and post garbage with them, and that must never fill the cache and turn
// real logins away. Forgetting a used state lets one more response be
// posted with it, which the rate limit and the assertion's own entry
// still bound; an assertion's entry is never forgotten early.
type MemoryReplay struct {
	mu       sync.Mutex
	now      func() time.Time
	max      int                 // entries the byte bound allows
	seen     map[replayKey]int64 // expiry, Unix seconds
	queue    replayQueue         // the same entries, soonest expiry first
	states   replaySet           // used login states
	peak     int                 // the most entries since the map was last built
	refused  atomic.Int64        // claims refused because the cache was full
	occupied atomic.Int64        // entries held, for Stats without the lock
}

// replaySet is a map of keys to expiries with its expiry queue.
type replaySet struct {
	m     map[replayKey]int64
	queue replayQueue
}

// expire drops the entries whose expiry second is before now's.
func (r *replaySet) expire(now int64) {
	for len(r.queue) > 0 && r.queue[0].expires < now {
		r.pop()
	}
}

// pop drops the entry that expires first.
func (r *replaySet) pop() {
	e := heap.Pop(&r.queue).(replayEntry)
	if r.m[e.key] == e.expires {
		delete(r.m, e.key)
	}
}

// ClaimState is Claim for a used login state: held apart from assertion
// IDs, in at most half the cache, the soonest to expire forgotten when
// that half (or the whole cache) is full. It never refuses for room
// unless assertion IDs fill the whole cache.
func (m *MemoryReplay) ClaimState(_ context.Context, token string, until time.Time) (bool, error) {
	key, exp := replayKeyOf("login\x00"+token, until)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().Unix()
	m.expire(now)
	if m.states.m == nil {
		m.states.m = map[replayKey]int64{}
	}
	if _, ok := m.states.m[key]; ok {
		return false, nil
	}
	for len(m.states.m) > 0 && (len(m.states.m) >= max(1, m.max/2) || len(m.seen)+len(m.states.m) >= m.max) {
		m.states.pop()
	}
	if len(m.seen)+len(m.states.m) >= m.max {
		m.refused.Add(1)
		return false, ErrReplayCacheFull
	}
	exp = max(exp, now)
	m.states.m[key] = exp
	heap.Push(&m.states.queue, replayEntry{key, exp})
	m.occupied.Store(int64(len(m.seen) + len(m.states.m)))
	return true, nil
}

// replayKeyOf is id's key and until as the cache holds it: rounded up
// to the end of its second, never shorter than asked.
func replayKeyOf(id string, until time.Time) (replayKey, int64) {
	sum := sha256.Sum256([]byte(id))
	exp := until.Unix()
	if until.Nanosecond() > 0 {
		exp++
	}
	return replayKey(sum[:16]), exp
}

// NewMemoryReplay returns an empty replay cache of at most maxBytes
// (DefaultReplayCacheBytes when 0); now is time.Now when nil.
func NewMemoryReplay(now func() time.Time, maxBytes int64) *MemoryReplay {
	if now == nil {
		now = time.Now
	}
	if maxBytes <= 0 {
		maxBytes = DefaultReplayCacheBytes
	}
	return &MemoryReplay{now: now, max: int(max(1, maxBytes/ReplayEntryBytes)), seen: map[replayKey]int64{}}
}

// Claim records id until the instant until; false when it is already
// held and unexpired (a replay), whether or not the cache is full. A new
// ID when the cache is full is ErrReplayCacheFull.
func (m *MemoryReplay) Claim(_ context.Context, id string, until time.Time) (bool, error) {
	key, exp := replayKeyOf(id, until)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().Unix()
	m.expire(now)
	if _, ok := m.seen[key]; ok {
		return false, nil // expire left only entries whose second has not passed
	}
	// Used login states make room for an assertion: they may be forgotten.
	for len(m.states.m) > 0 && len(m.seen)+len(m.states.m) >= m.max {
		m.states.pop()
	}
	if len(m.seen)+len(m.states.m) >= m.max {
		m.refused.Add(1)
		return false, ErrReplayCacheFull
	}
	exp = max(exp, now)
	m.seen[key] = exp
	heap.Push(&m.queue, replayEntry{key, exp})
	m.peak = max(m.peak, len(m.seen))
	m.occupied.Store(int64(len(m.seen) + len(m.states.m)))
	return true, nil
}

// expire drops the entries whose expiry second is before now's, and
// rebuilds the map and the queue once they hold a quarter of their peak
// (Go's maps do not shrink).
func (m *MemoryReplay) expire(now int64) {
	for len(m.queue) > 0 && m.queue[0].expires < now {
		e := heap.Pop(&m.queue).(replayEntry)
		if m.seen[e.key] == e.expires {
			delete(m.seen, e.key)
		}
	}
	if m.peak >= 1024 && len(m.seen) < m.peak/4 {
		seen := make(map[replayKey]int64, len(m.seen))
		maps.Copy(seen, m.seen)
		m.seen = seen
		m.queue = slices.Clone(m.queue)
		m.peak = len(m.seen)
	}
	m.states.expire(now)
	if len(m.states.m) == 0 && cap(m.states.queue) >= 1024 {
		m.states = replaySet{} // Go's maps do not shrink
	}
	m.occupied.Store(int64(len(m.seen) + len(m.states.m)))
}

// ReplayStats describes a MemoryReplay, for metrics.
type ReplayStats struct {
	Entries, MaxEntries int64
	Bytes, MaxBytes     int64 // Entries and MaxEntries at ReplayEntryBytes each
	Refused             int64 // claims refused because the cache was full
}

// Stats reports the cache's occupation, without waiting on its lock.
func (m *MemoryReplay) Stats() ReplayStats {
	n, limit := m.occupied.Load(), int64(m.max)
	return ReplayStats{Entries: n, MaxEntries: limit, Bytes: n * ReplayEntryBytes, MaxBytes: limit * ReplayEntryBytes, Refused: m.refused.Load()}
}

// replayQueue is a min-heap of entries by expiry (container/heap).
type replayQueue []replayEntry

func (q replayQueue) Len() int           { return len(q) }
func (q replayQueue) Less(i, j int) bool { return q[i].expires < q[j].expires }
func (q replayQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *replayQueue) Push(x any)        { *q = append(*q, x.(replayEntry)) }
func (q *replayQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
