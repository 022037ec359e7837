package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseStartupPages gives back to the kernel the pages of gatehouse's
// own executable that starting up brought in: config parsing, metadata,
// the store's schema check and every package's initialisation run once,
// yet their code stays resident, and the kernel maps code in blocks of
// 16 pages or more around each page that runs. Once serving starts:
//
//   - MADV_RANDOM on the executable's read-only mappings: from now on a
//     fault reads the page that runs, not the pages around it;
//   - MADV_PAGEOUT on them: the pages this process alone maps are
//     reclaimed (the kernel skips those another process maps, such as a
//     second gatehouse on the same host);
//   - POSIX_FADV_DONTNEED on the file: the reclaimed pages leave the page
//     cache too, so the code that runs next comes back a page at a time.
//
// Nothing changes what any page holds: a read-only page is read again
// from the file when it runs next, and writable mappings (data, relocated
// or copied-on-write pages) are never touched. The cost is a page fault
// for each page of code as it first runs again, once.
//
// It returns the bytes of the mappings it asked for; errUnsupported when
// the kernel has no MADV_PAGEOUT (before Linux 5.4).
func releaseStartupPages() (int64, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	ranges := exeMappings(maps, uint64(reflect.ValueOf(releaseStartupPages).Pointer()))
	if len(ranges) == 0 {
		return 0, errors.New("/proc/self/maps: no mapping holds this code")
	}
	var asked int64
	for _, m := range ranges {
		// MADV_RANDOM only steers read-ahead: a kernel that refuses it
		// still reclaims.
		_ = madvise(m.start, m.end-m.start, unix.MADV_RANDOM)
		if err := madvise(m.start, m.end-m.start, unix.MADV_PAGEOUT); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return asked, errUnsupported
			}
			return asked, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, err)
		}
		asked += int64(m.end - m.start)
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return asked, err
	}
	defer exe.Close()
	if err := unix.Fadvise(int(exe.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return asked, fmt.Errorf("fadvise: %w", err)
	}
	return asked, nil
}

// errUnsupported: this kernel cannot reclaim pages on request.
var errUnsupported = errors.New("the kernel has no MADV_PAGEOUT (Linux 5.4 or later)")

func madvise(start, length uint64, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(length), uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

// mapping is one range of addresses in /proc/self/maps.
type mapping struct{ start, end uint64 }

// exeMappings reads, from the text of /proc/self/maps ("start-end perms
// offset dev inode path"), the read-only mappings of the file that holds
// the address pc: the executable's code and read-only data. The file is
// told by the device and inode of pc's own mapping, which is the file
// really mapped even on overlayfs, where stat of /proc/self/exe differs.
// A writable mapping, even one not yet written, is never among them.
func exeMappings(maps []byte, pc uint64) []mapping {
	type line struct {
		m        mapping
		readOnly bool
		dev, ino string
	}
	var lines []line
	var dev, ino string
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start || f[4] == "0" {
			continue
		}
		l := line{m: mapping{start, end}, readOnly: len(f[1]) == 4 && f[1][0] == 'r' && f[1][1] == '-', dev: f[3], ino: f[4]}
		if start <= pc && pc < end {
			dev, ino = l.dev, l.ino
		}
		lines = append(lines, l)
	}
	var out []mapping
	for _, l := range lines {
		if dev != "" && l.readOnly && l.dev == dev && l.ino == ino {
			out = append(out, l.m)
		}
	}
	return out
}
