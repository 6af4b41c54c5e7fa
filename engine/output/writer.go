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
	"strconv"
	"syscall"
)

// Writer streams records into temporary files beside the final ones and
// renames them into place only in Commit. A run killed at any moment thus
// leaves the previous complete files untouched: never a torn line, never
// half of one run and half of another inside a file.
type Writer struct {
	dir  string
	lock *os.File
	acc  *sink
	rej  *sink
	done bool
}

type sink struct {
	final string
	tmp   string
	f     *os.File
	w     *bufio.Writer
	h     hash.Hash
	n     int
}

// FileInfo describes a written output file for the manifest.
type FileInfo struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Records int    `json:"records"`
}

// Create locks outDir against a concurrent run and opens the temporary
// files.
func Create(outDir string) (*Writer, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create out dir %s: %w", outDir, err)
	}
	lock, err := lockDir(outDir)
	if err != nil {
		return nil, err
	}
	w := &Writer{dir: outDir, lock: lock}
	if w.acc, err = newSink(outDir, DatasetFile); err == nil {
		w.rej, err = newSink(outDir, RejectedFile)
	}
	if err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, ".pgrules.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		return nil, fmt.Errorf("out dir %s is in use by another pgrules run (pid %s): wait for it to finish or choose another --out-dir", dir, string(holder))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0)
	return f, nil
}

func newSink(dir, name string) (*sink, error) {
	s := &sink{final: filepath.Join(dir, name), tmp: filepath.Join(dir, "."+name+".partial"), h: sha256.New()}
	f, err := os.Create(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", s.tmp, err)
	}
	s.f = f
	s.w = bufio.NewWriterSize(io.MultiWriter(f, s.h), 256<<10)
	return s, nil
}

func (s *sink) writeLine(line []byte) error {
	if _, err := s.w.Write(line); err != nil {
		return fmt.Errorf("writing %s: %w", s.tmp, err)
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("writing %s: %w", s.tmp, err)
	}
	s.n++
	return nil
}

func (s *sink) finish() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", s.tmp, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", s.tmp, err)
	}
	return s.f.Close()
}

func (s *sink) info() FileInfo {
	return FileInfo{Path: s.final, SHA256: hex.EncodeToString(s.h.Sum(nil)), Records: s.n}
}

// Accepted encodes and appends one dataset record.
func (w *Writer) Accepted(r *Accepted) error {
	line, err := marshalLine(r)
	if err != nil {
		return fmt.Errorf("encoding record %s: %w", r.ID, err)
	}
	return w.acc.writeLine(line)
}

// Rejected encodes and appends one rejected record.
func (w *Writer) Rejected(r *Rejected) error {
	line, err := marshalLine(r)
	if err != nil {
		return fmt.Errorf("encoding record %s: %w", r.ID, err)
	}
	return w.rej.writeLine(line)
}

// CopyLine appends a record kept from a previous run (--resume) verbatim.
func (w *Writer) CopyLine(accepted bool, line []byte) error {
	if accepted {
		return w.acc.writeLine(line)
	}
	return w.rej.writeLine(line)
}

// Infos reports the two record files as they will be once committed.
func (w *Writer) Infos() (dataset, rejected FileInfo, err error) {
	for _, s := range []*sink{w.acc, w.rej} {
		if err := s.w.Flush(); err != nil {
			return dataset, rejected, err
		}
	}
	return w.acc.info(), w.rej.info(), nil
}

// Commit makes the run's files the current ones: both record files first,
// then stats and manifest, so a manifest on disk always describes record
// files that are complete.
func (w *Writer) Commit(stats, manifest []byte) error {
	if w.done {
		return errors.New("output already committed")
	}
	for _, s := range []*sink{w.rej, w.acc} {
		if err := s.finish(); err != nil {
			return err
		}
	}
	for _, s := range []*sink{w.rej, w.acc} {
		if err := os.Rename(s.tmp, s.final); err != nil {
			return fmt.Errorf("cannot move %s into place: %w", s.final, err)
		}
	}
	if err := writeFileAtomic(filepath.Join(w.dir, StatsFile), stats); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(w.dir, ManifestFile), manifest); err != nil {
		return err
	}
	syncDir(w.dir)
	w.done = true
	w.unlock()
	return nil
}

// Abort drops the temporary files; the previous run's files stay.
func (w *Writer) Abort() {
	for _, s := range []*sink{w.acc, w.rej} {
		if s != nil && s.f != nil {
			s.f.Close()
			os.Remove(s.tmp)
		}
	}
	w.unlock()
}

func (w *Writer) unlock() {
	if w.lock != nil {
		w.lock.Close()
		w.lock = nil
	}
}

// writeFileAtomic writes via a temporary file and rename so readers never
// see a half-written JSON document.
func writeFileAtomic(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".partial")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// MarshalDocument encodes stats or a manifest: indented, stable key order,
// trailing newline.
func MarshalDocument(v any) ([]byte, error) {
	b, err := marshalIndent(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
