package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestExeMappings(t *testing.T) {
	maps := `00400000-015b7000 r-xp 00000000 fe:00 9986388                            /usr/bin/gatehouse
015b7000-02767000 r--p 011b7000 fe:00 9986388                            /usr/bin/gatehouse
02767000-0282c000 rw-p 02367000 fe:00 9986388                            /usr/bin/gatehouse
0282c000-0487a000 rw-p 00000000 00:00 0
7f40ac226000-7f40ac37c000 r-xp 00026000 fe:00 326269                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f40ac37c000-7f40ac3cf000 r--p 0017c000 fe:00 326269                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f40ac400000-7f40ac410000 r--p 00000000 fe:01 9986388                    /other/device/same/inode
7f40ac410000-7f40ac420000 r--s 00000000 fe:00 9986388                    /usr/bin/gatehouse
7ffc5e9f0000-7ffc5ea11000 rw-p 00000000 00:00 0                          [stack]
garbage line
`
	got := exeMappings([]byte(maps), 0x498d20)
	want := exeFile{ranges: []mapping{{0x00400000, 0x015b7000}, {0x015b7000, 0x02767000}, {0x7f40ac410000, 0x7f40ac420000}},
		dev: "fe:00", ino: "9986388", path: "/usr/bin/gatehouse"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mappings of the executable: %+v, want %+v", got, want)
	}
	// The data mapping, writable although private and maybe never written,
	// is never released: pageout of a copied page would need swap, and a
	// page dropped instead would lose what was written.
	for _, m := range got.ranges {
		if m.start == 0x02767000 {
			t.Error("a writable mapping was chosen")
		}
	}
	if got := exeMappings([]byte(maps), 0x1000); len(got.ranges) != 0 {
		t.Errorf("no mapping holds the address, yet %+v were chosen", got)
	}
	if got := exeMappings([]byte(maps), 0x0282c100); len(got.ranges) != 0 {
		t.Errorf("an anonymous mapping chose %+v", got)
	}
	spaced := "00400000-00500000 r-xp 00000000 08:01 77 /opt/my apps/gatehouse (deleted)\n"
	if got := exeMappings([]byte(spaced), 0x400100); got.path != "/opt/my apps/gatehouse (deleted)" || len(got.ranges) != 1 {
		t.Errorf("a path with spaces: %+v", got)
	}
}

// TestPageCacheAdviceOnlyForTheMappedFile: the page cache is told to drop
// the file only when it is the file mapped, by device and inode; started
// through the dynamic loader, /proc/self/exe is the loader, and a file
// replaced on disk is another inode: neither is advised.
func TestPageCacheAdviceOnlyForTheMappedFile(t *testing.T) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	exe := exeMappings(maps, uint64(reflect.ValueOf(releaseExecutablePages).Pointer()))
	f := exe.open()
	if f == nil {
		t.Fatalf("the test binary itself was not found as the mapped file: %+v", exe)
	}
	f.Close()
	other := exe
	other.ino = "1" // another file (the loader, or a binary replaced since)
	if f := other.open(); f != nil {
		f.Close()
		t.Errorf("a file of another inode was taken for the mapped one: %s", f.Name())
	}
	other = exe
	other.dev = "ff:ff"
	if f := other.open(); f != nil {
		f.Close()
		t.Errorf("a file on another device was taken for the mapped one: %s", f.Name())
	}
}

// stayWritten is data the release must leave as it is.
var stayWritten = bytes.Repeat([]byte("written by the process "), 4096)

// TestReleasedPagesKeepTheirContent releases the test binary's own pages
// and checks that its code and read-only data read back the same, that
// its written data is unchanged, that code still runs, and that the
// executable's resident pages went down.
func TestReleasedPagesKeepTheirContent(t *testing.T) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	ranges := exeMappings(maps, uint64(reflect.ValueOf(releaseExecutablePages).Pointer())).ranges
	if len(ranges) == 0 {
		t.Fatalf("no read-only mapping of the test binary in:\n%s", maps)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	sum := func() [32]byte {
		h := sha256.New()
		for _, m := range ranges {
			if _, err := io.Copy(h, io.NewSectionReader(mem, int64(m.start), int64(m.end-m.start))); err != nil {
				t.Fatal(err)
			}
		}
		return [32]byte(h.Sum(nil))
	}
	stayWritten[0] = 'W'
	wantWritten := bytes.Clone(stayWritten)
	before := sum() // every page of the mappings is resident now
	residentBefore := exeResident(t)
	asked, dropped, err := releaseStartupPages()
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	if !dropped {
		t.Error("the page cache was not told to drop the test binary's pages")
	}
	var total uint64
	for _, m := range ranges {
		total += m.end - m.start
	}
	if asked != int64(total) {
		t.Errorf("asked for %d bytes, the mappings hold %d", asked, total)
	}
	residentAfter := exeResident(t)
	t.Logf("executable resident: %d KiB before, %d KiB after (mappings: %d KiB)", residentBefore>>10, residentAfter>>10, total>>10)
	if residentAfter > residentBefore/2 {
		t.Errorf("the executable's resident pages went from %d to %d KiB: not released", residentBefore>>10, residentAfter>>10)
	}
	if after := sum(); after != before {
		t.Error("the code and read-only data read back differently after the release")
	}
	if !bytes.Equal(stayWritten, wantWritten) {
		t.Error("written data changed")
	}
	if got := strconv.Itoa(12345) + strings.ToUpper("ok"); got != "12345OK" {
		t.Errorf("code runs differently after the release: %q", got)
	}
}

// exeResident is the resident bytes of the test binary's read-only
// mappings, from /proc/self/smaps.
func exeResident(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	ranges := exeMappings(raw, uint64(reflect.ValueOf(releaseExecutablePages).Pointer())).ranges
	var total int64
	var in bool
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = false
			lo, _, _ := strings.Cut(f[0], "-")
			start, err := strconv.ParseUint(lo, 16, 64)
			for _, m := range ranges {
				in = in || (err == nil && m.start == start)
			}
			continue
		}
		if in && len(f) == 3 && f[0] == "Rss:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			total += kb << 10
		}
	}
	return total
}

// TestRefusedPageOutChangesNothing: a kernel that refuses MADV_PAGEOUT
// (before 5.4, or locked memory) gets no MADV_RANDOM either, so read-ahead
// stays as it was, and the error says what was refused.
func TestRefusedPageOutChangesNothing(t *testing.T) {
	var random int
	advise = func(start, length uint64, advice int) error {
		switch advice {
		case unix.MADV_PAGEOUT:
			return unix.EINVAL
		case unix.MADV_RANDOM:
			random++
		}
		return nil
	}
	t.Cleanup(func() { advise = madvise })
	advised, dropped, err := releaseStartupPages()
	if !errors.Is(err, errUnsupported) || advised != 0 || dropped {
		t.Errorf("refused page-out: advised %d, dropped %v, error %v", advised, dropped, err)
	}
	if random != 0 {
		t.Errorf("MADV_RANDOM applied %d times although the page-out was refused", random)
	}
	advise = func(start, length uint64, advice int) error {
		if advice == unix.MADV_PAGEOUT {
			return unix.EPERM
		}
		random++
		return nil
	}
	if _, _, err := releaseStartupPages(); err == nil || errors.Is(err, errUnsupported) || random != 0 {
		t.Errorf("another refusal: error %v, MADV_RANDOM %d times", err, random)
	}
}
