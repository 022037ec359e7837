package samba

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLockTakesTurns: a second taker of the lock waits for the first and
// says which lock it gave up on; once the first releases it, it is free.
func TestLockTakesTurns(t *testing.T) {
	name := filepath.Join(t.TempDir(), LockName)
	first, err := lockFile(name, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = lockFile(name, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("a second lock while the first is held: %v", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("gave up after %v, before its deadline", waited)
	}
	first.Close()
	second, err := lockFile(name, time.Second)
	if err != nil {
		t.Fatalf("the lock after its holder released it: %v", err)
	}
	second.Close()
}
