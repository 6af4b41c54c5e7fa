//go:build !linux

package output

import "os"

// startWriteback is a no-op where sync_file_range does not exist: the
// sync before the commit writes everything.
func startWriteback(*os.File, int64, int64) {}

// dropCached is a no-op where posix_fadvise is not offered.
func dropCached(*os.File, int64, int64) {}
