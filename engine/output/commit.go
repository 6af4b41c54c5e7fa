package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The four output files switch as one unit, so every reader — the next
// run's --resume and change summary, explain, diff, report — sees either
// the whole previous set or the whole new set, never an id in both record
// files or a manifest of another run.
//
// A rename is atomic for one file only, so the commit is journaled, as a
// database would do it:
//
//  1. the run writes all four files into .pgrules/staging and syncs them;
//  2. it writes .pgrules/commit.json naming them (write, sync, rename):
//     from this instant the new set is the committed one;
//  3. it renames each staged file over its final name;
//  4. it removes the journal.
//
// Anyone who opens the out dir afterwards (OpenState, OpenCommitted) first
// rolls a journal it finds forward, so a kill -9 between two renames is
// finished by the next reader. Readers and the renames are serialised by a
// lock on .pgrules/commit.lock, so a reader never opens the files in the
// middle of a commit.

// StateDir holds pgrules' own files inside an out dir.
const StateDir = ".pgrules"

// FailedRunDir is where an unhealthy run's outputs are kept for a person
// to look at, inside StateDir.
const FailedRunDir = "last-failed-run"

const (
	journalFile = "commit.json"
	runLockFile = "run.lock"
	commitLock  = "commit.lock"
	stagingName = "staging"
)

// CommitFaultPoints are the instants of a commit at which a test may kill
// the process (PGRULES_TEST_KILL_AT=<point>) to prove that a reader sees
// one whole set of files whatever the instant.
var CommitFaultPoints = []string{
	"staged", "spared", "journaled",
	"renamed:" + RejectedFile, "renamed:" + DatasetFile, "renamed:" + StatsFile, "renamed:" + ManifestFile,
	"committed",
}

// faultPoint kills the process at a named instant when a test asks for it.
// SIGKILL, not exit: nothing may run after it, exactly as with kill -9.
func faultPoint(name string) {
	if v := os.Getenv("PGRULES_TEST_KILL_AT"); v != "" && v == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is delivered asynchronously
	}
}

// ErrOutDirBusy reports that another pgrules run holds the out dir.
var ErrOutDirBusy = errors.New("out dir is in use by another pgrules run")

// BusyError says which out dir is busy and which process holds it.
type BusyError struct {
	Dir string
	PID string
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("out dir %s is in use by another pgrules run (pid %s)", e.Dir, e.PID)
}
func (e *BusyError) Unwrap() error { return ErrOutDirBusy }

// State is an out dir locked for one run.
type State struct {
	dir  string
	lock *os.File
}

func stateDir(outDir string) string { return filepath.Join(outDir, StateDir) }

func (s *State) stagingDir() string { return filepath.Join(stateDir(s.dir), stagingName) }

// OpenState locks outDir for a run (failing at once if another run holds
// it) and finishes a commit a killed run left half done.
func OpenState(outDir string) (*State, error) {
	if err := os.MkdirAll(stateDir(outDir), 0o755); err != nil {
		return nil, &IOError{Op: "create", Path: stateDir(outDir), Err: err}
	}
	path := filepath.Join(stateDir(outDir), runLockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, &IOError{Op: "create", Path: path, Err: err}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		return nil, &BusyError{Dir: outDir, PID: string(holder)}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	s := &State{dir: outDir, lock: f}
	if err := withCommitLock(outDir, func() error { return rollForward(outDir) }); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the run lock.
func (s *State) Close() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// resetStaging empties the staging directory: anything in it belongs to a
// run that never committed.
func (s *State) resetStaging() error {
	// Files of pgrules versions that staged beside the outputs.
	for _, name := range append(append([]string{}, RecordFiles...), DocumentFiles...) {
		os.Remove(filepath.Join(s.dir, "."+name+".partial"))
	}
	os.Remove(filepath.Join(s.dir, ".pgrules.lock"))
	dir := s.stagingDir()
	if err := os.RemoveAll(dir); err != nil {
		return &IOError{Op: "clear", Path: dir, Err: err}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &IOError{Op: "create", Path: dir, Err: err}
	}
	return nil
}

type journal struct {
	Version int      `json:"version"`
	Files   []string `json:"files"`
}

// commit runs steps 2–4 of the protocol for the staged files.
func (s *State) commit(files []string) error {
	s.keepSpares()
	s.forgetFingerprints()
	faultPoint("spared")
	return withCommitLock(s.dir, func() error {
		j, _ := json.Marshal(journal{Version: 1, Files: files})
		if err := writeFileAtomic(filepath.Join(stateDir(s.dir), journalFile), j); err != nil {
			return err
		}
		if err := syncDir(stateDir(s.dir)); err != nil {
			return err
		}
		faultPoint("journaled")
		return rollForward(s.dir)
	})
}

// rollForward completes a journaled commit; without a journal it does
// nothing. It is idempotent: a file already renamed is skipped.
func rollForward(outDir string) error {
	jpath := filepath.Join(stateDir(outDir), journalFile)
	data, err := os.ReadFile(jpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &IOError{Op: "read", Path: jpath, Err: err}
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("%s: damaged commit journal: %w", jpath, err)
	}
	staging := filepath.Join(stateDir(outDir), stagingName)
	for _, name := range j.Files {
		if filepath.Base(name) != name {
			return fmt.Errorf("%s: damaged commit journal: file name %q", jpath, name)
		}
		src := filepath.Join(staging, name)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			continue // renamed before the kill
		}
		if err := os.Rename(src, filepath.Join(outDir, name)); err != nil {
			return &IOError{Op: "rename", Path: src, Err: err}
		}
		faultPoint("renamed:" + name)
	}
	if err := syncDir(outDir); err != nil {
		return err
	}
	if err := os.Remove(jpath); err != nil {
		return &IOError{Op: "remove", Path: jpath, Err: err}
	}
	faultPoint("committed")
	return syncDir(stateDir(outDir))
}

// stash moves the staged files to FailedRunDir, replacing an older one.
func (s *State) stash() (string, error) {
	dst := filepath.Join(stateDir(s.dir), FailedRunDir)
	if err := os.RemoveAll(dst); err != nil {
		return "", &IOError{Op: "clear", Path: dst, Err: err}
	}
	if err := os.Rename(s.stagingDir(), dst); err != nil {
		return "", &IOError{Op: "rename", Path: s.stagingDir(), Err: err}
	}
	return dst, nil
}

// withCommitLock serialises commits and readers opening the files. A
// commit holds it for a few renames, so waiting is short; a killed holder
// releases it with its last file descriptor.
func withCommitLock(outDir string, fn func() error) error {
	path := filepath.Join(stateDir(outDir), commitLock)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return &IOError{Op: "create", Path: path, Err: err}
	}
	defer f.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: another pgrules process has been committing for 30s: %w", outDir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// Committed is a consistent snapshot of an out dir's four files: they are
// opened together under the commit lock, so a commit happening while they
// are read does not mix two runs. A missing file is nil.
type Committed struct {
	Dir   string
	Files map[string]*os.File
}

// OpenCommitted opens the committed outputs of outDir for reading, first
// finishing a commit a killed run left half done. An out dir pgrules never
// wrote to has no files and no error.
func OpenCommitted(outDir string) (*Committed, error) {
	c := &Committed{Dir: outDir, Files: map[string]*os.File{}}
	if _, err := os.Stat(stateDir(outDir)); errors.Is(err, os.ErrNotExist) {
		// Written by another tool, or by nothing yet: nothing to roll forward.
		return c, c.open()
	}
	err := withCommitLock(outDir, func() error {
		if err := rollForward(outDir); err != nil {
			return err
		}
		return c.open()
	})
	if errors.Is(err, os.ErrPermission) {
		// A read-only out dir (someone else's run): nobody can be committing
		// into it as us, and we could not roll forward anyway.
		err = c.open()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Committed) open() error {
	for _, name := range append(append([]string{}, RecordFiles...), DocumentFiles...) {
		path := filepath.Join(c.Dir, name)
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return &IOError{Op: "open", Path: path, Err: err}
		}
		c.Files[name] = f
	}
	return nil
}

// ReadDocument returns a whole stats or manifest file, or nil when absent.
func (c *Committed) ReadDocument(name string) ([]byte, error) {
	f := c.Files[name]
	if f == nil {
		return nil, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, &IOError{Op: "read", Path: f.Name(), Err: err}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, &IOError{Op: "read", Path: f.Name(), Err: err}
	}
	return b, nil
}

// Close releases the files.
func (c *Committed) Close() {
	for _, f := range c.Files {
		f.Close()
	}
}
