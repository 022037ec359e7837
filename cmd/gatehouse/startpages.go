package main

import (
	"errors"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// releaseStartupMemory gives back what starting up used and serving does
// not need: the pages of the binary that ran only then (see
// releaseStartupPages), and the heap the collector has freed since.
// release_startup_pages: false keeps them.
func releaseStartupMemory(f *File, logger *zap.Logger) {
	if f.ReleaseStartupPages != nil && !*f.ReleaseStartupPages {
		return
	}
	before := residentBytes()
	advised, dropped, err := releaseStartupPages()
	after := residentBytes()
	debug.FreeOSMemory()
	var resident []zap.Field
	if before > 0 && after > 0 { // both known
		resident = []zap.Field{zap.Int64("resident_bytes_before", before), zap.Int64("resident_bytes_after", after)}
	}
	switch {
	case errors.Is(err, errUnsupported):
		logger.Info("start-up pages kept: "+err.Error(), resident...)
	case err != nil:
		logger.Warn("start-up pages kept", append(resident, zap.Error(err))...)
	default:
		// The resident figures are the process's before and after the
		// page-out; what the kernel reclaimed is their difference.
		logger.Info("start-up pages handed back to the kernel", append(resident,
			zap.Int64("advised_bytes", advised), zap.Bool("page_cache_dropped", dropped))...)
	}
}

// releaseStartupPages hands the pages of the binary that only starting up
// ran back to the kernel (releaseExecutablePages, on Linux); elsewhere it
// does nothing. It returns the bytes advised and whether the page cache
// was told too.
var releaseStartupPages = func() (int64, bool, error) { return 0, false, errUnsupported }

// errUnsupported: the system refuses to reclaim pages on request.
var errUnsupported = errors.New("the kernel refused MADV_PAGEOUT (needs Linux 5.4 or later, and no locked memory)")

// residentBytes is the process's resident set (VmRSS), or 0 where
// /proc/self/status does not tell it.
func residentBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
