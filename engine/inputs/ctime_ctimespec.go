//go:build darwin || freebsd || netbsd || dragonfly

package inputs

import "syscall"

// macOS and these BSDs name the field Ctimespec.
func ctimeOf(st *syscall.Stat_t) syscall.Timespec { return st.Ctimespec }
