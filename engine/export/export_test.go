package export

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSplits(t *testing.T) {
	s, err := ParseSplits("train=0.8, validation=0.1,test=0.1")
	if err != nil || fmt.Sprint(s) != "[{train 0.8} {validation 0.1} {test 0.1}]" {
		t.Errorf("ParseSplits = %v, %v", s, err)
	}
	for in, want := range map[string]string{
		"train=0.9":                 "sum to 0.9, not 1",
		"train=0.5,train=0.5":       `split "train" given twice`,
		"train":                     "is not NAME=FRACTION",
		"Train=1":                   "use lowercase letters",
		"train=1.5,validation=-0.5": "must be a number in (0, 1]",
		"train=x":                   "must be a number",
	} {
		if _, err := ParseSplits(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSplits(%q) = %v, want %q", in, err, want)
		}
	}
}

// Shares come out as asked over many ids, each id keeps its split, and
// another seed is another split.
func TestAssignIsStableAndFair(t *testing.T) {
	splits := []Split{{"train", 0.9}, {"validation", 0.1}}
	const n = 100000
	count := [2]int{}
	moved := 0
	for i := range n {
		id := fmt.Sprintf("v1_checklist_budgeting_%06d", i)
		a := Assign(id, 1, splits)
		if Assign(id, 1, splits) != a {
			t.Fatalf("%s: two splits", id)
		}
		if Assign(id, 2, splits) != a {
			moved++
		}
		count[a]++
	}
	if share := float64(count[1]) / n; math.Abs(share-0.1) > 0.005 {
		t.Errorf("validation share %.4f, want 0.1 ± 0.005", share)
	}
	if moved < n/10 {
		t.Errorf("another seed moved only %d ids", moved)
	}
}

// An edited dataset is not exported under the manifest's provenance, and
// the failed export leaves nothing behind.
func TestEditedDatasetIsRefused(t *testing.T) {
	dir := t.TempDir()
	line := `{"id": "a", "category": "c", "response": {"x": 1}, "teacher": {"provider": "p"}, "quality": {"overall_ok": true, "gates": {}}}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "dataset_v1.jsonl"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	man := `{"run_id": "r", "outputs": {"dataset": {"sha256": "0000000000000000000000000000000000000000000000000000000000000000"}}}`
	if err := os.WriteFile(filepath.Join(dir, "dataset_v1_manifest.json"), []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "hf")
	_, err := Run(context.Background(), Options{OutDir: dir, Dest: dest, Format: "parquet"})
	if err == nil || !strings.Contains(err.Error(), "does not match the sha256") {
		t.Errorf("err = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 0 {
		t.Errorf("a failed export left %v", entries)
	}
}

// Ctrl-C (a cancelled context) leaves the previous export as it was and
// no temporary files beside it.
func TestInterruptedExportLeavesThePreviousOne(t *testing.T) {
	dir := t.TempDir()
	line := `{"id": "a", "category": "c", "response": {"x": 1}, "teacher": {"provider": "p"}, "quality": {"overall_ok": true, "gates": {}}}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "dataset_v1.jsonl"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dataset_v1_manifest.json"), []byte(`{"run_id": "r"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dest := filepath.Join(parent, "hf")
	if _, err := Run(context.Background(), Options{OutDir: dir, Dest: dest, Format: "jsonl"}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dest, "data", "train-00000-of-00001.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, Options{OutDir: dir, Dest: dest, Format: "parquet"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	after, err := os.ReadFile(filepath.Join(dest, "data", "train-00000-of-00001.jsonl"))
	if err != nil || string(after) != string(before) {
		t.Errorf("the previous export changed: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("left beside the export: %v", entries)
	}
}
