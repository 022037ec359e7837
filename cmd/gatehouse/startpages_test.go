package main

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestStartupPagesReleasedUnlessTurnedOff: once serving, gatehouse
// releases its start-up pages and says so (on Linux; elsewhere it says
// they are kept); release_startup_pages: false leaves them alone, with
// no line.
func TestStartupPagesReleasedUnlessTurnedOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		cfg := strings.Replace(goodConfig, "upstream: http://127.0.0.1:9000", "upstream: http://127.0.0.1:9000\nlisten: 127.0.0.1:0", 1)
		if off {
			cfg += "release_startup_pages: false\n"
		}
		var out lockedBuffer
		_, stop := startServing(t, cfg, nil, &out)
		want := "start-up pages handed back to the kernel"
		if runtime.GOOS != "linux" {
			want = "start-up pages kept"
		}
		deadline := time.Now().Add(10 * time.Second)
		for !off && !strings.Contains(string(out.Bytes()), want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		logged := strings.Contains(string(out.Bytes()), "start-up pages")
		switch {
		case off && logged:
			t.Errorf("release_startup_pages: false, yet:\n%s", string(out.Bytes()))
		case !off && !strings.Contains(string(out.Bytes()), want):
			t.Errorf("no %q line:\n%s", want, string(out.Bytes()))
		}
	}
}
