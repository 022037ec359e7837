package main

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/test/redistest"
)

// TestRedisCertStorage: certmagic's storage contract on a real Redis:
// values round-trip, directories list and stat, deletes are recursive and
// idempotent, two prefixes never see each other, and a lock is held by
// one holder at a time across clients (two replicas).
func TestRedisCertStorage(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	client := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		return c
	}
	s := newRedisCertStorage(client(), "a:")
	other := newRedisCertStorage(client(), "b:")

	before := time.Now()
	mustStore := func(k, v string) {
		t.Helper()
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	mustStore("certificates/acme/sso.example.test/sso.example.test.crt", "CERT")
	mustStore("certificates/acme/sso.example.test/sso.example.test.key", "KEY")
	mustStore("acme/account.json", "{}")

	if v, err := s.Load(ctx, "certificates/acme/sso.example.test/sso.example.test.crt"); err != nil || string(v) != "CERT" {
		t.Errorf("Load = %q, %v", v, err)
	}
	if _, err := other.Load(ctx, "acme/account.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("another prefix loads our key: %v", err)
	}
	if _, err := s.Load(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if !s.Exists(ctx, "certificates/acme") || !s.Exists(ctx, "acme/account.json") || s.Exists(ctx, "acme/other.json") {
		t.Error("Exists is wrong")
	}

	ki, err := s.Stat(ctx, "certificates/acme/sso.example.test/sso.example.test.key")
	if err != nil || !ki.IsTerminal || ki.Size != 3 || ki.Modified.Before(before.Add(-time.Second)) {
		t.Errorf("Stat of a value = %+v, %v", ki, err)
	}
	if ki, err := s.Stat(ctx, "certificates/acme"); err != nil || ki.IsTerminal {
		t.Errorf("Stat of a directory = %+v, %v", ki, err)
	}
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing key: %v", err)
	}

	top, err := s.List(ctx, "", false)
	if err != nil || !slices.Equal(top, []string{"acme", "certificates"}) {
		t.Errorf("List(\"\") = %q, %v", top, err)
	}
	all, err := s.List(ctx, "certificates", true)
	want := []string{"certificates/acme", "certificates/acme/sso.example.test",
		"certificates/acme/sso.example.test/sso.example.test.crt", "certificates/acme/sso.example.test/sso.example.test.key"}
	slices.Sort(all)
	if err != nil || !slices.Equal(all, want) {
		t.Errorf("List(certificates, recursive) = %q, %v", all, err)
	}
	if _, err := s.List(ctx, "nope", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing directory: %v", err)
	}

	if err := s.Delete(ctx, "certificates"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/acme/sso.example.test/sso.example.test.crt") || s.Exists(ctx, "certificates") {
		t.Error("Delete of a directory left keys under it")
	}
	if top, _ := s.List(ctx, "", false); !slices.Equal(top, []string{"acme"}) {
		t.Errorf("after Delete, List(\"\") = %q", top)
	}
	if err := s.Delete(ctx, "certificates"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
	if v, err := s.Load(ctx, "acme/account.json"); err != nil || string(v) != "{}" {
		t.Errorf("Delete removed a sibling: %q, %v", v, err)
	}

	// Two replicas (two clients) contend for one lock: never both inside.
	a, b := newRedisCertStorage(client(), "a:"), newRedisCertStorage(client(), "a:")
	var inside atomic.Int32
	var overlap atomic.Bool
	var wg sync.WaitGroup
	for i := range 6 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			if err := st.Lock(ctx, "issue_cert_sso.example.test"); err != nil {
				t.Error(err)
				return
			}
			if inside.Add(1) > 1 {
				overlap.Store(true)
			}
			time.Sleep(20 * time.Millisecond)
			inside.Add(-1)
			if err := st.Unlock(ctx, "issue_cert_sso.example.test"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if overlap.Load() {
		t.Error("two holders of one lock at once")
	}
	// A waiter gives up when its context ends; unlocking what one does not
	// hold is an error and leaves the holder's lock alone.
	if err := a.Lock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := b.Lock(short, "held"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock of a held lock: %v, want a deadline error", err)
	}
	if err := b.Unlock(ctx, "held"); err == nil {
		t.Error("Unlock of a lock held by another replica succeeded")
	}
	if err := a.Unlock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(ctx, "held"); err != nil {
		t.Fatalf("Lock after the holder unlocked: %v", err)
	}
	if err := b.Unlock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
}
