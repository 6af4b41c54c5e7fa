package output

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pages on disk are let go: after an fsync, dropCached leaves none of the
// file's pages in the page cache. (The file is made next to the test, not
// in $TMPDIR: tmpfs keeps its pages whatever it is told.)
func TestDropCachedLetsGoOfPagesOnDisk(t *testing.T) {
	dir, err := os.MkdirTemp(".", "dropcached-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(dir + "/records")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 4 << 20
	if _, err := f.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	resident := func() int {
		m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
		// x/sys has no wrapper for mincore(2).
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatal(e)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if n := resident(); n == 0 {
		t.Fatal("no page of a file just written is cached: the check proves nothing")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	dropCached(f, 0, size)
	if n := resident(); n != 0 {
		t.Errorf("%d pages still cached after dropCached", n)
	}
}
