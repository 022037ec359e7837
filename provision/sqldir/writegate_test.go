package sqldir

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/test/pgtest"
)

// openGated opens a SQLite database in a temporary directory, migrated.
func openGated(t *testing.T) *db {
	t.Helper()
	d, err := connect(context.Background(), Config{Path: filepath.Join(t.TempDir(), "gatehouse.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.migrate(context.Background(), "managed", d.managedMigrations()); err != nil {
		t.Fatal(err)
	}
	return d
}

// holdWriter starts a write that keeps the writer until the returned
// function is called.
func holdWriter(t *testing.T, d *db) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := d.write(context.Background(), func(querier, time.Time) error {
			close(held)
			<-done
			return nil
		})
		if err != nil {
			t.Errorf("holding write: %v", err)
		}
	})
	<-held
	return func() { close(done); wg.Wait() }
}

func waitQueued(t *testing.T, d *db, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.WriteQueue().Waiting != n {
		if time.Now().After(deadline) {
			t.Fatalf("queued writes = %d, want %d", d.WriteQueue().Waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSQLiteWritesRunInArrivalOrder: write transactions that queue behind
// a running one run in the order they arrived. (database/sql's pool hands
// the writer connection to a random waiter, which let an early login
// starve past its deadline.)
func TestSQLiteWritesRunInArrivalOrder(t *testing.T) {
	d := openGated(t)
	release := holdWriter(t, d)
	const n = 12
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := d.write(context.Background(), func(q querier, _ time.Time) error {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				_, err := q.ExecContext(context.Background(), `SELECT 1`)
				return err
			})
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
		waitQueued(t, d, int64(i+1)) // write i is in the queue before write i+1 starts
	}
	release()
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("writes ran in the order %v, want arrival order", order)
		}
	}
	st := d.WriteQueue()
	if st.Waiting != 0 || st.Waits != n || st.WaitTime <= 0 || st.MaxWait <= 0 || st.MaxWait > st.WaitTime || st.TimedOut != 0 {
		t.Errorf("queue stats %+v, want %d waits with their time, none waiting or timed out", st, n)
	}
}

// TestSQLiteWriterQueueTimeoutSaysSo: a write whose deadline passes while
// it queues gives up with an error naming the writer queue (and wrapping
// the deadline), leaves the queue, and is counted.
func TestSQLiteWriterQueueTimeoutSaysSo(t *testing.T) {
	d := openGated(t)
	release := holdWriter(t, d)
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err := d.write(ctx, func(querier, time.Time) error { ran = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "writer queue") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued past its deadline: %v, want a writer-queue error wrapping the deadline", err)
	}
	if ran {
		t.Error("the timed-out write ran")
	}
	if st := d.WriteQueue(); st.TimedOut != 1 || st.Waiting != 0 {
		t.Errorf("queue stats %+v, want one timed out, none waiting", st)
	}
}

// TestSQLiteConcurrentFirstLoginsQueueInGatehouse: a hundred simultaneous
// first logins of different users all succeed, and their writes waited in
// gatehouse's queue (counted), not on SQLite's lock.
func TestSQLiteConcurrentFirstLoginsQueueInGatehouse(t *testing.T) {
	d := openGated(t)
	s := &Store{d}
	const n = 100
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			name := fmt.Sprintf("user%03d", i)
			l := provision.Login{Key: provision.Key{IdP: "idp", Kind: "nameid", Subject: name},
				Claims: provision.Claims{Fields: map[string]string{provision.FieldUserName: name}, Groups: []string{"staff"}, HasGroups: true}}
			if res, err := s.Provision(context.Background(), l); err != nil || res.Outcome != provision.Created {
				t.Errorf("login %s: %v %v", name, res.Outcome, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if st := d.WriteQueue(); st.Waits == 0 || st.TimedOut != 0 || st.Waiting != 0 {
		t.Errorf("queue stats %+v, want queued writes, none timed out or left waiting", st)
	}
}

// TestServerDatabaseHasNoWriterQueue: the queue is SQLite's only; a
// server database's pool runs write transactions side by side.
func TestServerDatabaseHasNoWriterQueue(t *testing.T) {
	d, err := connect(context.Background(), Config{Dialect: Postgres, DSN: pgtest.Shared(t).Database(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.gate != nil {
		t.Fatal("PostgreSQL writes go through the writer queue")
	}
	if err := d.write(context.Background(), func(q querier, _ time.Time) error {
		_, err := q.ExecContext(context.Background(), `SELECT 1`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if st := d.WriteQueue(); st != (WriteQueueStats{}) {
		t.Errorf("queue stats on PostgreSQL = %+v, want zero", st)
	}
}
