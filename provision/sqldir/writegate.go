package sqldir

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// writeGate is gatehouse's own queue in front of SQLite's one writer. A
// write transaction takes the gate before BEGIN and gives it back after
// COMMIT or ROLLBACK, so concurrent writers wait here, first come first
// served, each for as long as its own context allows. Without it they
// waited in database/sql's pool for the one writer connection, which a
// finished transaction hands to a random waiter: under load an unlucky
// login waited past its deadline while later ones went first. SQLite's
// busy timeout is left to other processes sharing the file.
type writeGate struct {
	slot chan struct{} // holds one token while a writer runs

	waiting  atomic.Int64  // writers queued now
	waits    atomic.Uint64 // writes that found the writer busy
	waited   atomic.Int64  // their total time queued, in nanoseconds
	maxWait  atomic.Int64  // the longest time one write queued, in nanoseconds
	timedOut atomic.Uint64 // writers whose context ended while queued
}

func newWriteGate() *writeGate { return &writeGate{slot: make(chan struct{}, 1)} }

// acquire takes the writer, waiting behind the writers queued before it
// (Go serves a channel's blocked senders in order). A writer whose
// context ends in the queue gets an error that says so.
func (g *writeGate) acquire(ctx context.Context) error {
	select {
	case g.slot <- struct{}{}:
		return nil
	default:
	}
	ahead := g.waiting.Add(1) - 1
	defer g.waiting.Add(-1)
	start := time.Now()
	select {
	case g.slot <- struct{}{}:
		d := int64(time.Since(start))
		g.waits.Add(1)
		g.waited.Add(d)
		for {
			m := g.maxWait.Load()
			if d <= m || g.maxWait.CompareAndSwap(m, d) {
				break
			}
		}
		return nil
	case <-ctx.Done():
		g.timedOut.Add(1)
		return fmt.Errorf("sqldir: gave up in the writer queue after %s, behind the running write and %d queued: %w",
			time.Since(start).Round(time.Millisecond), ahead, context.Cause(ctx))
	}
}

// release gives the writer to the next queued write.
func (g *writeGate) release() { <-g.slot }

// WriteQueueStats describe the queue of SQLite write transactions (see
// Store.WriteQueue).
type WriteQueueStats struct {
	Waiting  int64         // writes queued now
	Waits    uint64        // writes that found the writer busy and queued
	WaitTime time.Duration // the total time those writes queued
	MaxWait  time.Duration // the longest time one write queued
	TimedOut uint64        // writes whose context ended while queued
}

// WriteQueue reports the queue of write transactions on SQLite, where
// gatehouse runs one at a time; on a server database, whose pool runs
// them side by side, it is zero.
func (d *db) WriteQueue() WriteQueueStats {
	g := d.gate
	if g == nil {
		return WriteQueueStats{}
	}
	return WriteQueueStats{Waiting: g.waiting.Load(), Waits: g.waits.Load(), WaitTime: time.Duration(g.waited.Load()),
		MaxWait: time.Duration(g.maxWait.Load()), TimedOut: g.timedOut.Load()}
}
