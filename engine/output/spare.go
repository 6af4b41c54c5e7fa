package output

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// A run writes its record files over those of the run before the last,
// kept in .pgrules/spare, instead of into new files. Filling new files
// makes the kernel find fresh pages for the whole dataset and, at the
// commit, free the old ones again: at 100k samples (750 MB) that was
// 3.4–5.1 s of system time per re-gate, against 2.1–2.6 s writing in
// place (see the commit message for the A/B).
//
// The files a run replaces are the previous set, which people read: a
// training job may still hold one open. So a spare is written over only
// if nothing else can see it: one link (its own), and no open file or
// mapping anywhere, which the kernel proves by granting a write lease.
// Otherwise it is dropped, the staged file is created new, and whoever
// held it keeps reading what they opened.
//
// The disk holds two sets between runs instead of one; during a run it
// holds two sets either way. A run that fills the disk keeps no spare
// (Writer.Abort).
const spareName = "spare"

func (s *State) spareDir() string { return filepath.Join(stateDir(s.dir), spareName) }

// openStaged opens the staged record file at path for writing, reusing
// the spare of the same name when that is safe.
func (s *State) openStaged(path string) (f *os.File, reused bool, err error) {
	spare := filepath.Join(s.spareDir(), filepath.Base(path))
	if os.Rename(spare, path) == nil {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0); err == nil {
			if soleUser(f) {
				return f, true, nil
			}
			f.Close()
		}
		os.Remove(path)
	}
	f, err = os.Create(path)
	return f, false, err
}

// soleUser reports whether f is a regular file with no other link and no
// other open description or mapping, in this process or any other.
func soleUser(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Nlink != 1 {
		return false
	}
	return unshared(f)
}

// keepSpares links the committed record files into the spare dir, just
// before the commit replaces them. A kill between the link and the
// commit leaves a spare with two links, which openStaged refuses, so the
// committed file is never written over.
func (s *State) keepSpares() {
	if os.MkdirAll(s.spareDir(), 0o755) != nil {
		return
	}
	for _, name := range RecordFiles {
		spare := filepath.Join(s.spareDir(), name)
		if err := os.Remove(spare); err != nil && !errors.Is(err, os.ErrNotExist) {
			continue
		}
		_ = os.Link(filepath.Join(s.dir, name), spare)
	}
}

// returnSpare gives an aborted run's staged file back as the spare when
// there is none: its bytes mean nothing, its pages and blocks are reusable.
func (s *State) returnSpare(path string) {
	spare := filepath.Join(s.spareDir(), filepath.Base(path))
	if _, err := os.Lstat(spare); !errors.Is(err, os.ErrNotExist) {
		return
	}
	if os.MkdirAll(s.spareDir(), 0o755) == nil {
		_ = os.Rename(path, spare)
	}
}

// NoSpace reports whether err is a full disk or an exhausted quota.
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
