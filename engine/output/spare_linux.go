package output

import (
	"os"

	"golang.org/x/sys/unix"
)

// unshared asks for a write lease, which the kernel grants only when no
// other open file description (a reader's descriptor, or a mapping that
// outlived it) refers to the file. The lease is dropped at once: the file
// sits in pgrules' own state dir, where nobody opens it afterwards.
func unshared(f *os.File) bool {
	c, err := f.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	_ = c.Control(func(fd uintptr) {
		if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_WRLCK); err == nil {
			ok = true
			_, _ = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
		}
	})
	return ok
}
