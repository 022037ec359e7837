package proxy

import (
	"container/list"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"gatehouse/provision"
)

// identity is what the request path needs of a user: whether they may
// pass, and the identity headers, built once per cache fill.
type identity struct {
	userID  string
	active  bool
	user    provision.User // for authorization rules and the identity token
	token   atomic.Pointer[signedToken]
	headers []header
	fetched time.Time
	size    int64 // estimated bytes, set when cached (identityBytes)
}

type header struct {
	name, value string
	values      []string // []string{value}, built once; see set
}

// headerSet turns a user record into identity headers.
type headerSet struct {
	user, email, groups, preferred, display string
	extra                                   []header // name → field
	sep                                     string
}

func newHeaderSet(h HeaderConfig) headerSet {
	hs := headerSet{
		user: textproto.CanonicalMIMEHeaderKey(h.User), email: textproto.CanonicalMIMEHeaderKey(h.Email),
		groups: textproto.CanonicalMIMEHeaderKey(h.Groups), preferred: textproto.CanonicalMIMEHeaderKey(h.PreferredUsername),
		display: textproto.CanonicalMIMEHeaderKey(h.DisplayName), sep: h.GroupSeparator,
	}
	for name, field := range h.Extra {
		hs.extra = append(hs.extra, header{name: textproto.CanonicalMIMEHeaderKey(name), value: field})
	}
	return hs
}

// names lists every configured identity header, for stripping.
func (hs headerSet) names() []string {
	n := []string{hs.user, hs.email, hs.groups, hs.preferred, hs.display}
	for _, e := range hs.extra {
		n = append(n, e.name)
	}
	return n
}

// build returns the headers for u. A value that the header writer would
// change (Go trims leading and trailing spaces and tabs), that is not
// provision's canonical form (padding by any Unicode white space,
// invisible or format characters, control characters, invalid UTF-8), or
// that cannot travel in a header is left out rather than altered: what
// the upstream reads is exactly what was checked. Stores refuse such
// values; this guards rows written before they did.
//
// The preferred-username header carries the user name, unique and
// canonical, never the display name: that is free text any IdP or SCIM
// client sets ("alice" on Bob's record), and it travels only in the
// display-name header, whose name says what it is.
func (hs headerSet) build(u provision.User) []header {
	out := make([]header, 0, 5+len(hs.extra))
	add := func(name, v string) {
		if v != "" && headerSafe(v) {
			out = append(out, header{name: name, value: v, values: []string{v}})
		}
	}
	add(hs.user, u.UserName)
	add(hs.email, u.Email)
	add(hs.preferred, u.UserName)
	add(hs.display, u.DisplayName)
	add(hs.groups, hs.joinGroups(u.Groups))
	for _, e := range hs.extra {
		add(e.name, fieldValue(u, e.value))
	}
	return out
}

// GroupListSpecials are the characters that readers of a header list
// treat as syntax rather than as part of an element: the comma that separates
// elements, the double quote and backslash of a quoted string (Werkzeug's
// parse_list_header reads "\"admins\"" as admins), the semicolon that
// starts an element's parameters.
const GroupListSpecials = `,";\`

// joinGroups joins the groups for the groups header. A group whose name
// holds the separator or a list special is left out of the header (it
// still counts for authorization rules and the signed identity, where it
// cannot be misread): joined, it could read as another group or as two.
func (hs headerSet) joinGroups(groups []string) string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if !strings.Contains(g, hs.sep) && !strings.ContainsAny(g, GroupListSpecials) && headerSafe(g) {
			out = append(out, g)
		}
	}
	return strings.Join(out, hs.sep)
}

// headerSafe reports whether v reaches the upstream byte for byte as
// provision checked it.
func headerSafe(v string) bool {
	_, err := provision.CanonicalValue("header", v)
	return err == nil && httpguts.ValidHeaderFieldValue(v) && textproto.TrimString(v) == v
}

func fieldValue(u provision.User, field string) string {
	if field == "id" {
		return u.ID
	}
	return u.Field(field)
}

// set writes the identity headers into h. The value slices are shared by
// every request of the user: nothing downstream writes into a header's
// slice, and their capacity is their length, so an Add would copy.
func (id *identity) set(h http.Header) {
	for _, hd := range id.headers {
		h[hd.name] = hd.values
	}
}

// userCache keeps identities in memory so that the steady-state request
// does not touch the store. It is bounded in bytes (an estimate of what
// each identity holds, see identityBytes); when full, entries chosen at
// random make room (map iteration order is random), and a log line says
// so at most once a minute.
type userCache struct {
	mu    sync.RWMutex
	m     map[string]*identity
	max   int64
	bytes int64
	// tokenBase is signedTokenBytes: what each identity's token costs
	// beyond its user's strings, 0 when the proxy signs none.
	tokenBase int64
	// gen counts drops. A record read from the store while a drop
	// happened may predate the change that caused it (a SCIM
	// deactivation racing a login): putRead does not keep it.
	gen     uint64
	log     *zap.Logger
	evicted uint64    // since the last log line
	logged  time.Time // when evictions were last logged
}

// DefaultUserCacheBytes bounds the identity cache unless configured:
// some 2,000 users without groups, 1,000 in 20 groups (an identity is
// counted at 1.1 to 2.4 KiB without groups, 3 to 4 KiB in 20 groups, by
// the length of its names and attributes; a signed identity token adds
// 0.7 to 1.5 KiB; see identityBytes).
const DefaultUserCacheBytes = 4 << 20

// DefaultKnownUsersBytes bounds the last known good records
// (continue_on_store_error) unless configured: some 1,400 users without
// groups, 700 in 20 groups (a record is counted at 1 to 2.1 KiB without
// groups, 2.1 to 3.3 KiB in 20 groups; see knownBytes).
const DefaultKnownUsersBytes = 2 << 20

func newUserCache(maxBytes int64, log *zap.Logger) *userCache {
	return &userCache{m: make(map[string]*identity), max: maxBytes, log: log}
}

// stringBytes estimates the heap of a string: its bytes and the
// allocator's rounding (up to the next size class, at most an eighth
// more beyond the smallest).
func stringBytes(s string) int64 {
	if s == "" {
		return 0
	}
	return int64(len(s)+len(s)/8) + 16
}

// extraMapBytes estimates a small map of extra attributes beyond its
// slots: the map and its first group of slots, allocated whole.
const extraMapBytes = 256

// userBytes estimates the memory of u's strings, slices and map (not of
// the User struct itself, which its holder counts).
func userBytes(u provision.User) int64 {
	var n int64
	for _, s := range [...]string{u.ID, u.UserName, u.ExternalID, u.Email, u.DisplayName, u.GivenName, u.FamilyName, u.Owner} {
		n += stringBytes(s)
	}
	for _, g := range u.Groups {
		n += 16 + stringBytes(g)
	}
	for _, f := range u.SCIMFields {
		n += 16 + stringBytes(f)
	}
	if len(u.Extra) > 0 {
		n += extraMapBytes
		for k, v := range u.Extra {
			n += 64 + stringBytes(k) + stringBytes(v)
		}
	}
	return n
}

// identityOverhead estimates the bytes of an identity beyond its record's
// strings and its headers: the struct with the record, the map slot, the
// headers' spare capacity (a header left out for an empty value).
const identityOverhead = 640

// headerBytes estimates one identity header beyond its value: its slot in
// the headers and its one-value slice. Values are the record's strings,
// but for the joined groups.
const headerBytes = 72

// identityBytes estimates what a cached identity holds: its record, its
// headers and the joined groups, and, when tokenBase is set (the proxy
// signs identities), the token each identity keeps.
// TestUserCacheEstimateCoversTheHeap holds it to the heap.
func identityBytes(e *identity, tokenBase int64) int64 {
	n := userBytes(e.user) + identityOverhead + headerBytes*int64(len(e.headers))
	var groups int64
	for _, g := range e.user.Groups {
		groups += int64(len(g)) + 1
	}
	if groups > 0 {
		n += groups + groups/8 + 16
	}
	if tokenBase > 0 {
		n += tokenBase + tokenUserBytes(e.user)
	}
	return n
}

// A signed identity token is about 420 bytes, and four thirds (base64)
// of the issuer, the audience and the user's strings in its claims; its
// allocation rounds it up by as much as a sixth.
//
// signedTokenBytes estimates the part of a token, with the struct that
// keeps it, that does not depend on the user: the JOSE header, the
// signature, the claims' names and numbers, the issuer and audience. It
// is 0 when s is nil.
func signedTokenBytes(s *signer) int64 {
	if s == nil {
		return 0
	}
	return 48 + 6*(420+4*int64(len(s.issuer)+len(s.audience))/3)/5
}

// tokenUserBytes estimates the part of a token that u's strings make.
func tokenUserBytes(u provision.User) int64 {
	n := int64(len(u.ID) + len(u.UserName) + len(u.DisplayName) + len(u.Email))
	for _, g := range u.Groups {
		n += int64(len(g)) + 3 // quoted, and a comma
	}
	return 8 * n / 5
}

func (c *userCache) get(id string) *identity {
	c.mu.RLock()
	e := c.m[id]
	c.mu.RUnlock()
	return e
}

func (c *userCache) put(e *identity) {
	c.mu.Lock()
	c.putLocked(e)
	c.mu.Unlock()
}

func (c *userCache) putLocked(e *identity) {
	e.size = identityBytes(e, c.tokenBase)
	if old, ok := c.m[e.userID]; ok {
		c.bytes -= old.size
		delete(c.m, e.userID)
	}
	if e.size > c.max {
		return
	}
	for k, old := range c.m {
		if c.bytes+e.size <= c.max {
			break
		}
		delete(c.m, k)
		c.bytes -= old.size
		c.evicted++
	}
	c.m[e.userID] = e
	c.bytes += e.size
	if c.evicted > 0 && time.Since(c.logged) >= time.Minute {
		c.log.Info("identity cache full: users evicted to make room (user_cache_bytes)",
			zap.Uint64("evicted", c.evicted), zap.Int64("max_bytes", c.max), zap.Int("users", len(c.m)))
		c.evicted, c.logged = 0, time.Now()
	}
}

// usage returns the cached identities and the estimated bytes they hold.
func (c *userCache) usage() (entries int, bytes int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}

// generation is taken before a store read whose result putRead caches.
func (c *userCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// putRead caches e, read from the store from generation gen on, unless a
// user was dropped since: e may then predate the change that dropped it,
// and the next request reads the store again instead. It reports whether
// e was kept.
func (c *userCache) putRead(e *identity, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		if old, ok := c.m[e.userID]; ok {
			delete(c.m, e.userID)
			c.bytes -= old.size
		}
		return false
	}
	c.putLocked(e)
	return true
}

func (c *userCache) drop(id string) {
	c.mu.Lock()
	if old, ok := c.m[id]; ok {
		delete(c.m, id)
		c.bytes -= old.size
	}
	c.gen++
	c.mu.Unlock()
}

// knownUsers remembers, for each login key (IdP and subject), the last
// record the store returned for it as an active user. During a store
// outage an IdP with continue_on_store_error admits only those users, as
// that record says (never from the assertion): a user this instance has
// not seen, or has seen deactivated, changed or deleted since, is
// refused. It is bounded in bytes (an estimate, see knownBytes): when
// full, the oldest entries go, and a log line says so at most once a
// minute.
type knownUsers struct {
	mu      sync.Mutex
	byKey   map[provision.Key]*list.Element // of *knownUser
	byUser  map[string][]provision.Key
	order   *list.List // front: newest
	max     int64
	bytes   int64
	log     *zap.Logger
	evicted uint64    // since the last log line
	logged  time.Time // when evictions were last logged
}

type knownUser struct {
	key  provision.Key
	user provision.User
	size int64
}

// knownOverhead estimates the bytes of a known user beyond its strings:
// the list element, the struct with the record, both maps' slots and the
// user's list of keys.
const knownOverhead = 640

// knownBytes estimates what a record of u under key holds (the maps'
// copies of the key share its strings).
// TestKnownUsersEstimateCoversTheHeap holds it to the heap.
func knownBytes(key provision.Key, u provision.User) int64 {
	return userBytes(u) + stringBytes(key.IdP) + stringBytes(key.Kind) + stringBytes(key.Subject) + knownOverhead
}

func newKnownUsers(maxBytes int64, log *zap.Logger) *knownUsers {
	return &knownUsers{byKey: map[provision.Key]*list.Element{}, byUser: map[string][]provision.Key{}, order: list.New(), max: maxBytes, log: log}
}

// remember records u as key's user; an inactive u is forgotten instead.
func (k *knownUsers) remember(key provision.Key, u provision.User) {
	if !u.Active {
		k.forgetUser(u.ID)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.removeKey(key)
	size := knownBytes(key, u)
	if size > k.max {
		return
	}
	for k.order.Len() > 0 && k.bytes+size > k.max {
		k.removeKey(k.order.Back().Value.(*knownUser).key)
		k.evicted++
	}
	k.byKey[key] = k.order.PushFront(&knownUser{key: key, user: u, size: size})
	k.byUser[u.ID] = append(k.byUser[u.ID], key)
	k.bytes += size
	if k.evicted > 0 && time.Since(k.logged) >= time.Minute {
		k.log.Info("known users full: the oldest records evicted to make room (known_users_bytes)",
			zap.Uint64("evicted", k.evicted), zap.Int64("max_bytes", k.max), zap.Int("records", k.order.Len()))
		k.evicted, k.logged = 0, time.Now()
	}
}

// usage returns the records and the estimated bytes they hold.
func (k *knownUsers) usage() (entries int, bytes int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.order.Len(), k.bytes
}

// lookup returns key's last good record.
func (k *knownUsers) lookup(key provision.Key) (provision.User, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.byKey[key]
	if !ok {
		return provision.User{}, false
	}
	return e.Value.(*knownUser).user, true
}

// forgetUser drops every record of the user (changed, deactivated or
// deleted: the next good login records it again).
func (k *knownUsers) forgetUser(userID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range k.byUser[userID] {
		k.removeKey(key)
	}
	delete(k.byUser, userID)
}

// forgetKey drops key's record (the store refused its login).
func (k *knownUsers) forgetKey(key provision.Key) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.removeKey(key)
}

func (k *knownUsers) removeKey(key provision.Key) {
	e, ok := k.byKey[key]
	if !ok {
		return
	}
	k.order.Remove(e)
	delete(k.byKey, key)
	k.bytes -= e.Value.(*knownUser).size
	id := e.Value.(*knownUser).user.ID
	keys := slices.DeleteFunc(k.byUser[id], func(x provision.Key) bool { return x == key })
	if len(keys) == 0 {
		delete(k.byUser, id)
	} else {
		k.byUser[id] = keys
	}
}
