package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// KeyLen is the length of a cookie key (AES-256).
const KeyLen = 32

// MaxCookieLen bounds the sealed session cookie value, whatever the user's
// attributes and groups: the cookie carries only references.
const MaxCookieLen = 1024

// sealVersion 2 binds the SP's entity ID into every value; values of
// version 1 did not, and are refused (their users sign in again).
const sealVersion = 2

// sealer encrypts and authenticates cookie values with AES-GCM. The first
// key seals; every key opens, so keys can be rotated by prepending a new
// one and dropping the oldest later. Every value is bound to the SP's
// entity ID (audience), so that a cookie sealed by another deployment
// that shares the cookie key does not open here.
type sealer struct {
	aeads    []cipher.AEAD
	audience string
}

func newSealer(keys [][]byte, audience string) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no cookie keys")
	}
	s := &sealer{audience: audience}
	for i, k := range keys {
		if len(k) != KeyLen {
			return nil, fmt.Errorf("cookie key %d is %d bytes, want %d", i, len(k), KeyLen)
		}
		aead, err := newGCM(k)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// additionalData binds a value to this SP and to the cookie's name, so a
// value can be moved neither between deployments nor between cookies.
func (s *sealer) additionalData(name string) []byte {
	return []byte(s.audience + "\x00" + name)
}

// seal returns base64url(version | nonce | ciphertext).
func (s *sealer) seal(name string, plain []byte) (string, error) {
	aead := s.aeads[0]
	buf := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	buf[0] = sealVersion
	if _, err := rand.Read(buf[1:]); err != nil {
		return "", err
	}
	buf = aead.Seal(buf, buf[1:1+aead.NonceSize()], plain, s.additionalData(name))
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

var errBadCookie = errors.New("cookie does not open")

func (s *sealer) open(name, value string) ([]byte, error) {
	if len(value) > MaxCookieLen*2 {
		return nil, errBadCookie
	}
	// Strict: one spelling per sealed value (no stray bits in the last
	// character), as seal writes it.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(raw) < 1 || raw[0] != sealVersion {
		return nil, errBadCookie
	}
	for _, aead := range s.aeads {
		ns := aead.NonceSize()
		if len(raw) < 1+ns+aead.Overhead() {
			return nil, errBadCookie
		}
		if plain, err := aead.Open(nil, raw[1:1+ns], raw[1+ns:], s.additionalData(name)); err == nil {
			return plain, nil
		}
	}
	return nil, errBadCookie
}

// Session is what the session cookie carries: references, never
// attributes.
type Session struct {
	// ID is random per login: a logout revokes exactly this session.
	ID           string
	UserID       string
	IdP          string // configured IdP name
	NameID       string // for single logout; empty when too long to carry
	NameIDFormat string // for single logout
	SessionIndex string // for single logout; empty when too long to carry
	// AuthnContext is the AuthnContextClassRef the login was accepted
	// with; empty when too long to carry.
	AuthnContext string
	Issued       time.Time
	LastSeen     time.Time

	// opened is the cache entry of the cookie this session was read from
	// (see Load), which Touch uses to re-send a cookie it refreshed
	// already; nil for a session made otherwise.
	opened *openedSession
}

const (
	maxNameIDInCookie       = 400
	maxSessionIndexInCookie = 128
)

// Session cookie formats: 2 added AuthnContext, NameIDFormat and ID; 1 is
// still read.
const (
	sessionFormat   = 2
	sessionFormatV1 = 1
)

// encode writes the session in the packed form (see pack). An oversized
// NameID, session index or class reference is left out rather than
// growing the cookie.
func (s Session) encode() []byte {
	nameID, format, index, ctx := s.NameID, s.NameIDFormat, s.SessionIndex, s.AuthnContext
	if len(nameID) > maxNameIDInCookie || len(format) > maxSessionIndexInCookie {
		nameID, format = "", ""
	}
	if len(index) > maxSessionIndexInCookie {
		index = ""
	}
	if len(ctx) > maxSessionIndexInCookie {
		ctx = ""
	}
	return pack(sessionFormat, []time.Time{s.Issued, s.LastSeen}, s.UserID, s.IdP, nameID, index, ctx, format, s.ID)
}

func decodeSession(b []byte) (Session, error) {
	var s Session
	times := []*time.Time{&s.Issued, &s.LastSeen}
	err := unpack(b, sessionFormat, times, &s.UserID, &s.IdP, &s.NameID, &s.SessionIndex, &s.AuthnContext, &s.NameIDFormat, &s.ID)
	if err != nil && len(b) > 0 && b[0] == sessionFormatV1 {
		err = unpack(b, sessionFormatV1, times, &s.UserID, &s.IdP, &s.NameID, &s.SessionIndex)
	}
	if err != nil || s.UserID == "" {
		return Session{}, errBadCookie
	}
	return s, nil
}

// pack is the compact binary form of gatehouse's sealed cookies: a format
// byte, times as varint unix seconds, then length-prefixed strings.
func pack(format byte, times []time.Time, strs ...string) []byte {
	n := 1 + 10*len(times)
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := append(make([]byte, 0, n), format)
	for _, t := range times {
		b = binary.AppendVarint(b, t.Unix())
	}
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// unpack reads what pack wrote, into the given fields, and fails on a
// wrong format, a short input or trailing bytes.
func unpack(b []byte, format byte, times []*time.Time, strs ...*string) error {
	if len(b) < 1 || b[0] != format {
		return errBadCookie
	}
	b = b[1:]
	for _, t := range times {
		v, n := binary.Varint(b)
		if n <= 0 {
			return errBadCookie
		}
		*t, b = time.Unix(v, 0), b[n:]
	}
	for _, p := range strs {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return errBadCookie
		}
		*p, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) != 0 {
		return errBadCookie
	}
	return nil
}

// newGCM is AES-GCM with key k (16, 24 or 32 bytes).
func newGCM(k []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// maxCookies is net/http's default bound on the cookies of a request:
// beyond it, (*http.Request).Cookie finds none.
const maxCookies = 3000

// cookieValue returns the value of the first cookie named name in h, as
// (*http.Request).Cookie reads it (under net/http's default cookie
// limit), without allocating. name must be a valid cookie name.
func cookieValue(h http.Header, name string) (string, bool) {
	lines := h["Cookie"]
	if len(lines) == 0 || name == "" {
		return "", false
	}
	// Each cookie takes a byte at least: short lines need no count.
	n, size := 0, 0
	for _, line := range lines {
		size += len(line) + 1
	}
	if size > maxCookies {
		for _, line := range lines {
			n += strings.Count(line, ";") + 1
		}
	}
	if n > maxCookies {
		return "", false
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// validCookieValue reports whether every byte of v may stand in a cookie
// value (RFC 6265's cookie-octet, with space and comma, as net/http).
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// The cache of opened session cookies. Opening a cookie (base64, AES-GCM,
// decoding) costs a few microseconds, and a browser sends the same value
// with every request until the cookie is refreshed. The cache maps the
// exact value to the session it opened to: only values that opened are
// stored, and a value that differs by a byte is another key, opened and
// authenticated on its own. What depends on the moment (the absolute and
// idle timeouts, the IdP, revocation) is checked on every request, cached
// or not. The cache is bounded in bytes (an estimate of what an entry
// holds); when full, entries chosen at random make room.

// openedSession is one cached cookie value's session.
type openedSession struct {
	s    Session // with opened nil
	size int64
	// keys are the session's revocation keys (by ID, IdP session and
	// subject), made once: see Session.idKey.
	keys [3]string
	// refreshed is the last cookie Touch sealed for this session, which
	// it sends again while that cookie is fresh (a client that does not
	// store cookies would otherwise cost a seal on every request).
	refreshed atomic.Pointer[refreshedCookie]
}

// refreshedCookie is a session cookie sealed with LastSeen lastSeen, and
// its Set-Cookie header value for a Max-Age of maxAge seconds.
type refreshedCookie struct {
	lastSeen time.Time
	value    string
	maxAge   int
	line     []string // shared by every response: its capacity is its length
}

// openedOverhead estimates the bytes of an entry beyond the copies of its
// cookie value and the session's strings: the map slot, the entry, the
// strings' headers, and a refreshed cookie's record, value and header
// line.
const openedOverhead = 1024

// DefaultSessionCacheBytes bounds the cache of opened session cookies
// unless configured: some 1,600 sessions of typical size (an entry costs
// about 2.5 KiB: three times the cookie value, the session's strings
// and 1 KiB; TestSessionCacheEstimateCoversTheHeap holds the estimate
// above what the heap holds).
const DefaultSessionCacheBytes = 4 << 20

// estimate is what the entry of value holds, refreshed cookie included:
// the key, the refreshed value and its Set-Cookie line are each about
// the cookie value's length.
func (e *openedSession) estimate(value string) int64 {
	s := e.s
	n := 3*len(value) + len(s.ID) + len(s.UserID) + len(s.IdP) + len(s.NameID) + len(s.NameIDFormat) + len(s.SessionIndex) + len(s.AuthnContext) +
		len(s.ID) + 2*len(s.IdP) + len(s.SessionIndex) + len(s.NameID) // the revocation keys
	return int64(n + openedOverhead)
}

type sessionCache struct {
	max int64
	log *zap.Logger

	mu      sync.RWMutex
	m       map[string]*openedSession
	bytes   int64
	evicted uint64    // since the last log line
	logged  time.Time // when evictions were last logged
}

// CacheSessions keeps up to maxBytes of opened session cookies (see
// openedSession); zero turns the cache off. It is meant to be called
// once, before the Manager serves.
func (m *Manager) CacheSessions(maxBytes int64) {
	if maxBytes <= 0 {
		m.opened = nil
		return
	}
	m.opened = &sessionCache{max: maxBytes, log: m.log, m: map[string]*openedSession{}}
}

// get returns value's entry, if cached (nil-safe).
func (c *sessionCache) get(value string) *openedSession {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.m[value]
	c.mu.RUnlock()
	return e
}

// put caches s as what value opened to, making room at random if need
// be, and returns its entry (also without a cache, uncached).
func (c *sessionCache) put(value string, s Session) *openedSession {
	e := &openedSession{s: s, keys: [3]string{sessionIDKey(s.ID), sessionKey(s.IdP, s.SessionIndex), subjectKey(s.IdP, s.NameID)}}
	if c == nil {
		return e
	}
	e.size = e.estimate(value)
	if e.size > c.max {
		return e
	}
	value = strings.Clone(value) // not the request's Cookie line
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[value]; ok {
		return old
	}
	for k, old := range c.m {
		if c.bytes+e.size <= c.max {
			break
		}
		delete(c.m, k)
		c.bytes -= old.size
		c.evicted++
	}
	c.m[value] = e
	c.bytes += e.size
	if c.evicted > 0 && time.Since(c.logged) >= time.Minute {
		c.log.Info("session cache full: sessions evicted to make room (session_cache_bytes)",
			zap.Uint64("evicted", c.evicted), zap.Int64("max_bytes", c.max), zap.Int("sessions", len(c.m)))
		c.evicted, c.logged = 0, time.Now()
	}
	return e
}

// drop removes value's entry if it is still e (nil-safe).
func (c *sessionCache) drop(value string, e *openedSession) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.m[value] == e {
		delete(c.m, value)
		c.bytes -= e.size
	}
	c.mu.Unlock()
}

// usage returns the entries and the estimated bytes they hold.
func (c *sessionCache) usage() (entries int, bytes int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}

// holds reports whether s is this entry's session (as Load returned it,
// whatever its caller did with it since).
func (e *openedSession) holds(s Session) bool {
	c := e.s
	return s.ID == c.ID && s.UserID == c.UserID && s.IdP == c.IdP && s.NameID == c.NameID && s.NameIDFormat == c.NameIDFormat &&
		s.SessionIndex == c.SessionIndex && s.AuthnContext == c.AuthnContext && s.Issued.Equal(c.Issued) && s.LastSeen.Equal(c.LastSeen)
}

// idKey, indexKey and subjectKey are the session's revocation keys (see
// revoked): from its cache entry when it has one and the field they are
// made of is the entry's, else made now.
func (s Session) idKey() string {
	if e := s.opened; e != nil && e.s.ID == s.ID {
		return e.keys[0]
	}
	return sessionIDKey(s.ID)
}

func (s Session) indexKey() string {
	if e := s.opened; e != nil && e.s.IdP == s.IdP && e.s.SessionIndex == s.SessionIndex {
		return e.keys[1]
	}
	return sessionKey(s.IdP, s.SessionIndex)
}

func (s Session) subjectKey() string {
	if e := s.opened; e != nil && e.s.IdP == s.IdP && e.s.NameID == s.NameID {
		return e.keys[2]
	}
	return subjectKey(s.IdP, s.NameID)
}
