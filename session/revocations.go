package session

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Revocations remember ended sessions: by IdP and SessionIndex, and by
// IdP and NameID for a logout that names no session. RevokedAt is on the
// request path of every proxied request, so it must not do I/O; Revoke
// may publish to other replicas.
type Revocations interface {
	Revoke(ctx context.Context, key string, at, until time.Time) error
	RevokedAt(key string) (time.Time, bool)
}

// MemoryRevocations is the in-memory Revocations of one instance. Entries
// are kept until the session they end would have expired anyway; with
// OpenRevocationFile they are also kept in a file, across restarts.
type MemoryRevocations struct {
	mu        sync.RWMutex
	now       func() time.Time
	m         map[string][2]time.Time // at, until
	nextSweep time.Time
	log       *revocationLog // nil: memory only
}

// NewMemoryRevocations returns an empty revocation list.
func NewMemoryRevocations(now func() time.Time) *MemoryRevocations {
	return &MemoryRevocations{now: now, m: map[string][2]time.Time{}}
}

// Revoke records key as revoked at at, until until (in the file too,
// synced, when there is one).
func (r *MemoryRevocations) Revoke(ctx context.Context, key string, at, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revoke(ctx, key, at, until)
}

// RevokedAt reports when key was revoked, if it is.
func (r *MemoryRevocations) RevokedAt(key string) (time.Time, bool) {
	r.mu.RLock()
	v, ok := r.m[key]
	r.mu.RUnlock()
	return v[0], ok && r.now().Before(v[1])
}

// RevocationFile is the name of the revocation log in the state
// directory.
const RevocationFile = "revocations.log"

// revocationLog keeps MemoryRevocations across restarts of a single
// instance: one line per revocation, appended and synced before Revoke
// returns ("<at ms> <until ms> <base64url key>"). At open, and whenever
// the file holds many more lines than live revocations, it is rewritten
// with the live ones only (write, sync, rename, sync the directory). A
// line that does not parse, such as a last line torn by a crash, is
// skipped.
type revocationLog struct {
	path     string
	f        *os.File
	appended int // lines written since the last compaction
}

// OpenRevocationFile returns revocations kept in memory and in the file
// at path, loading those still in force.
func OpenRevocationFile(path string, now func() time.Time) (*MemoryRevocations, error) {
	if now == nil {
		now = time.Now
	}
	r := NewMemoryRevocations(now)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	t := now()
	for len(data) > 0 {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		data = rest
		if !complete {
			break // torn by a crash mid-write
		}
		key, at, until, ok := parseRevocation(line)
		if ok && t.Before(until) {
			r.m[key] = [2]time.Time{at, until}
		}
	}
	r.log = &revocationLog{path: path}
	if err := r.compact(); err != nil {
		return nil, err
	}
	return r, nil
}

func formatRevocation(key string, at, until time.Time) []byte {
	return fmt.Appendf(nil, "%d %d %s\n", at.UnixMilli(), until.UnixMilli(), base64.RawURLEncoding.EncodeToString([]byte(key)))
}

func parseRevocation(line []byte) (key string, at, until time.Time, ok bool) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return "", at, until, false
	}
	a, err1 := strconv.ParseInt(string(f[0]), 10, 64)
	u, err2 := strconv.ParseInt(string(f[1]), 10, 64)
	k, err3 := base64.RawURLEncoding.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil || err3 != nil {
		return "", at, until, false
	}
	return string(k), time.UnixMilli(a), time.UnixMilli(u), true
}

// persist appends one revocation and syncs it (r.mu held).
func (r *MemoryRevocations) persist(key string, at, until time.Time) error {
	l := r.log
	if l.appended > 1024 && l.appended > 2*len(r.m) {
		return r.compact()
	}
	if _, err := l.f.Write(formatRevocation(key, at, until)); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	l.appended++
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	return nil
}

// compact rewrites the file with the live revocations only and reopens it
// for appending (r.mu held, or r not yet shared).
func (r *MemoryRevocations) compact() error {
	l := r.log
	tmp, err := os.CreateTemp(filepath.Dir(l.path), ".revocations-*")
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	w := bufio.NewWriter(tmp)
	now := r.now()
	for k, v := range r.m {
		if now.Before(v[1]) {
			w.Write(formatRevocation(k, v[0], v[1]))
		}
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("revocations: %w", err)
	}
	if d, err := os.Open(filepath.Dir(l.path)); err == nil {
		d.Sync()
		d.Close()
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.appended = f, 0
	return nil
}

// Close closes the revocation file, if any.
func (r *MemoryRevocations) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.log == nil || r.log.f == nil {
		return nil
	}
	err := r.log.f.Close()
	r.log.f = nil
	return err
}

var _ Revocations = (*MemoryRevocations)(nil)

// revoke is Revoke's body (r.mu held).
func (r *MemoryRevocations) revoke(_ context.Context, key string, at, until time.Time) error {
	now := r.now()
	if now.After(r.nextSweep) {
		for k, v := range r.m {
			if now.After(v[1]) {
				delete(r.m, k)
			}
		}
		r.nextSweep = now.Add(time.Minute)
	}
	// A key revoked again keeps its latest instant (and end): a logout
	// token delivered late or replayed, or a replica catching up oldest
	// last, must never bring back sessions a later revocation ended.
	if prev, ok := r.m[key]; ok && !now.After(prev[1]) {
		if prev[0].After(at) {
			at = prev[0]
		}
		if prev[1].After(until) {
			until = prev[1]
		}
	}
	r.m[key] = [2]time.Time{at, until}
	if r.log != nil && r.log.f != nil {
		return r.persist(key, at, until)
	}
	return nil
}

func sessionKey(idp, index string) string  { return "idx\x00" + idp + "\x00" + index }
func subjectKey(idp, nameID string) string { return "sub\x00" + idp + "\x00" + nameID }
func sessionIDKey(id string) string        { return "sid\x00" + id }

// revoked reports whether a logout ended the session: this session by
// its ID (a logout here), or every session of an IdP session or subject
// issued up to an IdP's single logout (an IdP session that outlives a
// local logout hands the next login the same SessionIndex, and that new
// session must live).
func (m *Manager) revoked(s Session) bool {
	if s.ID != "" {
		if _, ok := m.revocations.RevokedAt(s.idKey()); ok {
			return true
		}
	}
	if s.SessionIndex != "" {
		if at, ok := m.revocations.RevokedAt(s.indexKey()); ok && !s.Issued.After(at) {
			return true
		}
	}
	if s.NameID != "" {
		if at, ok := m.revocations.RevokedAt(s.subjectKey()); ok && !s.Issued.After(at) {
			return true
		}
	}
	return false
}

// revoke ends sessions everywhere this Manager's revocations reach: the
// one with s.ID, or else those of s's SessionIndex, or else of its NameID.
func (m *Manager) revoke(ctx context.Context, s Session) error {
	return m.revokeAt(ctx, s, m.now())
}

// revokeAt is revoke for the sessions issued up to at.
func (m *Manager) revokeAt(ctx context.Context, s Session, at time.Time) error {
	now := at
	until := m.now().Add(m.cfg.Cookie.MaxAge)
	if s.ID != "" {
		return m.revocations.Revoke(ctx, sessionIDKey(s.ID), now, until)
	}
	if s.SessionIndex != "" {
		return m.revocations.Revoke(ctx, sessionKey(s.IdP, s.SessionIndex), now, until)
	}
	if s.NameID != "" {
		return m.revocations.Revoke(ctx, subjectKey(s.IdP, s.NameID), now, until)
	}
	return nil
}
