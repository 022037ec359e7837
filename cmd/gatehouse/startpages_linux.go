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

func init() { releaseStartupPages = releaseExecutablePages }

// releaseExecutablePages gives back to the kernel the pages of gatehouse's
// own executable that starting up brought in: config parsing, metadata,
// the store's schema check and every package's initialisation run once,
// yet their code stays resident, and the kernel maps code in blocks of
// 16 pages or more around each page that runs. Once serving starts:
//
//   - MADV_PAGEOUT on the executable's read-only mappings: the pages this
//     process alone maps are reclaimed (the kernel skips those another
//     process maps, such as a second gatehouse on the same host);
//   - then MADV_RANDOM on them: from now on a fault reads the page that
//     runs, not the pages around it (only once the page-out worked, so a
//     refused one changes nothing);
//   - POSIX_FADV_DONTNEED on the file, once it is sure to be the file
//     mapped (same device and inode): the reclaimed pages leave the page
//     cache too, so the code that runs next comes back a page at a time.
//
// Nothing changes what any page holds: a read-only page is read again
// from the file when it runs next, and writable mappings (data, relocated
// or copied-on-write pages) are never touched. The cost is a page fault
// for each page of code as it first runs again, once.
//
// It returns the bytes of the mappings it advised, and whether the page
// cache was told too.
func releaseExecutablePages() (advised int64, dropped bool, err error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, false, err
	}
	exe := exeMappings(maps, uint64(reflect.ValueOf(releaseExecutablePages).Pointer()))
	if len(exe.ranges) == 0 {
		return 0, false, errors.New("/proc/self/maps: no mapping holds this code")
	}
	for i, m := range exe.ranges {
		if err := advise(m.start, m.end-m.start, unix.MADV_PAGEOUT); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) {
				return 0, false, errUnsupported
			}
			return advised, false, fmt.Errorf("madvise(MADV_PAGEOUT) %x-%x: %w", m.start, m.end, err)
		}
		advised += int64(m.end - m.start)
	}
	for _, m := range exe.ranges {
		// It only steers read-ahead: a kernel that refuses it has still
		// reclaimed.
		_ = advise(m.start, m.end-m.start, unix.MADV_RANDOM)
	}
	f := exe.open()
	if f == nil {
		return advised, false, nil
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return advised, false, fmt.Errorf("fadvise: %w", err)
	}
	return advised, true, nil
}

// advise is madvise; a test replaces it to play a kernel that refuses.
var advise = madvise

func madvise(start, length uint64, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(length), uintptr(advice)); e != 0 {
		return e
	}
	return nil
}

// mapping is one range of addresses in /proc/self/maps.
type mapping struct{ start, end uint64 }

// exeFile is the read-only mappings of one file, with the device
// ("major:minor", in hexadecimal), inode and path /proc/self/maps gives.
type exeFile struct {
	ranges         []mapping
	dev, ino, path string
}

// open returns the mapped file, opened by its path or as /proc/self/exe,
// whichever is the same device and inode as the mappings (not the same
// when gatehouse was started through the dynamic loader, or after the
// file was replaced); nil when neither is.
func (e exeFile) open() *os.File {
	for _, name := range []string{e.path, "/proc/self/exe"} {
		if !strings.HasPrefix(name, "/") {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil &&
			fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev)) == e.dev &&
			strconv.FormatUint(st.Ino, 10) == e.ino {
			return f
		}
		f.Close()
	}
	return nil
}

// exeMappings reads, from the text of /proc/self/maps ("start-end perms
// offset dev inode path"), the read-only mappings of the file that holds
// the address pc: the executable's code and read-only data. The file is
// told by the device and inode of pc's own mapping, which is the file
// really mapped even on overlayfs, where stat of /proc/self/exe differs.
// A writable mapping, even one not yet written, is never among them.
func exeMappings(maps []byte, pc uint64) exeFile {
	type line struct {
		m        mapping
		readOnly bool
		dev, ino string
	}
	var lines []line
	var exe exeFile
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
			// The path is the rest of the line (it may hold spaces).
			_, rest, _ := strings.Cut(sc.Text(), " "+f[4]+" ")
			exe.dev, exe.ino, exe.path = l.dev, l.ino, strings.TrimSpace(rest)
		}
		lines = append(lines, l)
	}
	for _, l := range lines {
		if exe.dev != "" && l.readOnly && l.dev == exe.dev && l.ino == exe.ino {
			exe.ranges = append(exe.ranges, l.m)
		}
	}
	return exe
}
