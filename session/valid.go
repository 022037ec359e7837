package session

// Valid reports whether s, a session Load returned earlier, may still
// act: it is within its maximum age, from an IdP still configured, and
// not revoked (a logout here, a single logout, a logout on another
// replica that the revocations reach). The idle timeout is not applied:
// the caller (a tunnel that outlives its request) is active. It does no
// I/O.
func (m *Manager) Valid(s Session) bool {
	if m.now().Sub(s.Issued) >= m.cfg.Cookie.MaxAge {
		return false
	}
	if _, ok := m.byName[s.IdP]; !ok {
		return false
	}
	return !m.revoked(s)
}
