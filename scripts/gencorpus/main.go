// Command gencorpus writes a large corpus (prompt plan, drafts, critiques)
// in the original pipeline's formats, shaped like real records, for
// benchmarks:
//
//	go run ./scripts/gencorpus -n 100000 -out /tmp/corpus
//
// The shapes come from the 20 real accepted records of the original
// pipeline (testdata/reference): each sample takes a real prompt (~1.7 KB)
// and a real refined answer (3.3–9.3 KB, time-sensitive vocabulary and
// all) as its draft, with small per-sample edits so no two samples are
// equal. Procedures, which the reference lacks, are rebuilt from the
// checklists' items. Sizes: plan ~2.2 KB, draft ~7.8 KB, critique ~0.9 KB
// a line.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

var (
	difficulties = []string{"easy", "medium", "hard"}
	places       = [][3]string{{"Lisbon", "Portugal", "EU"}, {"Kyoto", "Japan", "APAC"}, {"Miami", "United States", "NA"}, {"Lima", "Peru", "LATAM"}, {"Cape Town", "South Africa", "AFRICA"}, {"Dubai", "United Arab Emirates", "MEA"}}
)

func main() {
	n := flag.Int("n", 100000, "number of samples")
	out := flag.String("out", "corpus", "output directory")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same corpus)")
	ref := flag.String("reference", "testdata/reference/sample_accepted_v1.jsonl", "real accepted records to take shapes from")
	flag.Parse()
	refs, err := loadReference(*ref)
	if err == nil {
		err = generate(*n, *out, *seed, refs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencorpus:", err)
		os.Exit(1)
	}
}

// reference is one real accepted record, and its answer.
type reference struct {
	PayloadType string         `json:"payload_type"`
	Category    string         `json:"category"`
	Difficulty  string         `json:"difficulty"`
	RegionTags  []string       `json:"region_tags"`
	Prompt      string         `json:"prompt"`
	Response    map[string]any `json:"response"`
}

func loadReference(path string) ([]reference, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run from the repository root, or pass -reference)", err)
	}
	var refs []reference
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r reference
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		refs = append(refs, r)
	}
	// The reference has no procedure: make one from each checklist, its
	// items becoming steps, so all four payload types are in the corpus.
	for _, r := range refs {
		if r.PayloadType == "checklist" {
			refs = append(refs, procedureFrom(r))
		}
	}
	return refs, nil
}

func procedureFrom(r reference) reference {
	resp := map[string]any{}
	for k, v := range r.Response {
		resp[k] = v
	}
	payload, _ := r.Response["payload"].(map[string]any)
	var steps []any
	groups, _ := payload["groups"].([]any)
	for _, g := range groups {
		items, _ := g.(map[string]any)["items"].([]any)
		for _, it := range items {
			text, _ := it.(map[string]any)["text"].(string)
			steps = append(steps, map[string]any{"step": len(steps) + 1, "instruction": text})
		}
	}
	resp["payload_type"] = "procedure"
	resp["payload"] = map[string]any{"title": payload["title"], "steps": steps}
	r.Response, r.PayloadType = resp, "procedure"
	r.Prompt = strings.ReplaceAll(r.Prompt, "checklist", "procedure")
	return r
}

type files struct {
	plan, drafts, crit *bufio.Writer
	closers            []*os.File
}

func generate(n int, dir string, seed uint64, refs []reference) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var fs files
	open := func(name string) (*bufio.Writer, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		fs.closers = append(fs.closers, f)
		return bufio.NewWriterSize(f, 1<<20), nil
	}
	var err error
	if fs.plan, err = open("prompt_plan_v1.jsonl"); err != nil {
		return err
	}
	if fs.drafts, err = open("drafts_v1.jsonl"); err != nil {
		return err
	}
	if fs.crit, err = open("critiques_v1.jsonl"); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range n {
		r := refs[i%len(refs)]
		pl := places[rng.IntN(len(places))]
		id := fmt.Sprintf("v1_%s_%s_%06d", r.PayloadType, r.Category, i)
		// A per-sample edit, so every prompt and draft is its own.
		prompt := r.Prompt + fmt.Sprintf("\nSample %d: the traveller arrives in %s, %s.\n", i, pl[0], pl[1])
		if err := write(fs.plan, map[string]any{
			"id": id, "payload_type": r.PayloadType, "category": r.Category, "difficulty": difficulties[i%3], "region_tags": r.RegionTags,
			"template_version": "teacher/v1", "template_name": r.PayloadType + "_draft.txt", "prompt": prompt,
			"location": map[string]string{"country": pl[1], "city": pl[0], "region": pl[2]}, "created_by": "gencorpus", "seed": i,
		}); err != nil {
			return err
		}
		if rng.IntN(200) != 0 { // 0.5 % of drafts are missing
			resp := map[string]any{}
			for k, v := range r.Response {
				resp[k] = v
			}
			if s, ok := resp["summary"].(string); ok {
				resp["summary"] = fmt.Sprintf("%s (for sample %d, %s)", s, i, pl[0])
			}
			text, _ := json.Marshal(resp)
			if err := write(fs.drafts, map[string]any{"id": id, "prompt_plan": map[string]any{"payload_type": r.PayloadType, "category": r.Category, "difficulty": difficulties[i%3]}, "prompt": prompt,
				"teacher": map[string]any{"provider": "openrouter", "selected_model": "x-ai/grok-4.1-fast", "chosen_model": "x-ai/grok-4.1-fast"}, "output_text": string(text),
				"contract": map[string]any{"overall_ok": true, "payload_type": r.PayloadType, "strict_json_ok": true}, "created_at": "2026-01-31T08:00:00.000000+00:00"}); err != nil {
				return err
			}
		}
		if rng.IntN(100) == 0 { // 1 % have no critique
			continue
		}
		verdict := "pass"
		switch r := rng.IntN(100); {
		case r < 3:
			verdict = "reject"
		case r < 40:
			verdict = "revise"
		}
		if err := write(fs.crit, map[string]any{"id": id, "draft_id": id, "critique": map[string]any{
			"verdict": verdict, "issues": []any{
				map[string]any{"type": "verification", "severity": "medium", "message": "Add verification steps for visa fees and opening hours.", "evidence_path": "verification_steps"},
				map[string]any{"type": "actionability", "severity": "low", "message": "Give concrete times for the first day.", "evidence_path": "payload"},
			},
			"scores":               map[string]int{"actionability": 4, "clarity": 4, "schema_compliance": 4, "safety_risk": 5},
			"hallucination":        map[string]any{"risk_level": "low", "risky_claims": []string{}, "rationale": "Claims checked against general knowledge; prices and rules are time-sensitive."},
			"verification":         map[string]any{"missing_when_needed": true, "suggested_steps": []string{"Check the official embassy site", "Confirm fees with the operator"}},
			"schema":               map[string]any{"envelope_ok": true, "payload_ok": true, "notes": "", "missing_fields": []string{}},
			"rewrite_instructions": []string{"Add verification steps for entry rules and fees.", "Fill uncertainty_notes with what may change.", "Keep the payload schema valid."},
		}, "created_at": "2026-01-31T08:00:00.000000+00:00"}); err != nil {
			return err
		}
	}
	for _, w := range []*bufio.Writer{fs.plan, fs.drafts, fs.crit} {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	for _, f := range fs.closers {
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func write(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
