package session

import (
	"net"
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// subjectFields name a session's subject in an audit event.
func subjectFields(s Session) []zap.Field {
	f := []zap.Field{zap.String("idp", s.IdP), zap.String("name_id", s.NameID)}
	if s.UserID != "" {
		f = append(f, zap.String("user_id", s.UserID))
	}
	if s.SessionIndex != "" {
		f = append(f, zap.String("session_index", s.SessionIndex))
	}
	return f
}

// auditEvent writes one audit event (logout, single_logout, a refused
// login at the ACS): what
// happened, with the request's client address and ID.
func (m *Manager) auditEvent(w http.ResponseWriter, r *http.Request, level zapcore.Level, event, outcome string, fields ...zap.Field) {
	ce := m.audit.Check(level, event)
	if ce == nil {
		return
	}
	var client, reqID string
	if m.clientAddr != nil {
		client = m.clientAddr(r)
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		client = host
	} else {
		client = r.RemoteAddr
	}
	if m.requestID != nil {
		reqID = m.requestID(r)
	} else {
		reqID = w.Header().Get("X-Request-Id")
	}
	all := make([]zap.Field, 0, len(fields)+4)
	all = append(all, zap.String("event", event), zap.String("outcome", outcome))
	all = append(all, fields...)
	all = append(all, zap.String("client_ip", client))
	if reqID != "" {
		all = append(all, zap.String("request_id", reqID))
	}
	ce.Write(all...)
}
