package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateIsDeterministicAndJoins(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	refs, err := loadReference("../../testdata/reference/sample_accepted_v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := generate(500, a, 7, refs); err != nil {
		t.Fatal(err)
	}
	if err := generate(500, b, 7, refs); err != nil {
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
	// Real shapes: the sizes the benchmark claims, and all payload types.
	for name, want := range map[string][2]int{"prompt_plan_v1.jsonl": {1800, 2600}, "drafts_v1.jsonl": {6000, 10000}, "critiques_v1.jsonl": {700, 1200}} {
		st, _ := os.Stat(filepath.Join(a, name))
		lines := 0
		data, _ := os.ReadFile(filepath.Join(a, name))
		for _, c := range data {
			if c == '\n' {
				lines++
			}
		}
		if avg := int(st.Size()) / lines; avg < want[0] || avg > want[1] {
			t.Errorf("%s: %d bytes a line, want %d..%d", name, avg, want[0], want[1])
		}
	}
	plan, _ := os.ReadFile(filepath.Join(a, "prompt_plan_v1.jsonl"))
	for _, pt := range []string{"checklist", "itinerary", "decision_tree", "procedure"} {
		if !strings.Contains(string(plan), `"payload_type":"`+pt+`"`) {
			t.Errorf("no %s in the corpus", pt)
		}
	}
}
