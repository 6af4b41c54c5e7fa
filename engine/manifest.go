package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"

	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/stats"
)

// Manifest is dataset_v1_manifest.json: enough provenance to tell exactly
// which inputs, rules, template, schemas and teacher made a dataset.
// Secrets never enter it: Config is redacted by the CLI before it gets here.
type Manifest struct {
	PgrulesVersion string          `json:"pgrules_version"`
	RunID          string          `json:"run_id"`
	CreatedAt      string          `json:"created_at"`
	GatingMode     string          `json:"gating_mode"`
	Inputs         map[string]any  `json:"inputs"`
	Rules          ManifestRules   `json:"rules"`
	Template       ManifestFile    `json:"template"`
	SystemSHA256   string          `json:"system_message_sha256"`
	Provider       ManifestPlugin  `json:"provider"`
	Config         json.RawMessage `json:"config"`
	Counts         map[string]int  `json:"counts"`
	// Outputs are the files of this run with their sha256, so a reader can
	// tell whether the files beside the manifest are the ones it describes.
	Outputs map[string]output.FileInfo `json:"outputs"`
	Cache   stats.Cache                `json:"cache"`
	Changes *Changes                   `json:"changes_since_previous,omitempty"`
	// Health is the run's health verdict; a committed unhealthy run
	// (--allow-unhealthy) says so here.
	Health Health `json:"health"`
	// Shard is set on a shard's run: which ids it took, and how.
	Shard *ManifestShard `json:"shard,omitempty"`
	// Shards lists, on a merge, the shard runs it gathered.
	Shards []MergedShard `json:"shards,omitempty"`
}

// ManifestShard is a shard run's share of the ids.
type ManifestShard struct {
	Shard
	Hash string `json:"hash"`
}

// MergedShard is one shard run a merge gathered.
type MergedShard struct {
	Dir            string `json:"dir"`
	Shard          Shard  `json:"shard"`
	RunID          string `json:"run_id"`
	CreatedAt      string `json:"created_at"`
	Accepted       int    `json:"accepted"`
	Rejected       int    `json:"rejected"`
	DatasetSHA256  string `json:"dataset_sha256"`
	RejectedSHA256 string `json:"rejected_sha256"`
	Healthy        bool   `json:"healthy"`
}

// ManifestFile is a file and its digest.
type ManifestFile struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Kind    string `json:"kind,omitempty"`
	Builtin bool   `json:"builtin,omitempty"`
}

// ManifestRules lists the gates file, word lists and schemas used.
type ManifestRules struct {
	Files          []ManifestFile    `json:"files"`
	SchemaVersions map[string]string `json:"schema_versions,omitempty"`
	Gates          []string          `json:"gates"`
}

// ManifestPlugin identifies the teacher backend binary.
type ManifestPlugin struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	Path     string          `json:"path"`
	SHA256   string          `json:"sha256"`
	Identity json.RawMessage `json:"identity,omitempty"`
}

func (m *Manifest) complete(opt Options, set *inputs.Set, res *Result, createdAt string, d Deps, statsFile output.FileInfo) {
	m.CreatedAt = createdAt
	if m.RunID == "" {
		// The run id is a function of the start time and what went in, so a
		// reproducible run (SOURCE_DATE_EPOCH) has a reproducible id.
		h := sha256.New()
		for _, f := range []*inputs.File{set.Plan, set.Drafts, set.Critiques} {
			if f != nil {
				h.Write([]byte(f.SHA256))
			}
		}
		h.Write(m.Config)
		m.RunID = opt.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(h.Sum(nil))[:8]
	}
	m.provenance(opt, set, d)
	s := res.Stats.Summary
	m.Counts = map[string]int{
		"total_inputs": s.TotalInputs, "accepted": s.Accepted, "rejected": s.Rejected,
		"resumed": s.Resumed, "processed_this_run": s.Processed, "input_problems": res.ProblemCount,
		"no_cached_answer": res.NoCachedAnswer,
	}
	m.Outputs = map[string]output.FileInfo{"dataset": res.Dataset, "rejected": res.Rejected, "stats": statsFile}
	m.Cache = res.Stats.Cache
	if res.Changes.HadPrevious {
		// Complete: the terminal shows a few ids per group, the manifest
		// every one of them.
		c := res.Changes
		m.Changes = &c
	}
	m.Health = res.Health
	if opt.Shard.Enabled() {
		m.Shard = &ManifestShard{Shard: opt.Shard, Hash: ShardHash}
	}
}

// provenance records what decided the records: the inputs, the rules,
// the template and system message, the gating mode and the provider's
// answer-changing settings. A --resume run compares it with the
// committed run's before it keeps a record (see checkResume).
func (m *Manifest) provenance(opt Options, set *inputs.Set, d Deps) {
	m.GatingMode = string(opt.Mode)
	m.Inputs = map[string]any{}
	for name, f := range map[string]*inputs.File{"prompt_plan": set.Plan, "drafts": set.Drafts, "critiques": set.Critiques} {
		if f != nil {
			in := map[string]any{"path": f.Path, "sha256": f.SHA256, "bytes": f.Bytes, "records": f.Records, "problems": f.ProblemCount}
			// Tools run later from elsewhere (explain, eval, report) find
			// the file by its absolute path; "path" stays as the user gave it.
			if abs, err := filepath.Abs(f.Path); err == nil && abs != f.Path {
				in["abs_path"] = abs
			}
			m.Inputs[name] = in
		}
	}
	if d.Rules != nil {
		m.Rules.Gates = d.Rules.GateNames()
		for _, f := range d.Rules.Files() {
			m.Rules.Files = append(m.Rules.Files, ManifestFile{Path: f.Path, SHA256: f.SHA256, Kind: f.Kind, Builtin: f.Builtin})
		}
		m.Rules.SchemaVersions = d.Rules.SchemaVersions()
	}
	if d.Template != nil {
		m.Template = ManifestFile{Path: d.Template.Path, SHA256: d.Template.SHA256}
	}
	sum := sha256.Sum256([]byte(d.System))
	m.SystemSHA256 = hex.EncodeToString(sum[:])
	m.Provider.Identity = d.Identity
}
