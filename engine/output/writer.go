package output

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Writer streams a run's records into a staging directory inside the out
// dir and makes them the current outputs only in Commit, all four files as
// one unit (see commit.go). A run that never commits — interrupted,
// unhealthy, killed — leaves the committed files exactly as they were.
type Writer struct {
	dir   string
	state *State
	sinks map[string]*sink
	order []string
	done  bool
	// staged holds the record files' fingerprints once they are synced.
	staged map[string]fingerprint
}

type sink struct {
	path string
	f    *os.File
	w    *bufio.Writer
	h    hash.Hash
	n    int
	out  *flushing
	// reused: the file is a spare being written over, longer than what
	// was written until it is cut at the end.
	reused bool
	heads  *headsWriter
}

// FileInfo describes a written output file for the manifest.
type FileInfo struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Records int    `json:"records"`
}

// RecordFiles are the sinks a run writes line by line, in commit order.
var RecordFiles = []string{RejectedFile, DatasetFile}

// DocumentFiles are written whole at the end of a run.
var DocumentFiles = []string{StatsFile, ManifestFile}

// Create locks outDir against a concurrent run, finishes a commit that a
// killed run left half done, and opens a fresh staging directory.
func Create(outDir string) (*Writer, error) {
	st, err := OpenState(outDir)
	if err != nil {
		return nil, err
	}
	w := &Writer{dir: outDir, state: st, sinks: map[string]*sink{}}
	if err := st.resetStaging(); err != nil {
		st.Close()
		return nil, err
	}
	for _, name := range RecordFiles {
		s, err := newSink(st, filepath.Join(st.stagingDir(), name))
		if err != nil {
			w.Abort(err)
			return nil, err
		}
		w.sinks[name] = s
		w.order = append(w.order, name)
	}
	return w, nil
}

func newSink(st *State, path string) (*sink, error) {
	f, reused, err := st.openStaged(path)
	if err != nil {
		return nil, &IOError{Op: "create", Path: path, Err: err}
	}
	s := &sink{path: path, f: f, h: sha256.New(), out: &flushing{f: f, writeback: startWriteback, drop: dropCached}, reused: reused, heads: newHeadsWriter(path + headsSuffix)}
	s.w = bufio.NewWriterSize(io.MultiWriter(s.out, s.h), 256<<10)
	return s, nil
}

// flushing writes to f and has the kernel start writing each 32 MB to disk
// as soon as it is written: the sync before the commit then waits for the
// last few megabytes, not for the whole dataset (at 100k samples it took
// half a second, all of it after the last sample). Each 32 MB sent to disk
// is then let go from the page cache 32 MB later, and the records after
// it are written into the pages it freed: in this VM a page the kernel
// takes fresh costs a fault to the host, and copying 750 MB of records and
// the cache's checkpoints into fresh pages was 13 % of a first run's CPU
// (perf: copy_folio_from_iter_atomic); with the pages reused, 1 %. The
// last 32-64 MB stay cached for whoever reads the records next.
type flushing struct {
	f        *os.File
	off, did int64
	// dropped: the pages before it were let go (see dropCached).
	dropped int64
	// writeback and drop are startWriteback and dropCached (tests watch
	// the ranges).
	writeback, drop func(f *os.File, off, n int64)
}

const writebackEvery = 32 << 20

func (w *flushing) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.did >= writebackEvery {
		// What was sent to disk an interval ago is on it by now: its
		// pages are let go, and the records written next reuse them.
		if w.did > w.dropped {
			w.drop(w.f, w.dropped, w.did-w.dropped)
			w.dropped = w.did
		}
		w.writeback(w.f, w.did, w.off-w.did)
		w.did = w.off
	}
	return n, err
}

// Write appends one encoded record (without its newline) to the named
// record file.
func (w *Writer) Write(name string, line []byte) error {
	s := w.sinks[name]
	if s == nil {
		return fmt.Errorf("output: no record file named %q", name)
	}
	if _, err := s.w.Write(line); err != nil {
		return &IOError{Op: "write", Path: s.path, Err: err}
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return &IOError{Op: "write", Path: s.path, Err: err}
	}
	s.heads.add(line)
	s.n++
	return nil
}

// Info reports a record file as it will be once committed.
func (w *Writer) Info(name string) (FileInfo, error) {
	s := w.sinks[name]
	if s == nil {
		return FileInfo{}, fmt.Errorf("output: no record file named %q", name)
	}
	if err := s.w.Flush(); err != nil {
		return FileInfo{}, &IOError{Op: "write", Path: s.path, Err: err}
	}
	return FileInfo{Path: filepath.Join(w.dir, name), SHA256: hex.EncodeToString(s.h.Sum(nil)), Records: s.n}, nil
}

// finishStaging flushes, syncs and closes the record files and writes the
// documents beside them.
func (w *Writer) finishStaging(docs map[string][]byte) error {
	w.staged = map[string]fingerprint{}
	for _, name := range w.order {
		s := w.sinks[name]
		if err := s.w.Flush(); err != nil {
			return &IOError{Op: "write", Path: s.path, Err: err}
		}
		if s.reused {
			if err := s.f.Truncate(s.out.off); err != nil {
				return &IOError{Op: "truncate", Path: s.path, Err: err}
			}
		}
		if err := s.f.Sync(); err != nil {
			return &IOError{Op: "sync", Path: s.path, Err: err}
		}
		seal, _ := s.heads.finish()
		if fp, ok := statFingerprint(s.f); ok {
			fp.SHA256, fp.Heads = hex.EncodeToString(s.h.Sum(nil)), seal
			w.staged[name] = fp
		}
		if err := s.f.Close(); err != nil {
			return &IOError{Op: "close", Path: s.path, Err: err}
		}
		s.f = nil
	}
	for _, name := range DocumentFiles {
		data, ok := docs[name]
		if !ok {
			return fmt.Errorf("output: commit without %s", name)
		}
		if err := writeSynced(filepath.Join(w.state.stagingDir(), name), data); err != nil {
			return err
		}
	}
	return syncDir(w.state.stagingDir())
}

// Commit makes the staged run the current outputs: the four files switch
// as one unit. docs holds the stats and manifest documents by file name.
func (w *Writer) Commit(docs map[string][]byte) error {
	if w.done {
		return errors.New("output already committed")
	}
	if err := w.finishStaging(docs); err != nil {
		return err
	}
	faultPoint("staged")
	waitPastLastWrite(w.staged)
	files := append(slices.Clone(w.order), DocumentFiles...)
	if err := w.state.commit(files); err != nil {
		return err
	}
	w.state.placeHeads(w.staged)
	w.state.recordFingerprints(w.staged)
	w.done = true
	w.state.Close()
	return nil
}

// Stash keeps a run that must not be committed (an unhealthy run) where a
// person can look at it, and returns that directory. The committed outputs
// are not touched.
func (w *Writer) Stash(docs map[string][]byte) (string, error) {
	if w.done {
		return "", errors.New("output already committed")
	}
	if err := w.finishStaging(docs); err != nil {
		return "", err
	}
	for _, name := range w.order { // pgrules' own, not for the person looking
		os.Remove(filepath.Join(w.state.stagingDir(), name+headsSuffix))
	}
	dir, err := w.state.stash()
	if err != nil {
		return "", err
	}
	w.done = true
	w.state.Close()
	return dir, nil
}

// Abort drops the staged files; the committed outputs stay as they were.
// cause is why the run ends (nil: none to tell). When it is a full disk
// the staged files are not kept as spares and the spares there are
// removed too: a spare saves the next run time, and a full disk needs the
// space now, by pgrules and by whoever else writes to it.
func (w *Writer) Abort(cause error) {
	if w.done {
		return
	}
	full := NoSpace(cause)
	for _, s := range w.sinks {
		s.heads.close()
		if s.f != nil {
			s.f.Close()
			if !full {
				w.state.returnSpare(s.path)
			}
		}
	}
	_ = os.RemoveAll(w.state.stagingDir())
	if full {
		_ = os.RemoveAll(w.state.spareDir())
	}
	w.done = true
	w.state.Close()
}

// writeSynced writes a whole file and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return &IOError{Op: "create", Path: path, Err: err}
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &IOError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// writeFileAtomic writes via a temporary file and rename so readers never
// see a half-written file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return &IOError{Op: "rename", Path: path, Err: err}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return &IOError{Op: "open", Path: dir, Err: err}
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return &IOError{Op: "sync", Path: dir, Err: err}
	}
	return nil
}

// IOError is a failure to read or write a file of the out dir.
type IOError struct {
	Op   string
	Path string
	Err  error
}

func (e *IOError) Error() string { return fmt.Sprintf("cannot %s %s: %v", e.Op, e.Path, e.Err) }

// Staged reports an error on a file of the staging directory, written
// before a commit starts: the committed outputs are untouched.
func (e *IOError) Staged() bool {
	dir := filepath.Dir(e.Path)
	return filepath.Base(dir) == stagingName && filepath.Base(filepath.Dir(dir)) == StateDir
}
func (e *IOError) Unwrap() error { return e.Err }

// MarshalDocument encodes stats or a manifest: indented, stable key order,
// trailing newline.
func MarshalDocument(v any) ([]byte, error) {
	b, err := marshalIndent(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
