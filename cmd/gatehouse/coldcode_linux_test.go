package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile is the process's file-backed resident memory, in KiB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseColdCode: the executable's code and read-only data leave the
// resident set, and the program runs on (its pages come back as used).
func TestReleaseColdCode(t *testing.T) {
	before := rssFile(t)
	if n := releaseColdCode(); n <= 0 {
		t.Fatalf("released %d bytes of mappings", n)
	}
	after := rssFile(t)
	t.Logf("file-backed resident: %d KiB -> %d KiB", before, after)
	if after >= before {
		t.Errorf("file-backed resident memory did not fall: %d KiB -> %d KiB", before, after)
	}
	// Code and data run again from the file: a config decodes and is
	// checked as before.
	f, err := decodeConfig(strings.NewReader("version: 1\nlisten: 127.0.0.1:0\nflurb: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "flurb") || f != nil {
		t.Errorf("decode after release: %v %v, want the unknown key named", f, err)
	}
}
