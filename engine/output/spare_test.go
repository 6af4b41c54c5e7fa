package output

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// writeOver is Writer.Commit (or Abort) of a run that writes lines into
// the dataset and one into the rejected file.
func writeOver(t *testing.T, dir string, commit bool, lines ...string) {
	t.Helper()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if err := w.Write(DatasetFile, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(RejectedFile, []byte(`{"id": "r"}`)); err != nil {
		t.Fatal(err)
	}
	if !commit {
		w.Abort(nil)
		return
	}
	if err := w.Commit(docs("A")); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// long is a first set longer than the later ones: a spare written over
// must be cut to what was written, not keep the old tail.
var long = []string{strings.Repeat("a", 5000), strings.Repeat("b", 5000), strings.Repeat("c", 5000)}

// reuses: spares are written over only where a write lease can prove that
// nobody else has them open.
var reuses = runtime.GOOS == "linux"

func TestRecordFilesAreWrittenOverTheSpare(t *testing.T) {
	dir := t.TempDir()
	dataset := filepath.Join(dir, DatasetFile)
	writeOver(t, dir, true, long...)
	first := inode(t, dataset)
	writeOver(t, dir, true, `{"id": "second"}`)
	if inode(t, dataset) == first {
		t.Fatal("the second run wrote over the committed file")
	}
	if got := inode(t, filepath.Join(dir, StateDir, spareName, DatasetFile)); got != first {
		t.Fatalf("the spare is inode %d, want the first run's %d", got, first)
	}
	writeOver(t, dir, true, `{"id": "third"}`)
	if (inode(t, dataset) == first) != reuses {
		t.Errorf("the third run wrote over the first run's file: %v, want %v", !reuses, reuses)
	}
	if got := content(t, dataset); got != `{"id": "third"}`+"\n" {
		t.Errorf("dataset = %.60q… (%d bytes): the spare's old bytes were not cut", got, len(got))
	}
	if got := content(t, filepath.Join(dir, RejectedFile)); got != `{"id": "r"}`+"\n" {
		t.Errorf("rejected = %q", got)
	}
}

// The previous set is what a training job or a person may be reading
// when the next runs start: whatever holds it keeps reading what it opened.
func TestASpareInUseIsNotWrittenOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold func(t *testing.T, path string) (read func() string)
	}{
		{"open", func(t *testing.T, path string) func() string {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return func() string {
				b := make([]byte, 20000)
				n, _ := f.ReadAt(b, 0)
				return string(b[:n])
			}
		}},
		{"mapped after its descriptor was closed", func(t *testing.T, path string) func() string {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := f.Stat()
			m, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Munmap(m) })
			return func() string { return string(m) }
		}},
		{"linked elsewhere", func(t *testing.T, path string) func() string {
			other := filepath.Join(t.TempDir(), "keep.jsonl")
			if err := os.Link(path, other); err != nil {
				t.Fatal(err)
			}
			return func() string { return content(t, other) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dataset := filepath.Join(dir, DatasetFile)
			writeOver(t, dir, true, long...)
			first := inode(t, dataset)
			want := content(t, dataset)
			read := tc.hold(t, dataset)
			writeOver(t, dir, true, `{"id": "second"}`)
			writeOver(t, dir, true, `{"id": "third"}`)
			if inode(t, dataset) == first {
				t.Error("the third run wrote over a file still in use")
			}
			if got := read(); got != want {
				t.Errorf("the holder now reads %.60q… (%d bytes), want the first set", got, len(got))
			}
			if got := content(t, dataset); got != `{"id": "third"}`+"\n" {
				t.Errorf("dataset = %q", got)
			}
		})
	}
}

// A kill between linking the spares and the commit leaves the spare a
// second name of the committed file; the next run must not write into it.
func TestASpareThatIsStillCommittedIsNotWrittenOver(t *testing.T) {
	dir := t.TempDir()
	dataset := filepath.Join(dir, DatasetFile)
	writeOver(t, dir, true, long...)
	want := content(t, dataset)
	st := &State{dir: dir}
	st.keepSpares() // as a kill at "spared" leaves them

	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(DatasetFile, []byte(`{"id": "next"}`))
	if _, err := w.Info(DatasetFile); err != nil { // flushes to the file
		t.Fatal(err)
	}
	if got := content(t, dataset); got != want {
		t.Errorf("a run in progress changed the committed dataset: %.60q…", got)
	}
	w.Abort(nil)
	if got := content(t, dataset); got != want {
		t.Errorf("an aborted run changed the committed dataset: %.60q…", got)
	}
}

func TestAnAbortedRunLeavesItsFileAsTheSpare(t *testing.T) {
	dir := t.TempDir()
	writeOver(t, dir, true, long...)
	writeOver(t, dir, true, `{"id": "second"}`)
	spare := filepath.Join(dir, StateDir, spareName, DatasetFile)
	first := inode(t, spare)
	writeOver(t, dir, false, `{"id": "aborted"}`)
	if got := inode(t, spare); got != first {
		t.Errorf("after an abort the spare is inode %d, want %d", got, first)
	}
	writeOver(t, dir, true, `{"id": "third"}`)
	if got := inode(t, filepath.Join(dir, DatasetFile)); (got == first) != reuses {
		t.Errorf("the run after an abort wrote over the spare: %v, want %v", !reuses, reuses)
	}
	if got := content(t, filepath.Join(dir, DatasetFile)); got != `{"id": "third"}`+"\n" {
		t.Errorf("dataset = %q", got)
	}
}

// A run that fills the disk gives back all the room it holds beyond the
// committed outputs: its staged file is not kept as a spare, and the
// spare of the run before last goes too. (By hand, on a 20 MB tmpfs: the
// failed run left 5.7 MB in .pgrules/spare and the disk at 100 %.)
func TestARunOnAFullDiskKeepsNoSpare(t *testing.T) {
	for _, cause := range []error{syscall.ENOSPC, syscall.EDQUOT} {
		dir := t.TempDir()
		writeOver(t, dir, true, long...)
		writeOver(t, dir, true, `{"id": "second"}`)
		want := content(t, filepath.Join(dir, DatasetFile))
		spares := filepath.Join(dir, StateDir, spareName)
		if _, err := os.Stat(filepath.Join(spares, DatasetFile)); err != nil {
			t.Fatalf("no spare before the run: %v", err)
		}
		w, err := Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(DatasetFile, []byte(long[0]))
		_, _ = w.Info(DatasetFile)
		w.Abort(&IOError{Op: "write", Path: filepath.Join(dir, StateDir, "staging", DatasetFile), Err: &os.PathError{Op: "write", Err: cause}})
		if _, err := os.Stat(spares); !os.IsNotExist(err) {
			entries, _ := os.ReadDir(spares)
			t.Errorf("%v: the spares are still there (%d file(s)); stat: %v", cause, len(entries), err)
		}
		if _, err := os.Stat(filepath.Join(dir, StateDir, "staging")); !os.IsNotExist(err) {
			t.Errorf("%v: the staging dir is still there: %v", cause, err)
		}
		if got := content(t, filepath.Join(dir, DatasetFile)); got != want {
			t.Errorf("%v: the committed dataset changed: %q", cause, got)
		}
		writeOver(t, dir, true, `{"id": "after"}`) // and the next run works without them
		if got := content(t, filepath.Join(dir, DatasetFile)); got != `{"id": "after"}`+"\n" {
			t.Errorf("%v: the run after = %q", cause, got)
		}
	}
}

// The README says deleting .pgrules/spare is safe at any time.
func TestASpareDeletedIsNotMissed(t *testing.T) {
	dir := t.TempDir()
	writeOver(t, dir, true, long...)
	writeOver(t, dir, true, `{"id": "second"}`)
	if err := os.RemoveAll(filepath.Join(dir, StateDir, spareName)); err != nil {
		t.Fatal(err)
	}
	writeOver(t, dir, true, `{"id": "third"}`)
	if got := content(t, filepath.Join(dir, DatasetFile)); got != `{"id": "third"}`+"\n" {
		t.Errorf("dataset = %q", got)
	}
}
