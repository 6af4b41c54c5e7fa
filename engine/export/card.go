package export

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pgrules/pgrules/engine/output"
	enginestats "github.com/pgrules/pgrules/engine/stats"
)

type stats struct {
	Gates map[string]struct {
		Action    string  `json:"action"`
		Evaluated int     `json:"evaluated"`
		Passed    int     `json:"passed"`
		PassRate  float64 `json:"pass_rate"`
	} `json:"gate_pass_rates"`
	Reasons      map[string]int          `json:"rejection_reasons"`
	Models       map[string]int          `json:"teacher_models"`
	PayloadTypes map[string]int          `json:"payload_types"`
	Categories   map[string]int          `json:"categories"`
	Duplicates   *enginestats.Duplicates `json:"duplicate_responses"`
}

// sizeCategory is Hugging Face's size_categories bucket.
func sizeCategory(n int) string {
	switch {
	case n < 1000:
		return "n<1K"
	case n < 10_000:
		return "1K<n<10K"
	case n < 100_000:
		return "10K<n<100K"
	case n < 1_000_000:
		return "100K<n<1M"
	case n < 10_000_000:
		return "1M<n<10M"
	default:
		return "10M<n<100M"
	}
}

// features is the Parquet schema as a card's dataset_info.features.
const features = `  features:
  - name: id
    dtype: string
  - name: category
    dtype: string
  - name: difficulty
    dtype: string
  - name: region_tags
    sequence: string
  - name: payload_type
    dtype: string
  - name: template_version
    dtype: string
  - name: template_name
    dtype: string
  - name: prompt
    dtype: string
  - name: response
    dtype: string
  - name: teacher
    struct:
    - name: provider
      dtype: string
    - name: selected_model
      dtype: string
    - name: chosen_model
      dtype: string
    - name: attempted_models
      sequence: string
    - name: request_id
      dtype: string
    - name: latency_s
      dtype: float64
    - name: usage
      struct:
      - name: prompt_tokens
        dtype: int64
      - name: completion_tokens
        dtype: int64
      - name: total_tokens
        dtype: int64
    - name: cost_usd
      dtype: float64
    - name: finish_reason
      dtype: string
    - name: fallbacks
      list:
      - name: model
        dtype: string
      - name: status_code
        dtype: int32
      - name: error
        dtype: string
      - name: code
        dtype: string
  - name: quality
    struct:
    - name: overall_ok
      dtype: bool
    - name: gates
      dtype: string
    - name: warnings
      sequence: string
  - name: created_at
    dtype: string
`

func datasetCard(opt Options, man *output.ManifestView, statsDoc []byte, res *Result) string {
	var st stats
	_ = json.Unmarshal(statsDoc, &st)
	var b strings.Builder
	license := opt.License
	if license == "" {
		license = "unknown"
	}
	b.WriteString("---\n")
	fmt.Fprintf(&b, "license: %s\n", license)
	b.WriteString("task_categories:\n- text-generation\nlanguage:\n- en\ntags:\n- synthetic\n- pgrules\n")
	fmt.Fprintf(&b, "size_categories:\n- %s\n", sizeCategory(res.Total))
	b.WriteString("configs:\n- config_name: default\n  data_files:\n")
	for i, s := range opt.Splits {
		fmt.Fprintf(&b, "  - split: %s\n    path: %s\n", s.Name, res.Files[i])
	}
	if opt.Format == "parquet" {
		b.WriteString("dataset_info:\n" + features + "  splits:\n")
		for _, s := range opt.Splits {
			fmt.Fprintf(&b, "  - name: %s\n    num_examples: %d\n", s.Name, res.Counts[s.Name])
		}
	}
	b.WriteString("---\n\n" + marker + "\n\n")

	name := opt.Name
	if name == "" {
		name = "Refined travel-guide answers"
	}
	fmt.Fprintf(&b, "# %s\n\n", name)
	fmt.Fprintf(&b, "%d refined answers accepted by declarative quality gates, out of %d input samples, exported by `pgrules export` from run `%s` (%s, pgrules %s, %s gating).\n\n",
		res.Total, man.Counts["total_inputs"], man.RunID, man.CreatedAt, man.PgrulesVersion, man.GatingMode)
	if man.Health.Healthy != nil && !*man.Health.Healthy {
		b.WriteString("**Warning: this run was unhealthy and committed with `--allow-unhealthy`; see its manifest.**\n\n")
	}

	b.WriteString("## Splits\n\n| split | rows | share asked |\n|---|---|---|\n")
	for _, s := range opt.Splits {
		fmt.Fprintf(&b, "| %s | %d | %g |\n", s.Name, res.Counts[s.Name], s.Fraction)
	}
	fmt.Fprintf(&b, "\nA record's split is a hash of the seed (%d) and its id: the same id is in the same split in every export with this seed, however the dataset grows.\n\n", opt.Seed)

	b.WriteString("## Fields\n\n")
	if opt.Format == "messages" {
		system := ""
		if opt.SystemMessage != "" {
			system = fmt.Sprintf("a `system` turn (%q), then ", opt.SystemMessage)
		}
		fmt.Fprintf(&b, "`messages`, one conversation a line, for chat fine-tuning: %sthe `user` turn, the record's `prompt` (the generation prompt), and the `assistant` turn, its `response` (the refined answer: a JSON object, as text). Each record's other fields are in the run's `dataset_v1.jsonl`, whose sha256 is below.\n\n", system)
	} else {
		b.WriteString("`id`, `category`, `difficulty`, `region_tags`, `payload_type` (checklist, itinerary, decision_tree, procedure), `template_version`, `template_name`, `prompt` (the generation prompt), `response` (the refined answer: a JSON object, as text), `teacher` (provider, models, request id, latency, token usage, cost, finish reason, fallbacks), `quality` (`overall_ok`, every gate's verdict as JSON text, shadow-gate warnings), `created_at`.\n\n")
	}

	b.WriteString("## Provenance\n\n| what | sha256 |\n|---|---|\n")
	keys := make([]string, 0, len(man.Inputs))
	for k := range man.Inputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in := man.Inputs[k]
		fmt.Fprintf(&b, "| input %s `%s` (%d records) | `%s` |\n", k, filepath.Base(in.Path), in.Records, in.SHA256)
	}
	for _, f := range man.Rules.Files {
		fmt.Fprintf(&b, "| %s `%s` | `%s` |\n", f.Kind, f.Path, f.SHA256)
	}
	if man.Template.SHA256 != "" {
		fmt.Fprintf(&b, "| refine template `%s` | `%s` |\n", filepath.Base(man.Template.Path), man.Template.SHA256)
	}
	if man.SystemSHA256 != "" {
		fmt.Fprintf(&b, "| system message | `%s` |\n", man.SystemSHA256)
	}
	fmt.Fprintf(&b, "| teacher plugin `%s` %s | `%s` |\n", man.Provider.Name, man.Provider.Version, man.Provider.SHA256)
	fmt.Fprintf(&b, "| the accepted records (`dataset_v1.jsonl`) | `%s` |\n\n", man.Outputs["dataset"].SHA256)

	if len(st.Models) > 0 {
		b.WriteString("Teacher models (answers): ")
		var ms []string
		for _, m := range sortedKeys(st.Models) {
			ms = append(ms, fmt.Sprintf("`%s` (%d)", m, st.Models[m]))
		}
		b.WriteString(strings.Join(ms, ", ") + ".\n\n")
	}

	if len(st.Gates) > 0 {
		b.WriteString("## Quality gates\n\n| gate | action | pass rate | passed / evaluated |\n|---|---|---|---|\n")
		for _, g := range sortedKeys(st.Gates) {
			r := st.Gates[g]
			fmt.Fprintf(&b, "| %s | %s | %.1f%% | %d / %d |\n", g, r.Action, 100*r.PassRate, r.Passed, r.Evaluated)
		}
		b.WriteString("\n")
	}
	if len(st.Reasons) > 0 {
		fmt.Fprintf(&b, "Rejected (%d samples, not in this dataset), by reason: ", man.Counts["rejected"])
		var rs []string
		for _, r := range sortedKeys(st.Reasons) {
			rs = append(rs, fmt.Sprintf("`%s` %d", r, st.Reasons[r]))
		}
		b.WriteString(strings.Join(rs, ", ") + ".\n")
	}
	if opt.DropRepeats {
		fmt.Fprintf(&b, "\n**Repeated responses:** %d record(s) whose response repeats an earlier record's byte for byte were left out (`pgrules export --drop-repeats`, keeping the first in the dataset's order): every response here is distinct.\n", res.Dropped)
	} else if d := st.Duplicates; d != nil && d.Records > 0 {
		// A reader of the card trains on the data: a repeat weighs twice.
		var pairs []string
		for _, p := range d.First {
			pairs = append(pairs, fmt.Sprintf("`%s` is `%s`", p.ID, p.SameAs))
		}
		more := ""
		if d.Records > len(d.First) {
			more = ", …"
		}
		fmt.Fprintf(&b, "\n**Repeated responses:** %d record(s) repeat an earlier record's response byte for byte (%s%s; all counted in the run's dataset_v1_stats.json, `duplicate_responses`).\n", d.Records, strings.Join(pairs, ", "), more)
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
