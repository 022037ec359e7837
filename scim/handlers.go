package scim

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"gatehouse/provision"
)

// maxAttempts bounds the read-modify-write attempts of a PATCH that keeps
// losing races with other writers (no If-Match given). Between attempts
// it sleeps a random 1-10 ms times the attempt number, so that writers
// that collided spread out instead of colliding again: 20 concurrent
// PATCHes of one resource all land (TestConcurrentPatchesAllApply).
const maxAttempts = 10

// handlers are one resource type's operations.
type handlers struct {
	name                         string // for the log: "users", "groups"
	list                         func(w *statusWriter, r *http.Request, p listParams) error
	create                       func(w *statusWriter, r *http.Request) error
	get, replace, patch, discard func(w *statusWriter, r *http.Request, id string) error
}

// route dispatches a request under a resource endpoint; id is the path
// segment after it ("" for the endpoint itself).
func (s *Server) route(w *statusWriter, r *http.Request, id string, h handlers) (string, error) {
	op := func(name string, err error) (string, error) { return h.name + "." + name, err }
	switch {
	case id == "" && r.Method == http.MethodGet:
		p, err := queryParams(r)
		if err != nil {
			return op("list", err)
		}
		return op("list", h.list(w, r, p))
	case id == ".search" && r.Method == http.MethodPost:
		body, err := s.readBody(w, r)
		if err != nil {
			return op("search", err)
		}
		p, err := searchParams(body, s.cfg.quirks())
		if err != nil {
			return op("search", err)
		}
		return op("search", h.list(w, r, p))
	case id == "" && r.Method == http.MethodPost:
		return op("create", h.create(w, r))
	case id == "" || id == ".search":
	case r.Method == http.MethodGet:
		return op("get", h.get(w, r, id))
	case r.Method == http.MethodPut:
		return op("replace", h.replace(w, r, id))
	case r.Method == http.MethodPatch:
		return op("patch", h.patch(w, r, id))
	case r.Method == http.MethodDelete:
		return op("delete", h.discard(w, r, id))
	}
	return h.name, &Error{Status: 405, Detail: r.Method + " is not allowed here"}
}

func (s *Server) serveUsers(w *statusWriter, r *http.Request, id string) (string, error) {
	return s.route(w, r, id, handlers{name: "users", list: s.listUsers, create: s.createUser, get: s.getUser,
		replace: s.replaceUser, patch: s.patchUser, discard: s.deleteUser})
}

func (s *Server) listUsers(w *statusWriter, r *http.Request, p listParams) error {
	q, err := s.query(s.users, p)
	if err != nil {
		return err
	}
	q.Walk = w.client // one client's page walk never moves another's
	page, err := s.store.FindUsers(r.Context(), q)
	if err != nil {
		return err
	}
	res := make([]any, 0, len(page.Items))
	for _, u := range page.Items {
		res = append(res, project(s.users, s.userDoc(u), p.attributes, p.exclude))
	}
	return s.writeJSON(w, 200, listResponse(res, page.Total, p.startIndex))
}

// writeUser answers with one user and its ETag.
func (s *Server) writeUser(w *statusWriter, r *http.Request, status int, u provision.User) error {
	p, _ := queryParams(r)
	w.Header().Set("ETag", etag(u.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", s.base+"/Users/"+u.ID)
	}
	return s.writeJSON(w, status, project(s.users, s.userDoc(u), p.attributes, p.exclude))
}

func (s *Server) dec() decoder { return decoder{quirks: s.cfg.quirks(), trim: s.cfg.TrimWhitespace} }

func (s *Server) getUser(w *statusWriter, r *http.Request, id string) error {
	u, err := s.store.User(r.Context(), id)
	if err != nil {
		return err
	}
	if notModified(r, u.Version) {
		w.Header().Set("ETag", etag(u.Version))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return s.writeUser(w, r, 200, u)
}

func (s *Server) createUser(w *statusWriter, r *http.Request) error {
	body, err := s.readResource(w, r, s.users)
	if err != nil {
		return err
	}
	u, err := s.dec().user(s.users, body, provision.User{Active: true})
	if err != nil {
		return err
	}
	u.SCIMFields = withSCIMFields(nil, s.createdFields(u))
	w.note.user("", nil, u)
	u, err = s.store.CreateUser(r.Context(), u)
	if err != nil {
		return err
	}
	w.note.user(u.ID, nil, u)
	s.changed(u.ID)
	return s.writeUser(w, r, http.StatusCreated, u)
}

func (s *Server) replaceUser(w *statusWriter, r *http.Request, id string) error {
	want, err := ifMatch(r)
	if err != nil {
		return err
	}
	body, err := s.readResource(w, r, s.users)
	if err != nil {
		return err
	}
	cur, err := s.store.User(r.Context(), id)
	if err != nil {
		return err
	}
	u, err := s.dec().user(s.users, body, cur)
	if err != nil {
		return err
	}
	u.ID = id
	u.SCIMFields = withSCIMFields(cur.SCIMFields, s.replacedFields(cur, u))
	w.note.user(id, &cur, u)
	u, err = s.store.ReplaceUser(r.Context(), u, want)
	if err != nil {
		return err
	}
	s.changed(id)
	return s.writeUser(w, r, 200, u)
}

func (s *Server) patchUser(w *statusWriter, r *http.Request, id string) error {
	want, err := ifMatch(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	pt := &patcher{rt: s.users, id: id, quirks: s.cfg.quirks()}
	ops, err := pt.parseOps(body)
	if err != nil {
		return err
	}
	var u provision.User
	err = s.writers.do(r.Context(), "Users/"+id, func() error {
		return readModifyWrite(r.Context(), want, func() error {
			cur, err := s.store.User(r.Context(), id)
			if err != nil {
				return err
			}
			if err := provision.CheckVersion(id, cur.Version, want); err != nil {
				return err
			}
			doc := s.userDoc(cur)
			named, err := pt.applyNamed(doc, ops, s.ownsExternalID())
			if err != nil {
				return err
			}
			if u, err = s.dec().user(s.users, doc, cur); err != nil {
				return err
			}
			u.SCIMFields = withSCIMFields(cur.SCIMFields, slices.Concat(named, s.changedFields(cur, u)))
			w.note.user(id, &cur, u)
			u, err = s.store.ReplaceUser(r.Context(), u, cur.Version)
			return err
		})
	})
	if err != nil {
		return err
	}
	s.changed(id)
	return s.writeUser(w, r, 200, u)
}

// readModifyWrite runs one read-modify-write step whose write is
// conditional on the version it read. When the write loses a race and the
// client named no version (If-Match), the step runs again on the newer
// record after a short random pause, so a concurrent change is neither
// lost nor refused. With If-Match, a lost race is the client's 412.
func readModifyWrite(ctx context.Context, want int64, step func() error) error {
	for attempt := 1; ; attempt++ {
		err := step()
		if !errors.Is(err, provision.ErrVersion) || want != 0 || attempt >= maxAttempts {
			return err
		}
		pause := time.Duration(attempt*(1+rand.IntN(10))) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

func (s *Server) deleteUser(w *statusWriter, r *http.Request, id string) error {
	want, err := ifMatch(r)
	if err != nil {
		return err
	}
	if cur, err := s.store.User(r.Context(), id); err == nil {
		w.note.user(id, nil, cur) // the audit event names whom it deleted
	}
	if err := s.store.DeleteUser(r.Context(), id, want); err != nil {
		return err
	}
	s.changed(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) serveGroups(w *statusWriter, r *http.Request, id string) (string, error) {
	return s.route(w, r, id, handlers{name: "groups", list: s.listGroups, create: s.createGroup, get: s.getGroup,
		replace: s.replaceGroup, patch: s.patchGroup, discard: s.deleteGroup})
}

func (s *Server) deleteGroup(w *statusWriter, r *http.Request, id string) error {
	want, err := ifMatch(r)
	if err != nil {
		return err
	}
	if cur, err := s.groupDir.Group(r.Context(), id, false); err == nil {
		w.note.groupWrite(id, cur.Name, provision.GroupChange{})
	}
	if err := s.groupDir.DeleteGroup(r.Context(), id, want); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listGroups(w *statusWriter, r *http.Request, p listParams) error {
	q, err := s.query(s.groups, p)
	if err != nil {
		return err
	}
	q.Members, q.Walk = wantsMembers(p), w.client
	page, err := s.groupDir.FindGroups(r.Context(), q)
	if err != nil {
		return err
	}
	res := make([]any, 0, len(page.Items))
	for _, g := range page.Items {
		res = append(res, project(s.groups, s.groupDoc(g), p.attributes, p.exclude))
	}
	return s.writeJSON(w, 200, listResponse(res, page.Total, p.startIndex))
}

func (s *Server) writeGroup(w *statusWriter, r *http.Request, status int, g provision.Group) error {
	p, _ := queryParams(r)
	w.Header().Set("ETag", etag(g.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", s.base+"/Groups/"+g.ID)
	}
	return s.writeJSON(w, status, project(s.groups, s.groupDoc(g), p.attributes, p.exclude))
}

func (s *Server) getGroup(w *statusWriter, r *http.Request, id string) error {
	p, err := queryParams(r)
	if err != nil {
		return err
	}
	g, err := s.groupDir.Group(r.Context(), id, wantsMembers(p))
	if err != nil {
		return err
	}
	if notModified(r, g.Version) {
		w.Header().Set("ETag", etag(g.Version))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return s.writeGroup(w, r, 200, g)
}

func (s *Server) createGroup(w *statusWriter, r *http.Request) error {
	body, err := s.readResource(w, r, s.groups)
	if err != nil {
		return err
	}
	g, err := s.dec().group(body)
	if err != nil {
		return err
	}
	w.note.groupWrite("", g.Name, provision.GroupChange{Add: make([]string, len(g.Members))})
	g, err = s.groupDir.CreateGroup(r.Context(), g)
	if err != nil {
		return err
	}
	w.note.groupWrite(g.ID, g.Name, provision.GroupChange{Add: make([]string, len(g.Members))})
	for _, m := range g.Members {
		s.changed(m.UserID)
	}
	return s.writeGroup(w, r, http.StatusCreated, g)
}

// groupChange is the change that turns cur into next: SCIM memberships
// added and removed, and the names.
func groupChange(cur, next provision.Group) provision.GroupChange {
	c := provision.GroupChange{Name: &next.Name, ExternalID: &next.ExternalID}
	have := map[string]bool{}
	for _, m := range cur.Members {
		have[m.UserID] = true
	}
	want := map[string]bool{}
	for _, m := range next.Members {
		want[m.UserID] = true
		if !have[m.UserID] {
			c.Add = append(c.Add, m.UserID)
		}
	}
	for _, m := range cur.Members {
		if !want[m.UserID] {
			c.Remove = append(c.Remove, m.UserID)
		}
	}
	return c
}

func (s *Server) replaceGroup(w *statusWriter, r *http.Request, id string) error {
	want, err := ifMatch(r)
	if err != nil {
		return err
	}
	body, err := s.readResource(w, r, s.groups)
	if err != nil {
		return err
	}
	next, err := s.dec().group(body)
	if err != nil {
		return err
	}
	cur, err := s.groupDir.Group(r.Context(), id, true)
	if err != nil {
		return err
	}
	c := groupChange(cur, next)
	// The answer is the group as stored: SCIM removes only its own
	// memberships, so it is not next. Read once more only when shown.
	p, _ := queryParams(r)
	c.Members = s.shownMembers(p)
	w.note.groupWrite(id, next.Name, c)
	g, err := s.groupDir.UpdateGroup(r.Context(), id, c, want)
	if err != nil {
		return err
	}
	s.membersChanged(c)
	return s.writeGroup(w, r, 200, g)
}

func (s *Server) membersChanged(c provision.GroupChange) {
	for _, id := range slices.Concat(c.Add, c.Remove) {
		s.changed(id)
	}
}

func (s *Server) patchGroup(w *statusWriter, r *http.Request, id string) error {
	want, err := ifMatch(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	pt := &patcher{rt: s.groups, id: id, quirks: s.cfg.quirks(), member: s.dec().member}
	ops, err := pt.parseOps(body)
	if err != nil {
		return err
	}
	p, _ := queryParams(r)
	// The answer shows members only when the attributes asked name them.
	respond := len(p.attributes) > 0
	withMembers := respond && s.shownMembers(p)
	// Member operations that name their members need no member list
	// (patch_members.go); any other PATCH is applied to the whole group.
	mp, fast := s.memberPatch(pt, ops)
	var g provision.Group
	var c provision.GroupChange
	write := func() error {
		return readModifyWrite(r.Context(), want, func() error {
			cur, err := s.groupDir.Group(r.Context(), id, !fast)
			if err != nil {
				return err
			}
			if err := provision.CheckVersion(id, cur.Version, want); err != nil {
				return err
			}
			doc := s.groupDoc(cur)
			if fast {
				err = pt.applyAll(doc, mp.other)
			} else {
				err = pt.applyAll(doc, ops)
			}
			if err != nil {
				return err
			}
			next, err := s.dec().group(doc)
			if err != nil {
				return err
			}
			// The general path's change is computed from the member list it
			// read, so the write is conditional on that version. The fast
			// path's is not: adds and removes of named members are set
			// operations, and a name is written only when the operations
			// change it, to the absolute value they give. Without If-Match it
			// needs no compare-and-swap, and concurrent member PATCHes of one
			// group all land at once instead of retrying; with If-Match the
			// store still refuses a stale version.
			ifVersion := cur.Version
			if fast {
				c = provision.GroupChange{}
				if next.Name != cur.Name {
					c.Name = &next.Name
				}
				if next.ExternalID != cur.ExternalID {
					c.ExternalID = &next.ExternalID
				}
				if c.Add, c.Remove, err = mp.change(r.Context(), s.groupDir, id); err != nil {
					return err
				}
				ifVersion = want
			} else {
				c = groupChange(cur, next)
			}
			c.Members = withMembers
			w.note.groupWrite(id, next.Name, c)
			g, err = s.groupDir.UpdateGroup(r.Context(), id, c, ifVersion)
			return err
		})
	}
	if fast {
		err = write()
	} else {
		// The fast path writes without compare-and-swap (above), so
		// only the general path takes turns.
		err = s.writers.do(r.Context(), "Groups/"+id, write)
	}
	if err != nil {
		return err
	}
	s.membersChanged(c)
	if respond {
		return s.writeGroup(w, r, 200, g)
	}
	// Entra ID prefers 204 for groups: a member list can be large.
	w.Header().Set("ETag", etag(g.Version))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
