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

const sealVersion = 1

// sealer encrypts and authenticates cookie values with AES-GCM. The first
// key seals; every key opens, so keys can be rotated by prepending a new
// one and dropping the oldest later.
type sealer struct {
	aeads []cipher.AEAD
}

func newSealer(keys [][]byte) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no cookie keys")
	}
	s := &sealer{}
	for i, k := range keys {
		if len(k) != KeyLen {
			return nil, fmt.Errorf("cookie key %d is %d bytes, want %d", i, len(k), KeyLen)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// seal returns base64url(version | nonce | ciphertext); name is bound as
// additional data so a value cannot be moved between cookies.
func (s *sealer) seal(name string, plain []byte) (string, error) {
	aead := s.aeads[0]
	buf := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	buf[0] = sealVersion
	if _, err := rand.Read(buf[1:]); err != nil {
		return "", err
	}
	buf = aead.Seal(buf, buf[1:1+aead.NonceSize()], plain, []byte(name))
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
		if plain, err := aead.Open(nil, raw[1:1+ns], raw[1+ns:], []byte(name)); err == nil {
			return plain, nil
		}
	}
	return nil, errBadCookie
}

// Session is what the session cookie carries: references, never
// attributes.
type Session struct {
	UserID       string
	IdP          string // configured IdP name
	NameID       string // for single logout; empty when too long to carry
	SessionIndex string // for single logout; empty when too long to carry
	Issued       time.Time
	LastSeen     time.Time
}

const (
	maxNameIDInCookie       = 400
	maxSessionIndexInCookie = 128
	maxRefLen               = 255
)

const sessionFormat = 1

// encode writes a compact binary form: format, issued, last seen (unix
// seconds), then length-prefixed strings.
func (s Session) encode() []byte {
	b := make([]byte, 0, 64+len(s.UserID)+len(s.IdP)+len(s.NameID)+len(s.SessionIndex))
	b = append(b, sessionFormat)
	b = binary.AppendVarint(b, s.Issued.Unix())
	b = binary.AppendVarint(b, s.LastSeen.Unix())
	nameID, index := s.NameID, s.SessionIndex
	if len(nameID) > maxNameIDInCookie {
		nameID = ""
	}
	if len(index) > maxSessionIndexInCookie {
		index = ""
	}
	for _, str := range []string{s.UserID, s.IdP, nameID, index} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	return b
}

func decodeSession(b []byte) (Session, error) {
	var s Session
	if len(b) < 1 || b[0] != sessionFormat {
		return s, errBadCookie
	}
	b = b[1:]
	var ts [2]int64
	for i := range ts {
		v, n := binary.Varint(b)
		if n <= 0 {
			return s, errBadCookie
		}
		ts[i], b = v, b[n:]
	}
	s.Issued, s.LastSeen = time.Unix(ts[0], 0), time.Unix(ts[1], 0)
	for _, p := range []*string{&s.UserID, &s.IdP, &s.NameID, &s.SessionIndex} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return s, errBadCookie
		}
		*p, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	if len(b) != 0 || s.UserID == "" {
		return s, errBadCookie
	}
	return s, nil
}
