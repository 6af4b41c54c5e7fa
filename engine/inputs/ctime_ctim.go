//go:build linux || openbsd || solaris || aix

package inputs

import (
	"io/fs"
	"syscall"
	"time"
)

// inode is what the stat of fi says beyond fs.FileInfo; false when fi
// holds no stat.
func inode(fi fs.FileInfo) (inodeStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return inodeStat{}, false
	}
	return inodeStat{ctime: time.Unix(st.Ctim.Unix()), nlink: uint64(st.Nlink), dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}
