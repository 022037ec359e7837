package scim

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"gatehouse/provision"
)

// Every SCIM write (create, replace, patch, delete of a user or a group)
// writes one audit event, "scim write", whether it succeeded or not:
//
//	action     users.create, users.replace, users.patch, users.delete,
//	           users.deactivate, users.reactivate (a replace or patch that
//	           turned active off or on), groups.create, groups.replace,
//	           groups.patch, groups.delete
//	id         the resource's ID (empty for a create that failed)
//	user_name  the user's userName (groups: display_name)
//	client     which token authenticated: tokens[i] or token_sha256[i]
//	request_id the request's ID (Options.RequestID)
//	status     the HTTP status answered; result: ok, refused (4xx) or failed (5xx)
//
// Group writes also say how many members were added and removed.

// auditNote is what a write handler learned about the resource it wrote.
type auditNote struct {
	id, name       string
	deactivated    bool
	reactivated    bool
	added, removed int
	group          bool
}

func (n *auditNote) user(id string, before *provision.User, after provision.User) {
	n.id, n.name = id, after.UserName
	if before != nil {
		n.deactivated = before.Active && !after.Active
		n.reactivated = !before.Active && after.Active
	}
}

func (n *auditNote) groupWrite(id, name string, c provision.GroupChange) {
	n.group, n.id, n.name, n.added, n.removed = true, id, name, len(c.Add), len(c.Remove)
}

// isWrite reports whether op (users.create...) changes the store.
func isWrite(op string) bool {
	switch op {
	case "users.create", "users.replace", "users.patch", "users.delete",
		"groups.create", "groups.replace", "groups.patch", "groups.delete":
		return true
	}
	return false
}

// auditWrite writes the audit event of one SCIM write.
func (s *Server) auditWrite(r *http.Request, w *statusWriter, op, client, pathID string, err error) {
	n := w.note
	action := op
	switch {
	case n.deactivated:
		action = "users.deactivate"
	case n.reactivated:
		action = "users.reactivate"
	}
	id := n.id
	if id == "" {
		id = pathID
	}
	result := "ok"
	switch {
	case w.status >= 500:
		result = "failed"
	case w.status >= 400:
		result = "refused"
	}
	fields := []zap.Field{zap.String("action", action), zap.String("method", r.Method), zap.String("id", id),
		zap.String("client", client), zap.String("request_id", s.requestID(r.Context())),
		zap.Int("status", w.status), zap.String("result", result)}
	if n.group {
		fields = append(fields, zap.String("display_name", n.name), zap.Int("members_added", n.added), zap.Int("members_removed", n.removed))
	} else if n.name != "" {
		fields = append(fields, zap.String("user_name", n.name))
	}
	if err != nil && result != "ok" {
		fields = append(fields, zap.Error(err))
	}
	s.audit.Info("scim write", fields...)
}

func (s *Server) requestID(ctx context.Context) string {
	if s.reqID == nil {
		return ""
	}
	return s.reqID(ctx)
}

// clientName names the configured token at index i of the digests
// (clear-text tokens first, then token_sha256).
func (s *Server) clientName(i int) string {
	if i < len(s.cfg.Tokens) {
		return "tokens[" + strconv.Itoa(i) + "]"
	}
	return "token_sha256[" + strconv.Itoa(i-len(s.cfg.Tokens)) + "]"
}

// pathID is the resource ID a request's path names, if any.
func pathID(p, mount string) string {
	rel, _ := strings.CutPrefix(p, mount)
	seg := strings.Split(strings.Trim(rel, "/"), "/")
	if len(seg) == 2 {
		return seg[1]
	}
	return ""
}
