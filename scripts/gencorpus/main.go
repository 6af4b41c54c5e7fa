// Command gencorpus writes a large synthetic corpus (prompt plan, drafts,
// critiques) in the original pipeline's formats, for benchmarks:
//
//	go run ./scripts/gencorpus -n 100000 -out /tmp/corpus
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
	payloadTypes = []string{"checklist", "itinerary", "decision_tree", "procedure"}
	categories   = []string{"budgeting", "safety", "transport", "entry_requirements", "local_customs", "accommodation", "itinerary_planning"}
	difficulties = []string{"easy", "medium", "hard"}
	places       = [][3]string{{"Lisbon", "Portugal", "EU"}, {"Kyoto", "Japan", "APAC"}, {"Miami", "United States", "NA"}, {"Lima", "Peru", "LATAM"}, {"Cape Town", "South Africa", "AFRICA"}, {"Dubai", "United Arab Emirates", "MEA"}}
)

func main() {
	n := flag.Int("n", 100000, "number of samples")
	out := flag.String("out", "corpus", "output directory")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same corpus)")
	flag.Parse()
	if err := generate(*n, *out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gencorpus:", err)
		os.Exit(1)
	}
}

type files struct {
	plan, drafts, crit *bufio.Writer
	closers            []*os.File
}

func generate(n int, dir string, seed uint64) error {
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
	filler := strings.Repeat("Consider local transport passes, book popular sights ahead, and keep copies of documents. ", 12)
	for i := range n {
		pt := payloadTypes[i%len(payloadTypes)]
		cat := categories[rng.IntN(len(categories))]
		pl := places[rng.IntN(len(places))]
		id := fmt.Sprintf("v1_%s_%s_%06d", pt, cat, i)
		prompt := fmt.Sprintf("You are an expert travel planning assistant creating a %s.\n\nUser Profile: Couple, mid-range budget\nDestination: %s, %s\nCategory: %s\nDifficulty: %s\n\n%s\nOutput JSON only. No prose. No markdown.\n",
			strings.ReplaceAll(pt, "_", " "), pl[0], pl[1], cat, difficulties[i%3], filler)
		if err := write(fs.plan, map[string]any{
			"id": id, "payload_type": pt, "category": cat, "difficulty": difficulties[i%3], "region_tags": []string{pl[2]},
			"template_version": "teacher/v1", "template_name": pt + "_draft.txt", "prompt": prompt,
			"location": map[string]string{"country": pl[1], "city": pl[0], "region": pl[2]}, "created_by": "gencorpus", "seed": i,
		}); err != nil {
			return err
		}
		if rng.IntN(200) != 0 { // 0.5 % of drafts are missing
			draft, _ := json.Marshal(map[string]any{
				"summary": "Draft plan for " + pl[0] + ". " + filler, "assumptions": []string{"Spring"}, "uncertainty_notes": "",
				"next_steps": []string{"Book"}, "verification_steps": []string{}, "payload_type": pt, "payload": map[string]any{"title": pl[0], "notes": filler + filler},
			})
			if err := write(fs.drafts, map[string]any{"id": id, "prompt_plan": map[string]any{"payload_type": pt, "category": cat}, "prompt": prompt,
				"teacher": map[string]any{"provider": "openrouter", "selected_model": "x-ai/grok-4.1-fast"}, "output_text": string(draft),
				"contract": map[string]any{"overall_ok": true, "payload_type": pt}, "created_at": "2026-01-31T08:00:00.000000+00:00"}); err != nil {
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
		case r < 13:
			verdict = "revise"
		}
		if err := write(fs.crit, map[string]any{"id": id, "draft_id": id, "critique": map[string]any{
			"id": id, "verdict": verdict, "issues": []any{map[string]any{"type": "verification", "severity": "medium", "message": "Add verification steps for fees."}},
			"scores":               map[string]int{"actionability": 4, "clarity": 4, "schema_compliance": 4, "safety_risk": 5},
			"hallucination":        map[string]any{"risk_level": "low", "risky_claims": []string{}, "rationale": "ok"},
			"verification":         map[string]any{"missing_when_needed": true, "suggested_steps": []string{"Check the embassy site"}},
			"schema":               map[string]any{"envelope_ok": true, "payload_ok": false, "notes": "", "missing_fields": []string{}},
			"rewrite_instructions": []string{"Add verification steps.", "Fill uncertainty_notes."},
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
