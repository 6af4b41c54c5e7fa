package output

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// commitWithSums commits a run whose manifest holds its record files'
// sums, as a real run's does.
func commitWithSums(t *testing.T, dir, tag string) {
	t.Helper()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(DatasetFile, []byte(fmt.Sprintf(`{"id": "a", "run": %q}`, tag)))
	w.Write(RejectedFile, []byte(fmt.Sprintf(`{"id": "b", "reason_codes": ["x"], "run": %q}`, tag)))
	ds, err := w.Info(DatasetFile)
	if err != nil {
		t.Fatal(err)
	}
	rj, err := w.Info(RejectedFile)
	if err != nil {
		t.Fatal(err)
	}
	man := fmt.Sprintf(`{"outputs": {"dataset": {"sha256": %q}, "rejected": {"sha256": %q}}}`+"\n", ds.SHA256, rj.SHA256)
	if err := w.Commit(map[string][]byte{StatsFile: []byte("{}\n"), ManifestFile: []byte(man)}); err != nil {
		t.Fatal(err)
	}
}

func priorProblems(t *testing.T, dir string, pre bool) string {
	t.Helper()
	var ph *Prehash
	if pre {
		ph = StartPrehash(dir)
	}
	p, err := ReadPriorWith(dir, nil, ph)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	return strings.Join(p.Problems, "\n")
}

// The reader takes the sum the commit recorded: a recorded sum that is
// wrong (here planted) is what it reports, though the file is intact.
func TestARecordedFileIsNotHashedAgain(t *testing.T) {
	dir := t.TempDir()
	commitWithSums(t, dir, "A")
	if probs := priorProblems(t, dir, true); probs != "" {
		t.Fatalf("an untouched out dir: %s", probs)
	}
	path := filepath.Join(dir, StateDir, fingerprintFile)
	var fp fingerprints
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &fp) != nil || len(fp.Files) != len(RecordFiles) {
		t.Fatalf("fingerprints after a commit: %+v, %v", fp, err)
	}
	f := fp.Files[DatasetFile]
	f.SHA256 = strings.Repeat("0", 64)
	fp.Files[DatasetFile] = f
	b, _ := json.Marshal(fp)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pre := range []bool{true, false} {
		if probs := priorProblems(t, dir, pre); !strings.Contains(probs, DatasetFile+" does not match") {
			t.Errorf("prehash %v: the recorded sum was not used (problems: %q)", pre, probs)
		}
	}
}

// Whatever is done to a committed file, the reader still notices it.
func TestAnEditedFileIsHashedAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, path string)
	}{
		{"a byte changed at once, same size", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("Z"), 8); err != nil {
				t.Fatal(err)
			}
		}},
		{"a byte changed and the modification time put back", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("Z"), 8)
			f.Close()
			if err := os.Chtimes(path, time.Time{}, fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}},
		{"a line appended", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(`{"id": "by hand"}` + "\n")
			f.Close()
		}},
		{"replaced by another file of the same size", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[8] = 'Z'
			tmp := path + ".new"
			os.WriteFile(tmp, b, 0o644)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Several commits, each edited the instant it returns: an edit
			// must not hide in the tick of the files' last write.
			for i := range 5 {
				dir := t.TempDir()
				commitWithSums(t, dir, fmt.Sprint(i))
				tc.edit(t, filepath.Join(dir, DatasetFile))
				for _, pre := range []bool{true, false} {
					if probs := priorProblems(t, dir, pre); !strings.Contains(probs, DatasetFile+" does not match") {
						t.Fatalf("commit %d, prehash %v: the edit went unnoticed (problems: %q)", i, pre, probs)
					}
				}
			}
		})
	}
}

// The README says the commit waits until the clock of file times has
// passed the last write: a tiny run's commit returns no sooner.
func TestCommitWaitsPastTheLastWrite(t *testing.T) {
	for i := range 5 {
		dir := t.TempDir()
		commitWithSums(t, dir, fmt.Sprint(i))
		done := time.Now()
		for _, name := range RecordFiles {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if gap := done.Sub(fi.ModTime()); gap < timeTick {
				t.Fatalf("commit %d returned %v after %s was last written, want at least %v", i, gap, name, timeTick)
			}
		}
	}
}
