package output

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// commitMixed commits a run whose records have every kind of head: a
// category, reason codes (a teacher failure among them), none.
func commitMixed(t *testing.T, dir, tag string) {
	t.Helper()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		switch i % 5 {
		case 0:
			w.Write(RejectedFile, []byte(fmt.Sprintf(`{"id": "%s%d", "reason_codes": ["teacher_error"], "run": %q}`, tag, i, tag)))
		case 1:
			w.Write(RejectedFile, []byte(fmt.Sprintf(`{"id": "%s%d", "reason_codes": ["parse_failed", "overconfident_time_sensitive"], "run": %q}`, tag, i, tag)))
		case 2:
			w.Write(DatasetFile, []byte(fmt.Sprintf(`{"id": "%s%d", "run": %q}`, tag, i, tag)))
		default:
			w.Write(DatasetFile, []byte(fmt.Sprintf(`{"id": "%s%d", "category": "caf\u00e9 %d", "run": %q}`, tag, i, i%3, tag)))
		}
	}
	if err := w.Commit(docs(tag)); err != nil {
		t.Fatal(err)
	}
}

// priorOf reads dir's previous outputs and says whether a record file
// was read for it.
func priorOf(t *testing.T, dir string) (p *Prior, readFiles bool) {
	t.Helper()
	before := fileReads.Load()
	p, err := ReadPrior(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, fileReads.Load() != before
}

// view is everything a reader gets from a Prior.
func view(t *testing.T, p *Prior) []string {
	t.Helper()
	var out []string
	for i, r := range p.Records {
		line, err := p.Line(i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %+v %+v %s", p.ID(i), r, p.Head(i), line))
	}
	return append(out, p.Problems...)
}

func TestHeadsReadInsteadOfTheFiles(t *testing.T) {
	dir := t.TempDir()
	commitMixed(t, dir, "A")
	fromHeads, read := priorOf(t, dir)
	if read {
		t.Fatal("the record files were read although the commit kept their heads")
	}
	for _, name := range RecordFiles {
		os.Remove(filepath.Join(dir, StateDir, name+headsSuffix))
	}
	fromFiles, read := priorOf(t, dir)
	if !read {
		t.Fatal("without heads, the record files were not read")
	}
	if d := firstDifference(view(t, fromHeads), view(t, fromFiles)); d != "" {
		t.Errorf("from the heads, not from the files: %s", d)
	}
}

// Heads that are not exactly those of the committed files are never used.
func TestHeadsThatDoNotFitAreNotUsed(t *testing.T) {
	heads := func(dir string) string { return filepath.Join(dir, StateDir, DatasetFile+headsSuffix) }
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
	}{
		{"a byte changed", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(heads(dir))
			b[3] ^= 1
			os.WriteFile(heads(dir), b, 0o644)
		}},
		{"cut short", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(heads(dir))
			os.WriteFile(heads(dir), b[:len(b)-5], 0o644)
		}},
		{"of the commit before", func(t *testing.T, dir string) {
			old := filepath.Join(t.TempDir(), "old")
			b, _ := os.ReadFile(heads(dir))
			os.WriteFile(old, b, 0o644)
			commitMixed(t, dir, "B")
			b, _ = os.ReadFile(old)
			os.WriteFile(heads(dir), b, 0o644)
		}},
		{"the record file edited", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, DatasetFile), os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(`{"id": "by hand", "category": "x"}` + "\n")
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			commitMixed(t, dir, "A")
			tc.spoil(t, dir)
			got, read := priorOf(t, dir)
			if !read {
				t.Fatal("heads that do not fit were used")
			}
			for _, name := range RecordFiles {
				os.Remove(filepath.Join(dir, StateDir, name+headsSuffix))
			}
			want, _ := priorOf(t, dir)
			if d := firstDifference(view(t, got), view(t, want)); d != "" {
				t.Errorf("a Prior read past spoilt heads differs from one read from the files: %s", d)
			}
		})
	}
}

// firstDifference names the first entry two views differ at ("": none).
func firstDifference(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("entry %d is\n%q, want\n%q", i, g, w)
		}
	}
	return ""
}
