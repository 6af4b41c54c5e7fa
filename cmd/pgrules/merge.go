package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/report"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/rules"
)

func newMergeCmd() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "merge SHARD_DIR... -o OUT_DIR",
		Short: "Gather the out dirs of a sharded run into one: records in input order, combined stats, a manifest listing the shards",
		Long: `Checks that the shard out dirs are one complete set — shards 0..N-1 of one
N, each once, with the same inputs, rules, template, system message and
teacher plugin (by sha256, from their manifests), every record file as its
manifest recorded it — and then writes the four outputs to OUT_DIR: every
record in the inputs' order, stats computed exactly as one run computes
them (the shards' teacher calls, cache use and resumed counts summed), and
a manifest that lists each shard. If anything does not fit, nothing is
written and the error says which shard and what.

The inputs are read again (they decide the order and the stats' plan
fields), from the paths in the shards' manifests or from --plan/--drafts/
--critiques, and must have the shards' sha256. So must --rules, --template
and --system. With SOURCE_DATE_EPOCH set for the shards and the merge, the
records and stats are byte for byte those of one unsharded run.`,
		Example: `  pgrules run --shard 0/3 --out-dir shards/0 ...   # and 1/3, 2/3, anywhere
  pgrules merge shards/0 shards/1 shards/2 -o out
  pgrules merge shards/* -o out --report`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if outDir == "" {
				return usageErr(errors.New("-o OUT_DIR is required: where the merged outputs go"))
			}
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			return runMerge(cmd, l, args, outDir)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&outDir, "output", "o", "", "out dir of the merged outputs (required)")
	f.String("plan", "", "the prompt plan (default: the path in the shards' manifests)")
	f.String("drafts", "", "the drafts (default: the path in the shards' manifests)")
	f.String("critiques", "", "the critiques (default: the path in the shards' manifests)")
	f.String("rules", "gates.yaml", "the gates file the shards used (default: rules of the config)")
	f.String("template", "prompts/refine.txt", "the refine template the shards used")
	f.String("system", "prompts/system.txt", "the system message the shards used")
	f.Bool("allow-unhealthy", false, "merge shards that were committed unhealthy (--allow-unhealthy)")
	f.Bool("report", false, "also write OUT_DIR/report.html")
	f.String("log-level", "info", "debug, info, warn or error")
	f.String("log-format", "auto", "auto, console or json")
	return cmd
}

// shardManifest is what merge reads of a shard's manifest.
type shardManifest struct {
	dir            string
	statsDoc       []byte
	PgrulesVersion string `json:"pgrules_version"`
	RunID          string `json:"run_id"`
	CreatedAt      string `json:"created_at"`
	GatingMode     string `json:"gating_mode"`
	Inputs         map[string]struct {
		Path    string `json:"path"`
		AbsPath string `json:"abs_path"`
		SHA256  string `json:"sha256"`
	} `json:"inputs"`
	Rules struct {
		Files []engine.ManifestFile `json:"files"`
	} `json:"rules"`
	Template     engine.ManifestFile        `json:"template"`
	SystemSHA256 string                     `json:"system_message_sha256"`
	Provider     engine.ManifestPlugin      `json:"provider"`
	Shard        *engine.ManifestShard      `json:"shard"`
	Shards       []engine.MergedShard       `json:"shards"`
	Counts       map[string]int             `json:"counts"`
	Outputs      map[string]output.FileInfo `json:"outputs"`
	Health       struct {
		Healthy bool `json:"healthy"`
	} `json:"health"`
}

func readShardManifests(dirs []string) ([]*shardManifest, error) {
	var out []*shardManifest
	var problems []string
	for _, dir := range dirs {
		snap, err := output.OpenCommitted(dir)
		if err != nil {
			return nil, err
		}
		doc, err := snap.ReadDocument(output.ManifestFile)
		var statsDoc []byte
		if err == nil {
			statsDoc, err = snap.ReadDocument(output.StatsFile)
		}
		snap.Close()
		if err != nil {
			return nil, err
		}
		if doc == nil || statsDoc == nil {
			problems = append(problems, fmt.Sprintf("%s holds no committed pgrules outputs", dir))
			continue
		}
		m := &shardManifest{dir: dir, statsDoc: statsDoc}
		if err := json.Unmarshal(doc, m); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Join(dir, output.ManifestFile), err))
			continue
		}
		if m.Shard == nil {
			problems = append(problems, fmt.Sprintf("%s is not a shard run (its manifest has no shard: run it with --shard K/N)", dir))
			continue
		}
		out = append(out, m)
	}
	if len(problems) > 0 {
		return nil, &engine.MergeError{Problems: problems}
	}
	return out, nil
}

// checkShardSet: one N, every K once, and the same inputs, rules,
// template, system message, plugin and gating mode everywhere.
func checkShardSet(ms []*shardManifest, allowUnhealthy bool) error {
	var problems []string
	n := ms[0].Shard.N
	byK := map[int][]string{}
	for _, m := range ms {
		if m.Shard.N != n {
			problems = append(problems, fmt.Sprintf("%s is shard %s but %s is shard %s: the shards of one run share N", m.dir, m.Shard.Shard, ms[0].dir, ms[0].Shard.Shard))
			continue
		}
		byK[m.Shard.K] = append(byK[m.Shard.K], m.dir)
	}
	var missing []string
	for k := range n {
		switch dirs := byK[k]; {
		case len(dirs) == 0:
			missing = append(missing, fmt.Sprintf("%d/%d", k, n))
		case len(dirs) > 1:
			problems = append(problems, fmt.Sprintf("shard %d/%d is given twice: %s", k, n, strings.Join(dirs, " and ")))
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("shard(s) %s missing: a merge needs all %d", strings.Join(missing, ", "), n))
	}
	ref := ms[0]
	same := func(m *shardManifest, what, a, b string) {
		if a != b {
			problems = append(problems, fmt.Sprintf("%s differs between %s and %s (%s vs %s)", what, ref.dir, m.dir, short(a), short(b)))
		}
	}
	for _, m := range ms[1:] {
		for _, in := range []string{"prompt_plan", "drafts", "critiques"} {
			same(m, "input "+in, ref.Inputs[in].SHA256, m.Inputs[in].SHA256)
		}
		same(m, "rules (gates.yaml, word lists, schemas)", rulesDigest(ref.Rules.Files), rulesDigest(m.Rules.Files))
		same(m, "the refine template", ref.Template.SHA256, m.Template.SHA256)
		same(m, "the system message", ref.SystemSHA256, m.SystemSHA256)
		same(m, "the teacher plugin", ref.Provider.Name+" "+ref.Provider.SHA256, m.Provider.Name+" "+m.Provider.SHA256)
		same(m, "the teacher's settings", string(ref.Provider.Identity), string(m.Provider.Identity))
		same(m, "the gating mode", ref.GatingMode, m.GatingMode)
	}
	for _, m := range ms {
		if !m.Health.Healthy && !allowUnhealthy {
			problems = append(problems, fmt.Sprintf("%s was committed unhealthy (--allow-unhealthy): pass --allow-unhealthy to merge it anyway", m.dir))
		}
	}
	if len(problems) > 0 {
		return &engine.MergeError{Problems: problems}
	}
	return nil
}

func rulesDigest(files []engine.ManifestFile) string {
	var parts []string
	for _, f := range files {
		// By content: the same files may sit at other paths on another
		// machine, or be the built-in copies.
		parts = append(parts, f.Kind+"="+f.SHA256)
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:])
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	if s == "" {
		return "none"
	}
	return s
}

func runMerge(cmd *cobra.Command, l *loaded, dirs []string, outDir string) error {
	cfg := l.cfg
	log, err := newLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageErr(err)
	}
	for _, d := range dirs {
		if filepath.Clean(d) == filepath.Clean(outDir) {
			return usageErr(fmt.Errorf("-o %s is one of the shards: merge into another out dir", outDir))
		}
	}
	ms, err := readShardManifests(dirs)
	if err != nil {
		return usageErr(err)
	}
	if err := checkShardSet(ms, cfg.Health.AllowUnhealthy); err != nil {
		return usageErr(err)
	}
	ref := ms[0]

	// The inputs: given, or where the shards read them. The run checks
	// they are the shards' bytes (their sha256) as it reads them.
	paths := inputs.Paths{}
	wantInputs := map[string]string{}
	var problems []string
	for _, in := range []struct {
		name, flag, given string
		dst               *string
	}{{"prompt_plan", "--plan", cfg.Plan, &paths.Plan}, {"drafts", "--drafts", cfg.Drafts, &paths.Drafts}, {"critiques", "--critiques", cfg.Critiques, &paths.Critiques}} {
		want, ok := ref.Inputs[in.name]
		if !ok {
			continue
		}
		path := in.given
		if path == "" {
			path = want.Path
			if _, err := os.Stat(path); err != nil && want.AbsPath != "" {
				path = want.AbsPath
			}
		}
		if _, err := os.Stat(path); err != nil {
			problems = append(problems, fmt.Sprintf("input %s: %v (pass its path with %s)", in.name, err, in.flag))
		}
		*in.dst, wantInputs[in.name] = path, want.SHA256
	}
	rs, err := loadRules(cfg.Rules)
	if err != nil {
		return usageErr(err)
	}
	var files []engine.ManifestFile
	for _, f := range rs.Files() {
		files = append(files, engine.ManifestFile{Path: f.Path, SHA256: f.SHA256, Kind: f.Kind, Builtin: f.Builtin})
	}
	if rulesDigest(files) != rulesDigest(ref.Rules.Files) {
		problems = append(problems, fmt.Sprintf("the rules %s are not the ones the shards used (gates.yaml, word lists or schemas differ by sha256): pass the shards' gates file with --rules", rs.Path()))
	}
	tmpl, err := prompt.Load(fallbackFS(cfg.Template), cfg.Template)
	if err != nil {
		return usageErr(err)
	}
	if tmpl.SHA256 != ref.Template.SHA256 {
		problems = append(problems, fmt.Sprintf("the template %s is not the one the shards used: pass it with --template", cfg.Template))
	}
	system, err := readWithFallback(cfg.System)
	if err != nil {
		return usageErr(fmt.Errorf("cannot read system message %s: %w", cfg.System, err))
	}
	if sum := sha256.Sum256(system); hex.EncodeToString(sum[:]) != ref.SystemSHA256 {
		problems = append(problems, fmt.Sprintf("the system message %s is not the one the shards used: pass it with --system", cfg.System))
	}
	if len(problems) > 0 {
		return usageErr(&engine.MergeError{Problems: problems})
	}
	now, err := clock()
	if err != nil {
		return usageErr(err)
	}

	shardStats, err := readShardStats(ms)
	if err != nil {
		return usageErr(err)
	}
	var listed []engine.MergedShard
	for _, m := range ms {
		listed = append(listed, engine.MergedShard{Dir: m.dir, Shard: m.Shard.Shard, RunID: m.RunID, CreatedAt: m.CreatedAt,
			Accepted: m.Counts["accepted"], Rejected: m.Counts["rejected"], DatasetSHA256: m.Outputs["dataset"].SHA256,
			RejectedSHA256: m.Outputs["rejected"].SHA256, Healthy: m.Health.Healthy})
	}
	sort.Slice(listed, func(i, j int) bool { return listed[i].Shard.K < listed[j].Shard.K })
	start := time.Now()
	log.Info().Int("shards", len(ms)).Str("out_dir", outDir).Msg("merging")
	res, err := engine.Run(cmd.Context(), engine.Options{
		Inputs: paths, OutDir: outDir, Mode: rules.Mode(ref.GatingMode), Concurrency: 4, Now: now,
		MergeFrom: dirs, AdjustStats: shardStats.apply, WantInputSHA256: wantInputs, RoomAboveLiveHeap: roomAboveLiveHeap(),
	}, engine.Deps{
		Rules: rs, Template: tmpl, System: string(system), Provider: ref.Provider.Name, Identity: ref.Provider.Identity, Log: log,
		Manifest: &engine.Manifest{PgrulesVersion: version, Provider: ref.Provider, Config: redactedJSON(l.k), Shards: listed},
	})
	var me *engine.MergeError
	switch {
	case errors.As(err, &me):
		return usageErr(err)
	case errors.Is(err, engine.ErrInterrupted):
		return &exitError{code: exitInterrupted, err: fmt.Errorf("merge interrupted: nothing was committed, the outputs in %s are unchanged; run the merge again", outDir)}
	case err != nil:
		return err
	}
	s := res.Stats.Summary
	fmt.Fprintf(cmd.ErrOrStderr(), "merged %d shards: %d accepted, %d rejected, %d records in input order; committed to %s (%s)\n",
		len(ms), s.Accepted, s.Rejected, s.TotalInputs, outDir, time.Since(start).Round(time.Millisecond))
	if cfg.Report {
		if err := writeReport(cmd.Context(), outDir, filepath.Join(outDir, ReportFile), report.Options{Rules: rs, Mode: rules.Mode(ref.GatingMode)}); err != nil {
			return fmt.Errorf("the merged outputs in %s are committed, but the report could not be written: %w", outDir, err)
		}
	}
	return nil
}

// shardSums is what only the shards know: their teacher calls, cache use
// and resumed records, summed into the merged stats.
type shardSums struct {
	resumed, processed int
	cache              stats.Cache
	teacher            *teacher.Stats
}

func readShardStats(ms []*shardManifest) (*shardSums, error) {
	sum := &shardSums{cache: stats.Cache{Enabled: true}}
	for _, m := range ms {
		doc := m.statsDoc
		var st struct {
			Summary stats.Summary  `json:"summary"`
			Cache   stats.Cache    `json:"cache"`
			Teacher *teacher.Stats `json:"teacher_calls"`
		}
		if err := json.Unmarshal(doc, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(m.dir, output.StatsFile), err)
		}
		sum.resumed += st.Summary.Resumed
		sum.processed += st.Summary.Processed
		sum.cache.Enabled = sum.cache.Enabled && st.Cache.Enabled
		sum.cache.Hits += st.Cache.Hits
		sum.cache.Misses += st.Cache.Misses
		sum.cache.TokensSaved += st.Cache.TokensSaved
		sum.cache.CostSavedUSD += st.Cache.CostSavedUSD
		if t := st.Teacher; t != nil {
			if sum.teacher == nil {
				sum.teacher = &teacher.Stats{}
			}
			sum.teacher.Calls += t.Calls
			sum.teacher.Succeeded += t.Succeeded
			sum.teacher.Failed += t.Failed
			sum.teacher.Retries += t.Retries
			sum.teacher.RateLimited += t.RateLimited
			for code, n := range t.ByCode {
				if sum.teacher.ByCode == nil {
					sum.teacher.ByCode = map[string]int{}
				}
				sum.teacher.ByCode[code] += n
			}
		}
	}
	sum.cache.CostSavedUSD = float64(int64(sum.cache.CostSavedUSD*1e8+0.5)) / 1e8
	return sum, nil
}

func (s *shardSums) apply(st *stats.Stats) {
	st.Summary.Resumed, st.Summary.Processed = s.resumed, s.processed
	st.Skipped.Resume = s.resumed
	st.Cache = s.cache
	if s.teacher != nil {
		st.Teacher, _ = json.Marshal(s.teacher)
	}
}
