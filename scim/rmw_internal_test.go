package scim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/provision"
)

// TestReadModifyWriteRetries (F4, issue 18): without If-Match a write that
// keeps losing races is tried again, up to maxAttempts times with a pause
// between; with If-Match a lost race is at once the client's error; a
// request that ends stops the retries.
func TestReadModifyWriteRetries(t *testing.T) {
	lose := func(n int, calls *int) func() error {
		return func() error {
			*calls++
			if *calls <= n {
				return fmt.Errorf("lost: %w", provision.ErrVersion)
			}
			return nil
		}
	}
	ctx := context.Background()
	calls := 0
	if err := readModifyWrite(ctx, 0, lose(maxAttempts-1, &calls)); err != nil || calls != maxAttempts {
		t.Errorf("losing %d races: err %v after %d calls, want success after %d", maxAttempts-1, err, calls, maxAttempts)
	}
	calls = 0
	if err := readModifyWrite(ctx, 0, lose(maxAttempts, &calls)); !errors.Is(err, provision.ErrVersion) || calls != maxAttempts {
		t.Errorf("losing every race: err %v after %d calls, want ErrVersion after %d", err, calls, maxAttempts)
	}
	calls = 0
	if err := readModifyWrite(ctx, 3, lose(1, &calls)); !errors.Is(err, provision.ErrVersion) || calls != 1 {
		t.Errorf("with If-Match: err %v after %d calls, want ErrVersion after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	calls = 0
	if err := readModifyWrite(cctx, 0, lose(maxAttempts, &calls)); !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("ended request: err %v after %d calls, want context.Canceled after 1", err, calls)
	}
}

// TestKeyedLockTakesTurns: holders of one key take turns, other keys do
// not wait, a waiter gives up when its context ends, and no entry is left
// behind.
func TestKeyedLockTakesTurns(t *testing.T) {
	var k keyedLock
	ctx := context.Background()
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := k.lock(ctx, "a")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Errorf("%d holders of one key at once, want 1", most)
	}
	unlock, _ := k.lock(ctx, "a")
	other, err := k.lock(ctx, "b")
	if err != nil {
		t.Fatalf("another key waited: %v", err)
	}
	other()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := k.lock(tctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting on a held key past the deadline: %v", err)
	}
	unlock()
	if len(k.held) != 0 {
		t.Errorf("%d entries left behind", len(k.held))
	}
}
