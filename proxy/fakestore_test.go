package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"gatehouse/provision"
)

// fakeStore is an in-memory provision.Store for the request path's unit
// tests: users by ID, an error every read can be made to fail with, and a
// count of reads (the steady-state request must not make any).
type fakeStore struct {
	mu    sync.Mutex
	users map[string]provision.User
	err   error // when set, User fails with it
	reads int
	// noDeadline counts reads whose context had no deadline.
	noDeadline int
	// duringRead, when set, runs inside each User call before it
	// answers (a write racing the read).
	duringRead func(id string)
}

func newFakeStore(users ...provision.User) *fakeStore {
	s := &fakeStore{users: map[string]provision.User{}}
	for _, u := range users {
		s.put(u)
	}
	return s
}

// put stores (or replaces) a user record.
func (s *fakeStore) put(u provision.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.Groups = slices.Clone(u.Groups)
	s.users[u.ID] = u
}

// remove deletes a user, as a SCIM DELETE does.
func (s *fakeStore) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
}

// fail makes every read fail with err (nil: reads work again).
func (s *fakeStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// readCount is how many times User was called.
func (s *fakeStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func (s *fakeStore) User(ctx context.Context, id string) (provision.User, error) {
	if s.duringRead != nil {
		s.duringRead(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if _, ok := ctx.Deadline(); !ok {
		s.noDeadline++
	}
	if s.err != nil {
		return provision.User{}, s.err
	}
	u, ok := s.users[id]
	if !ok {
		return provision.User{}, fmt.Errorf("fakestore: user %s: %w", id, provision.ErrNotFound)
	}
	u.Groups = slices.Clone(u.Groups)
	return u, nil
}

func (s *fakeStore) SetActive(_ context.Context, id string, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return fmt.Errorf("fakestore: user %s: %w", id, provision.ErrNotFound)
	}
	u.Active = active
	s.users[id] = u
	return nil
}

// Provision is not used by the request path; logins have tests of their
// own.
func (s *fakeStore) Provision(context.Context, provision.Login) (provision.Result, error) {
	return provision.Result{}, errors.New("fakestore: Provision is not implemented")
}

func (s *fakeStore) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *fakeStore) Close() error { return nil }

var _ provision.Store = (*fakeStore)(nil)
