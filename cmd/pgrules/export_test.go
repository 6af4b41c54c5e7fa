package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pgrules/pgrules/engine/export"
	enginestats "github.com/pgrules/pgrules/engine/stats"
)

// nodeModules is the node_modules directory where scripts/test-deps.sh
// installed pkg ($PGRULES_NODE_DIR, default ~/.cache/pgrules-test/node).
func nodeModules(t *testing.T, pkg string) string {
	t.Helper()
	dir := os.Getenv("PGRULES_NODE_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "pgrules-test", "node")
	}
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, filepath.FromSlash(pkg))); err != nil {
		t.Fatalf("no %s in %s: run scripts/test-deps.sh (or set PGRULES_NODE_DIR)", pkg, dir)
	}
	return modules
}

// duckdb runs testdata/duckdb_read.cjs with the @duckdb/node-api that
// scripts/test-deps.sh installs.
func duckdb(t *testing.T, glob string) []byte {
	t.Helper()
	modules := nodeModules(t, "@duckdb/node-api")
	script, _ := filepath.Abs("testdata/duckdb_read.cjs")
	cmd := exec.Command("node", script, glob)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, stderr.String())
	}
	return out
}

// The export read back by DuckDB: every accepted record once, in the split
// its id hashes to, with its values; the card describes the files.
func TestExportParquetReadByDuckDB(t *testing.T) {
	bin := buildPgrules(t)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	pg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgrules %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	repo, _ := filepath.Abs("../..")
	pg(sampleArgs(t, out, "--critiques", filepath.Join(repo, "testdata/sample/critiques_v1.jsonl"))...)
	dest := filepath.Join(work, "hf")
	splits := "train=0.6,validation=0.4"
	printed := pg("export", out, "-o", dest, "--split", splits, "--seed", "7", "--license", "cc-by-4.0")

	// What the records say.
	type rec struct {
		ID          string          `json:"id"`
		Category    string          `json:"category"`
		Difficulty  string          `json:"difficulty"`
		RegionTags  []string        `json:"region_tags"`
		PayloadType string          `json:"payload_type"`
		Prompt      string          `json:"prompt"`
		Response    json.RawMessage `json:"response"`
		Teacher     struct {
			Provider        string   `json:"provider"`
			ChosenModel     string   `json:"chosen_model"`
			AttemptedModels []string `json:"attempted_models"`
			Timing          struct {
				LatencyS float64 `json:"latency_s"`
			} `json:"timing"`
			Usage struct {
				TotalTokens int `json:"total_tokens"`
			} `json:"usage"`
		} `json:"teacher"`
		CreatedAt string `json:"created_at"`
	}
	var recs []rec
	for _, l := range strings.Split(strings.TrimSpace(string(must(os.ReadFile(filepath.Join(out, "dataset_v1.jsonl"))))), "\n") {
		var r rec
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	parsed, _ := export.ParseSplits(splits)
	wantFiles := map[string]int{}
	for _, r := range recs {
		wantFiles[parsed[export.Assign(r.ID, 7, parsed)].Name+"-00000-of-00001.parquet"]++
	}
	if len(wantFiles) != 2 {
		t.Fatalf("the sample should fill both splits: %v", wantFiles)
	}

	// What DuckDB reads.
	var got struct {
		Files []struct {
			File string `json:"file"`
			Rows int    `json:"rows"`
		} `json:"files"`
		Columns []string `json:"columns"`
		Rows    []struct {
			File            string   `json:"file"`
			ID              string   `json:"id"`
			Category        string   `json:"category"`
			Difficulty      string   `json:"difficulty"`
			RegionTags      []string `json:"region_tags"`
			PayloadType     string   `json:"payload_type"`
			Prompt          string   `json:"prompt"`
			Response        string   `json:"response"`
			Provider        string   `json:"provider"`
			ChosenModel     string   `json:"chosen_model"`
			AttemptedModels []string `json:"attempted_models"`
			LatencyS        float64  `json:"latency_s"`
			TotalTokens     int      `json:"total_tokens"`
			Fallbacks       int      `json:"fallbacks"`
			OverallOK       bool     `json:"overall_ok"`
			ContractOK      bool     `json:"contract_ok"`
			CreatedAt       string   `json:"created_at"`
		} `json:"rows"`
	}
	raw := duckdb(t, filepath.Join(dest, "data", "*.parquet"))
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	gotFiles := map[string]int{}
	for _, f := range got.Files {
		gotFiles[f.File] = f.Rows
	}
	if fmt.Sprint(gotFiles) != fmt.Sprint(wantFiles) {
		t.Errorf("rows per file = %v, want %v", gotFiles, wantFiles)
	}
	for _, c := range []string{"region_tags VARCHAR[]", "teacher STRUCT(provider VARCHAR, selected_model VARCHAR, chosen_model VARCHAR, attempted_models VARCHAR[], request_id VARCHAR, latency_s DOUBLE, usage STRUCT(prompt_tokens BIGINT, completion_tokens BIGINT, total_tokens BIGINT)",
		"quality STRUCT(overall_ok BOOLEAN, gates VARCHAR, warnings VARCHAR[])", "response VARCHAR"} {
		if !strings.Contains(strings.Join(got.Columns, "\n"), c) {
			t.Errorf("no column %q in %q", c, got.Columns)
		}
	}
	if len(got.Rows) != len(recs) {
		t.Fatalf("DuckDB read %d rows, the dataset has %d", len(got.Rows), len(recs))
	}
	for i, g := range got.Rows {
		r := recs[i]
		if g.ID != r.ID || g.Category != r.Category || g.Difficulty != r.Difficulty || fmt.Sprint(g.RegionTags) != fmt.Sprint(r.RegionTags) ||
			g.PayloadType != r.PayloadType || g.Prompt != r.Prompt || g.Response != string(r.Response) || g.Provider != r.Teacher.Provider ||
			g.ChosenModel != r.Teacher.ChosenModel || fmt.Sprint(g.AttemptedModels) != fmt.Sprint(r.Teacher.AttemptedModels) ||
			g.LatencyS != r.Teacher.Timing.LatencyS || g.TotalTokens != r.Teacher.Usage.TotalTokens || g.Fallbacks != 0 ||
			!g.OverallOK || !g.ContractOK || g.CreatedAt != r.CreatedAt {
			t.Errorf("row %s differs from its record:\n got %+v\nwant %+v", r.ID, g, r)
		}
		if want := parsed[export.Assign(r.ID, 7, parsed)].Name + "-00000-of-00001.parquet"; g.File != want {
			t.Errorf("%s is in %s, its id hashes to %s", r.ID, g.File, want)
		}
	}

	// The card: front matter a dataset loader reads, provenance from the
	// manifest.
	card := string(must(os.ReadFile(filepath.Join(dest, "README.md"))))
	front, _, ok := strings.Cut(strings.TrimPrefix(card, "---\n"), "\n---\n")
	if !ok {
		t.Fatalf("card has no front matter:\n%s", card)
	}
	var meta struct {
		License string   `yaml:"license"`
		Tasks   []string `yaml:"task_categories"`
		Sizes   []string `yaml:"size_categories"`
		Configs []struct {
			Name  string `yaml:"config_name"`
			Files []struct {
				Split string `yaml:"split"`
				Path  string `yaml:"path"`
			} `yaml:"data_files"`
		} `yaml:"configs"`
		Info struct {
			Features []struct {
				Name string `yaml:"name"`
			} `yaml:"features"`
			Splits []struct {
				Name     string `yaml:"name"`
				Examples int    `yaml:"num_examples"`
			} `yaml:"splits"`
		} `yaml:"dataset_info"`
	}
	if err := yaml.Unmarshal([]byte(front), &meta); err != nil {
		t.Fatalf("front matter: %v\n%s", err, front)
	}
	if meta.License != "cc-by-4.0" || meta.Tasks[0] != "text-generation" || meta.Sizes[0] != "n<1K" || len(meta.Configs) != 1 || len(meta.Configs[0].Files) != 2 || len(meta.Info.Features) != 12 {
		t.Errorf("front matter: %+v", meta)
	}
	for i, f := range meta.Configs[0].Files {
		if _, err := os.Stat(filepath.Join(dest, f.Path)); err != nil {
			t.Errorf("data_files %s: %v", f.Path, err)
		}
		if s := meta.Info.Splits[i]; s.Name != f.Split || s.Examples != wantFiles[f.Split+"-00000-of-00001.parquet"] {
			t.Errorf("split %+v, want %d examples", s, wantFiles[f.Split+"-00000-of-00001.parquet"])
		}
	}
	man := string(must(os.ReadFile(filepath.Join(out, "dataset_v1_manifest.json"))))
	var m struct {
		RunID  string `json:"run_id"`
		Inputs map[string]struct {
			SHA256 string `json:"sha256"`
		} `json:"inputs"`
	}
	_ = json.Unmarshal([]byte(man), &m)
	for _, want := range []string{m.RunID, m.Inputs["prompt_plan"].SHA256, m.Inputs["drafts"].SHA256, "| overconfidence_guard | reject | 74.1% | 20 / 27 |", "`dryrun-v1` (30)",
		"**Repeated responses:** 3 record(s) repeat an earlier record's response byte for byte (`v1_itinerary_transport_0009` is `v1_itinerary_accommodation_0004`, "} {
		if want == "" || !strings.Contains(card, want) {
			t.Errorf("card lacks %q", want)
		}
	}
	if !strings.Contains(printed, "validation") {
		t.Errorf("export printed:\n%s", printed)
	}

	// Deterministic: a second export is byte for byte the same.
	again := filepath.Join(work, "hf2")
	pg("export", out, "-o", again, "--split", splits, "--seed", "7", "--license", "cc-by-4.0")
	for f := range wantFiles {
		if !bytes.Equal(must(os.ReadFile(filepath.Join(dest, "data", f))), must(os.ReadFile(filepath.Join(again, "data", f)))) {
			t.Errorf("%s differs between two exports", f)
		}
	}

	// JSONL keeps the records' bytes; replacing an export is allowed,
	// replacing anything else is not.
	pg("export", out, "-o", dest, "--format", "jsonl", "--split", splits, "--seed", "7")
	var lines []string
	for f := range wantFiles {
		b := must(os.ReadFile(filepath.Join(dest, "data", strings.TrimSuffix(f, ".parquet")+".jsonl")))
		lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	orig := strings.Split(strings.TrimSpace(string(must(os.ReadFile(filepath.Join(out, "dataset_v1.jsonl"))))), "\n")
	sort.Strings(lines)
	sort.Strings(orig)
	if fmt.Sprint(lines) != fmt.Sprint(orig) {
		t.Error("the JSONL export's lines are not the dataset's")
	}
	if _, err := os.Stat(filepath.Join(dest, "data", "train-00000-of-00001.parquet")); err == nil {
		t.Error("the previous export's Parquet files survived the replacement")
	}

	// Messages: a conversation a record, in the shape chat fine-tuning
	// reads — the system turn when asked for, the prompt as the user's
	// turn, the response's very bytes as the assistant's.
	pg("export", out, "-o", dest, "--format", "messages", "--system-message", "You are PocketGuide <v1>.", "--split", splits, "--seed", "7")
	byPrompt := map[string][]string{}
	for _, l := range orig {
		var rec struct {
			Prompt   string          `json:"prompt"`
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		byPrompt[rec.Prompt] = append(byPrompt[rec.Prompt], string(rec.Response))
	}
	conversations := 0
	for f := range wantFiles {
		b := must(os.ReadFile(filepath.Join(dest, "data", strings.TrimSuffix(f, ".parquet")+".jsonl")))
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var c struct {
				Messages []struct{ Role, Content string } `json:"messages"`
			}
			if err := json.Unmarshal([]byte(l), &c); err != nil || len(c.Messages) != 3 {
				t.Fatalf("%s: not a conversation of 3 turns (%v): %.200s", f, err, l)
			}
			m := c.Messages
			if m[0].Role != "system" || m[0].Content != "You are PocketGuide <v1>." || m[1].Role != "user" || m[2].Role != "assistant" {
				t.Errorf("%s: turns %s/%q, %s, %s", f, m[0].Role, m[0].Content, m[1].Role, m[2].Role)
			}
			if !slices.Contains(byPrompt[m[1].Content], m[2].Content) {
				t.Errorf("%s: no record has this prompt with this response: %.120q → %.120q", f, m[1].Content, m[2].Content)
			}
			if strings.Contains(l, `\u003c`) {
				t.Errorf("%s: text HTML-escaped: %.200s", f, l)
			}
			conversations++
		}
	}
	if conversations != len(orig) {
		t.Errorf("%d conversations, %d records", conversations, len(orig))
	}
	card = string(must(os.ReadFile(filepath.Join(dest, "README.md"))))
	if !strings.Contains(card, "`messages`, one conversation a line, for chat fine-tuning: a `system` turn") || !strings.Contains(card, "path: data/train-00000-of-00001.jsonl") {
		t.Errorf("the messages export's card:\n%s", card)
	}
	if b, err := exec.Command(bin, "export", out, "-o", filepath.Join(work, "x"), "--system-message", "hi").CombinedOutput(); err == nil || !strings.Contains(string(b), "--system-message opens the conversations of --format messages") {
		t.Errorf("--system-message with parquet: %v %s", err, b)
	}

	// --drop-repeats leaves out exactly the repeats the run's stats name,
	// and keeps what they repeat.
	var st struct {
		Dups enginestats.Duplicates `json:"duplicate_responses"`
	}
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(out, "dataset_v1_stats.json"))), &st); err != nil || st.Dups.Records == 0 {
		t.Fatalf("the sample run's stats name no repeats (%v)", err)
	}
	pg("export", out, "-o", dest, "--format", "jsonl", "--drop-repeats", "--split", splits, "--seed", "7")
	kept := map[string]bool{}
	for f := range wantFiles {
		b := must(os.ReadFile(filepath.Join(dest, "data", strings.TrimSuffix(f, ".parquet")+".jsonl")))
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var rec struct{ ID string }
			_ = json.Unmarshal([]byte(l), &rec)
			kept[rec.ID] = true
		}
	}
	if len(kept) != len(orig)-st.Dups.Records {
		t.Errorf("--drop-repeats kept %d of %d records, the stats name %d repeats", len(kept), len(orig), st.Dups.Records)
	}
	for _, d := range st.Dups.First {
		if kept[d.ID] || !kept[d.SameAs] {
			t.Errorf("--drop-repeats: %s kept %v (a repeat), %s kept %v (its original)", d.ID, kept[d.ID], d.SameAs, kept[d.SameAs])
		}
	}
	if card := string(must(os.ReadFile(filepath.Join(dest, "README.md")))); !strings.Contains(card, fmt.Sprintf("**Repeated responses:** %d record(s) whose response repeats an earlier record's byte for byte were left out", st.Dups.Records)) {
		t.Errorf("the card does not say what --drop-repeats left out:\n%s", card)
	}
	other := filepath.Join(work, "mine")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "export", out, "-o", other)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "is not a pgrules export") {
		t.Errorf("export over a foreign directory: %v %s", err, b)
	}
	if string(must(os.ReadFile(filepath.Join(other, "notes.txt")))) != "mine" {
		t.Error("a foreign directory was touched")
	}
}
