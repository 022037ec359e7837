package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
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
	raw, err := base64.RawURLEncoding.DecodeString(value)
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
