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
	asked, err := releaseStartupPages()
	debug.FreeOSMemory()
	switch {
	case errors.Is(err, errUnsupported):
		logger.Info("start-up pages kept: "+err.Error(), zap.Int64("resident_bytes", before))
	case err != nil:
		logger.Warn("start-up pages kept", zap.Error(err), zap.Int64("resident_bytes", before))
	default:
		logger.Info("start-up pages released", zap.Int64("mapped_bytes", asked),
			zap.Int64("resident_bytes_before", before), zap.Int64("resident_bytes", residentBytes()))
	}
}

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
