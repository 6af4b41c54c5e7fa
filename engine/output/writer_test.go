package output

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriterCommitsAtomicallyAndAbortKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir); err == nil || !strings.Contains(err.Error(), "in use by another pgrules run") {
		t.Fatalf("second writer: %v", err)
	}
	w.Accepted(&Accepted{ID: "a", RegionTags: []string{}})
	w.Rejected(&Rejected{ID: "b", ReasonCodes: []string{"parse_failed"}})
	if _, err := os.Stat(filepath.Join(dir, DatasetFile)); !os.IsNotExist(err) {
		t.Fatal("the dataset is visible before Commit")
	}
	if err := w.Commit([]byte("{}\n"), []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, DatasetFile))

	w2, err := Create(dir) // the lock was released by Commit
	if err != nil {
		t.Fatal(err)
	}
	w2.Accepted(&Accepted{ID: "c"})
	w2.Abort()
	if now, _ := os.ReadFile(filepath.Join(dir, DatasetFile)); string(now) != string(first) {
		t.Error("an aborted run changed the committed dataset")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestReadPriorDropsTornAndDuplicateLines(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, DatasetFile), []byte(`{"id": "a"}`+"\n"+`{"id": "b"}`+"\n"+`{"id": "c", "resp`), 0o644)
	os.WriteFile(filepath.Join(dir, RejectedFile), []byte(`{"id": "b", "reason_codes": ["x"]}`+"\n"+`{"id": "d", "reason_codes": ["parse_failed"]}`+"\n"), 0o644)
	p, err := ReadPrior(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Records) != 3 || p.Records[p.ByID["d"]].ReasonCodes[0] != "parse_failed" || !p.Records[p.ByID["b"]].Accepted {
		t.Errorf("records %+v", p.Records)
	}
	joined := strings.Join(p.Problems, "\n")
	if !strings.Contains(joined, "dataset_v1.jsonl:3: torn last line") || !strings.Contains(joined, `dataset_v1_rejected.jsonl:1: id "b" is already in the dataset`) {
		t.Errorf("problems:\n%s", joined)
	}
	line, err := p.Records[p.ByID["d"]].Line()
	if err != nil || string(line) != `{"id": "d", "reason_codes": ["parse_failed"]}` {
		t.Errorf("Line = %q, %v", line, err)
	}
}
