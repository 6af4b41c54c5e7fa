package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestGenerateIsDeterministicAndJoins(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := generate(500, a, 7); err != nil {
		t.Fatal(err)
	}
	if err := generate(500, b, 7); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, name := range []string{"prompt_plan_v1.jsonl", "drafts_v1.jsonl", "critiques_v1.jsonl"} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if string(x) != string(y) {
			t.Errorf("%s differs for the same seed", name)
		}
		f, _ := os.Open(filepath.Join(a, name))
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec struct{ ID string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.ID == "" {
				t.Fatalf("%s: bad line %v", name, err)
			}
			ids[rec.ID]++
		}
		f.Close()
	}
	if len(ids) != 500 {
		t.Errorf("%d distinct ids, want 500 (drafts and critiques join the plan)", len(ids))
	}
}
