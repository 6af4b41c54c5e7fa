//go:build linux || openbsd || solaris || aix

package inputs

import "syscall"

func ctimeOf(st *syscall.Stat_t) syscall.Timespec { return st.Ctim }
