package output

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the range to disk
// without waiting for it. A failure changes nothing: the sync before the
// commit writes whatever is left and reports errors.
func startWriteback(f *os.File, off, n int64) {
	if c, err := f.SyscallConn(); err == nil {
		_ = c.Control(func(fd uintptr) { _ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) })
	}
}

// dropCached asks the kernel to drop the range's pages from the page
// cache: those already on disk go back to the free lists, and the next
// megabytes written reuse them. A failure, or a page still being
// written, changes nothing but the memory kept.
func dropCached(f *os.File, off, n int64) {
	if c, err := f.SyscallConn(); err == nil {
		_ = c.Control(func(fd uintptr) { _ = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED) })
	}
}
