package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules"
	"github.com/pgrules/pgrules/engine"
	"github.com/pgrules/pgrules/engine/answer"
	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/report"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/rules"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Refine drafts with a teacher, gate the answers and write the dataset",
		Example: `  pgrules run --plan plan.jsonl --drafts drafts.jsonl --critiques critiques.jsonl --out-dir out --provider dryrun
  pgrules run --provider openrouter --model x-ai/grok-4.1-fast --concurrency 8 --rpm 120
  pgrules run --rules my-gates.yaml        # re-gate from the cache: no teacher calls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			return runPass(cmd.Context(), cmd, l)
		},
	}
	f := cmd.Flags()
	f.String("plan", "", "prompt plan JSONL (prompt_plan_v1.jsonl); - for standard input (one input at most)")
	f.String("drafts", "", "drafts JSONL (drafts_v1.jsonl); - for standard input")
	f.String("critiques", "", "critiques JSONL (critiques_v1.jsonl), - for standard input; optional: without it every draft counts as verdict pass")
	f.String("out-dir", "out", "directory for the dataset, rejected, stats and manifest files")
	f.String("gating-mode", "lenient", "strict: the answer must be exactly one JSON object; lenient: also inside a ```json fence or prose")
	f.Bool("resume", false, "keep the records already in --out-dir; process only ids not yet written, whose teacher call failed or whose input lines were added since (refused if the rules or inputs changed otherwise)")
	f.Int("limit", 0, "process at most N samples (0: all); refused when the out dir holds outputs of more samples")
	f.String("provider", "dryrun", "teacher backend: openrouter, local, dryrun, or any pgrules-provider-<name> plugin")
	f.Bool("dry-run", false, "same as --provider dryrun (the original pipeline's flag)")
	f.StringSlice("model", nil, "model(s) for the provider, in fallback order (overrides providers.<name>.models)")
	f.String("plugin-dir", "", "directory searched first for pgrules-provider-<name> (then $PGRULES_PLUGIN_DIR, next to pgrules, $PATH)")
	f.String("rules", "gates.yaml", "gates file; word lists and schemas it names are found next to it, else the built-in copies")
	f.String("template", "prompts/refine.txt", "refine prompt template (built-in copy when the file is absent)")
	f.String("system", "prompts/system.txt", "system message file (built-in copy when the file is absent)")
	f.Int("concurrency", 4, "teacher requests in flight")
	f.Float64("rpm", 0, "rate limit in requests per minute (0: none)")
	f.Float64("tpm", 0, "rate limit in tokens per minute (0: none)")
	f.Float64("rpm-total", 0, "rate limit in requests per minute for all shards together: a shard of N takes 1/N (0: none)")
	f.Float64("tpm-total", 0, "rate limit in tokens per minute for all shards together: a shard of N takes 1/N (0: none)")
	f.String("shard", "", "process only shard K of N of the ids (K/N), or auto/N with K from $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)")
	f.Int("max-retries", 5, "retries of a retryable teacher failure (429, 5xx, timeout)")
	f.Int("max-calls", 0, "stop, committing nothing, before asking the teacher about more than N samples: a cap for paid teachers, since an edited template or system message makes every answer new; 0: no cap")
	f.Int("fatal-after", 5, "stop the run when the first N calls all fail the same way (fatal, or retryable after their retries: a teacher that is down); 0 never stops early")
	f.Duration("call-timeout", teacher.DefaultCallTimeout, "give up one teacher call (plugin included) after this long and retry it: a plugin that hangs would stall the run; 0: never")
	f.Duration("max-retry-wait", teacher.DefaultMaxRetryWait, "cap on any single wait before a retry, Retry-After included; a longer Retry-After fails the call")
	f.Float64("max-teacher-failure-rate", engine.DefaultMaxTeacherFailureRate, "a run whose share of failed teacher answers exceeds this is unhealthy and not committed")
	f.Bool("allow-unhealthy", false, "commit the outputs even when the run is unhealthy (teacher failures, gate errors, early stop)")
	f.Bool("no-cache", false, "neither read nor write the response cache")
	f.Bool("refresh", false, "ask the teacher again even when the cache has an answer (and store the new one)")
	f.Bool("offline", false, "start no plugin and make no teacher call: answers come from the cache only; a sample without one keeps its committed record, else is rejected no_cached_answer")
	f.String("cache-path", "", "response cache file (default: the user's shared cache, ~/.cache/pgrules/cache.db on Linux)")
	f.Bool("report", false, "after a committed run, write <out-dir>/report.html (see pgrules report)")
	f.String("log-level", "info", "debug, info, warn or error")
	f.String("log-format", "auto", "auto (console on a terminal, JSON otherwise), console or json")
	f.String("cpu-profile", "", "write a Go CPU profile of the run to this file, and the provider plugin's to this file + \".plugin\" (for `go tool pprof`)")
	f.String("trace", "", "write a Go execution trace of the run to this file (for `go tool trace`: where workers wait)")
	f.String("mem-profile", "", "write a Go allocation profile of the run to this file (for `go tool pprof -sample_index=alloc_space`)")
	return cmd
}

// startProfiles starts what --cpu-profile and --trace ask for and sets
// up --mem-profile; stop ends them and writes the files.
func startProfiles(cmd *cobra.Command) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, p := range []struct {
		flag  string
		start func(io.Writer) error
		end   func()
	}{
		{"cpu-profile", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"trace", trace.Start, trace.Stop},
	} {
		path, _ := cmd.Flags().GetString(p.flag)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err == nil {
			if err = p.start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			stop()
			return nil, usageErr(fmt.Errorf("--%s: %w", p.flag, err))
		}
		stops = append(stops, func() { p.end(); f.Close() })
	}
	if path, _ := cmd.Flags().GetString("mem-profile"); path != "" {
		runtime.MemProfileRate = 64 << 10
		stops = append(stops, func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	return stop, nil
}

func runPass(ctx context.Context, cmd *cobra.Command, l *loaded) error {
	cfg, cfgJSON := l.cfg, redactedJSON(l.k)
	stopProfiles, err := startProfiles(cmd)
	if err != nil {
		return err
	}
	defer stopProfiles()
	log, err := newLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageErr(err)
	}
	if err := checkRunConfig(l); err != nil {
		return usageErr(err)
	}
	mode := rules.Mode(cfg.GatingMode)
	var shard engine.Shard
	if cfg.Shard != "" {
		if shard, err = engine.ParseShard(cfg.Shard, os.Getenv); err != nil {
			return usageErr(&ConfigError{Origin: l.origin("shard"), Key: "shard", Msg: err.Error()})
		}
	}
	rpm, tpm := effectiveLimit(cfg.RPM, cfg.RPMTotal, shard), effectiveLimit(cfg.TPM, cfg.TPMTotal, shard)

	// Everything declarative is loaded and checked before any plugin starts
	// or any teacher call is made: a typo in gates.yaml costs nothing.
	rs, err := loadRules(cfg.Rules)
	if err != nil {
		return usageErr(err)
	}
	tmpl, err := prompt.Load(fallbackFS(cfg.Template), cfg.Template)
	if err != nil {
		return usageErr(err)
	}
	system, err := readWithFallback(cfg.System)
	if err != nil {
		return usageErr(fmt.Errorf("cannot read system message %s: %w", cfg.System, err))
	}
	now, err := clock()
	if err != nil {
		return usageErr(err)
	}

	var store *cache.Cache
	if !cfg.Cache.Disabled {
		path, err := cachePath(l)
		if err != nil {
			return err
		}
		if store, err = openCache(path, cache.Options{}, true); err != nil {
			return err
		}
		defer store.Close()
		if old := filepath.Join(cfg.OutDir, "cache.db"); old != path {
			if _, err := os.Stat(old); err == nil {
				log.Warn().Str("old_cache", old).Msgf("%s is the per-out-dir cache of an older pgrules; its answers are not used: `pgrules cache merge %s %s` imports them", old, old, path)
			}
		}
	}

	// The plugin's own CPU goes into a profile of its own next to the run's.
	pluginProfile, _ := cmd.Flags().GetString("cpu-profile")
	if pluginProfile != "" {
		pluginProfile += ".plugin"
	}
	tch, err := startTeacher(ctx, l, log, store, pluginProfile)
	if err != nil {
		return err
	}
	defer tch.close()
	if n := tch.conf.SuggestedConcurrency; n > 0 && l.origin("concurrency") == "default" {
		// The flag's default of 4 suits a remote teacher's rate limits; a
		// plugin answering on this machine says how many calls suit it.
		cfg.Concurrency = min(n, maxConcurrency)
		_ = l.k.Set("concurrency", cfg.Concurrency)
		cfgJSON = redactedJSON(l.k) // the manifest says what ran
		log.Info().Int("concurrency", cfg.Concurrency).
			Msgf("%d calls in flight, as the %s plugin suggests (it answers on this machine, with no rate limit); --concurrency sets another", cfg.Concurrency, tch.name)
	}
	var caller *teacher.Caller
	var gen answer.Teacher
	if tch.client != nil {
		caller = teacher.New(tch.client, teacher.Policy{
			RPM: rpm, TPM: tpm,
			MaxRetries: cfg.MaxRetries, BaseDelay: 500 * time.Millisecond, MaxDelay: 60 * time.Second,
			FatalAfter: cfg.FatalAfter, MaxRetryWait: cfg.MaxRetryWait, MaxCalls: cfg.MaxCalls,
			CallTimeout: cfg.CallTimeout,
		}, log)
		gen = caller
	}
	if shard.Enabled() {
		log.Info().Str("shard", shard.String()).Float64("rpm", rpm).Float64("tpm", tpm).Msgf("shard %s: only the ids whose hash falls in it (%s)", shard, engine.ShardHash)
	}
	log.Info().Str("provider", tch.name).Str("version", tch.version).Str("plugin", tch.path).Bool("offline", cfg.Offline).
		Strs("models", tch.conf.Models).Str("gating_mode", cfg.GatingMode).Bool("cache", store != nil).Msg("starting run")

	start := time.Now()
	memory := engine.SampleMemory(100 * time.Millisecond)
	onProgress, finishBar := progressBar(cmd, cfg)
	var drain <-chan struct{}
	if in := interruptOf(ctx); in != nil {
		drain = in.drain
		in.drainable.Store(true)
		defer in.drainable.Store(false)
	}
	res, err := engine.Run(ctx, engine.Options{
		Drain:       drain,
		Inputs:      inputs.Paths{Plan: cfg.Plan, Drafts: cfg.Drafts, Critiques: cfg.Critiques},
		OutDir:      cfg.OutDir,
		Mode:        mode,
		Resume:      cfg.Resume,
		Limit:       cfg.Limit,
		Concurrency: cfg.Concurrency,
		Refresh:     cfg.Refresh,
		Now:         now,
		OnProgress:  onProgress,

		MaxTeacherFailureRate: &cfg.Health.MaxTeacherFailureRate,
		AllowUnhealthy:        cfg.Health.AllowUnhealthy,
		Offline:               cfg.Offline,
		RoomAboveLiveHeap:     roomAboveLiveHeap(),
		Shard:                 shard,
	}, engine.Deps{
		Rules: rs, Template: tmpl, System: string(system), Teacher: gen,
		Provider: tch.name, Identity: tch.conf.IdentityJSON, KeyByID: tch.conf.AnswersDependOnID, NoPrompt: tch.conf.NoPrompt, WantsDraft: tch.conf.WantsDraft, Cache: store, Log: log,
		Manifest: &engine.Manifest{
			PgrulesVersion: version,
			Provider:       engine.ManifestPlugin{Name: tch.name, Version: tch.version, Path: tch.path, SHA256: tch.sha},
			Config:         cfgJSON,
		},
	})
	finishBar()
	anonMB, fileMB := memory.Stop()
	if res != nil && caller != nil {
		if rt := caller.RoundTrip(50, 90); rt != nil {
			log.Info().Str("round_trip_p50", rt[0].Round(time.Microsecond).String()).Str("round_trip_p90", rt[1].Round(time.Microsecond).String()).
				Str("transport", tch.client.Transport()).
				Msg("teacher calls as pgrules saw them (plugin and network included)")
		}
	}
	if res != nil {
		printRunEnd(cmd, log, cfg, res, time.Since(start), anonMB, fileMB)
	}
	if err := runError(err, res, cfg.OutDir, !cfg.Cache.Disabled); err != nil {
		return err
	}
	if cfg.Report && res != nil && res.Committed {
		path := filepath.Join(cfg.OutDir, ReportFile)
		if err := writeReport(ctx, cfg.OutDir, path, report.Options{Rules: rs, Mode: mode}); err != nil {
			return fmt.Errorf("the outputs in %s are committed, but the report could not be written: %w (`pgrules report %s` tries again)", cfg.OutDir, err, cfg.OutDir)
		}
		log.Info().Str("report", path).Msg("report written")
	}
	return nil
}

// teacherSetup is the provider a run uses: a started plugin, or for an
// offline run only what the cache remembers of it.
type teacherSetup struct {
	client              *providers.Client
	name, version, path string
	sha                 string
	// conf is what the plugin said when configured; offline, what the
	// cache remembers of it (identity, models, whether answers depend on
	// the id), the rest zero: nothing is sent.
	conf providers.Configured
}

func (t *teacherSetup) close() {
	if t.client != nil {
		t.client.Close()
	}
}

// startTeacher starts the provider plugin and remembers its identity in the
// cache; offline, it starts nothing and looks the identity up instead.
func startTeacher(ctx context.Context, l *loaded, log zerolog.Logger, store *cache.Cache, cpuProfile string) (*teacherSetup, error) {
	cfg := l.cfg
	provCfg, err := json.Marshal(cfg.Providers[cfg.Provider])
	if err != nil {
		return nil, usageErr(fmt.Errorf("providers.%s: %w", cfg.Provider, err))
	}
	cfgSum := sha256.Sum256(provCfg)
	configSHA := hex.EncodeToString(cfgSum[:])
	dirs := providers.SearchDirs(cfg.PluginDir)
	notFound := func(err error) error {
		return usageErr(fmt.Errorf("%w; build the plugins with `make plugins` (they go to bin/, next to pgrules), put pgrules-provider-%s on $PATH, or pass --plugin-dir", err, cfg.Provider))
	}
	if cfg.Offline {
		if store == nil || cfg.Refresh {
			return nil, usageErr(errors.New("--offline answers from the response cache only: it cannot be used with --no-cache or --refresh"))
		}
		path, err := providers.Find(cfg.Provider, dirs)
		if err != nil {
			return nil, notFound(err)
		}
		sha, err := providers.BinarySHA256(path)
		if err != nil {
			return nil, err
		}
		if pin := strings.TrimPrefix(strings.ToLower(cfg.Plugins[cfg.Provider].SHA256), "sha256:"); pin != "" && pin != sha {
			return nil, usageErr(fmt.Errorf("plugin %s has sha256 %s but the config pins %s", path, sha, pin))
		}
		id, ok, err := store.LookupIdentity(cfg.Provider, sha, configSHA)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, usageErr(fmt.Errorf("--offline: the cache %s has no answers from provider %s with this plugin binary and these providers.%s settings (run once without --offline; a rebuilt plugin or an edited provider section is another teacher)", store.Path(), cfg.Provider, cfg.Provider))
		}
		return &teacherSetup{name: cfg.Provider, version: id.Version, path: path, sha: sha,
			conf: providers.Configured{IdentityJSON: id.JSON, Models: id.Models, AnswersDependOnID: id.KeyByID}}, nil
	}
	client, err := providers.Start(ctx, providers.HostOptions{
		Name: cfg.Provider, Dirs: dirs, SHA256: cfg.Plugins[cfg.Provider].SHA256,
		Logger: log, MaxRestarts: 3, ConfigJSON: provCfg, CPUProfile: cpuProfile,
	})
	var rejected *providers.ConfigRejected
	var nf *providers.NotFoundError
	switch {
	case errors.As(err, &nf):
		return nil, notFound(err)
	case errors.As(err, &rejected):
		key, msg := "providers."+rejected.Provider, rejected.Err.Msg
		if rejected.Err.Path != "" {
			key += "." + rejected.Err.Path
		}
		origin := l.origin(key)
		if origin == "default" && rejected.Err.Path != "" {
			// A setting the plugin needs and nothing gave: say where it
			// goes. (A complaint about the whole section, such as a
			// missing API key, says itself what to do.)
			msg += " (" + unsetHint(key) + ")"
		}
		return nil, usageErr(&ConfigError{Origin: origin, Key: key, Msg: msg})
	case err != nil:
		return nil, usageErr(err)
	}
	info := client.Info()
	t := &teacherSetup{client: client, name: info.Name, version: info.Version, path: client.Path(), sha: client.SHA256(), conf: client.Configured()}
	if store != nil {
		if err := store.RememberIdentity(t.sha, configSHA, cache.Identity{Provider: t.name, Version: t.version, JSON: t.conf.IdentityJSON, Models: t.conf.Models, KeyByID: t.conf.AnswersDependOnID}); err != nil {
			log.Warn().Err(err).Msg("cannot record the provider's identity in the cache; --offline runs will not find this provider's answers")
		}
	}
	return t, nil
}

// untouched is what a run refused before its first sample says of the
// outputs.
func untouched(outDir string) string {
	return fmt.Sprintf("nothing was judged, no teacher was asked, the outputs in %s are unchanged", outDir)
}

// inputFlags names the flag of each input kind (inputs' kind names).
var inputFlags = map[string]string{"prompt_plan": "--plan", "drafts": "--drafts", "critiques": "--critiques"}

// cacheState is what a failed run can say of the answers it received.
type cacheState int

const (
	cacheOff  cacheState = iota // no cache: a rerun asks again
	cacheKept                   // every answer received is in the cache
	cacheLost                   // the cache could not store some of them
)

// runError words the end of a run that did not commit for the command
// line: what happened, that the outputs are unchanged, what to do — and
// when the cache lost answers, that a rerun pays for them again rather
// than that they are cached.
func runError(err error, res *engine.Result, outDir string, cached bool) error {
	state := cacheOff
	if cached {
		state = cacheKept
	}
	var lost *engine.LostAnswersError
	if !errors.As(err, &lost) {
		return wordRunError(err, res, outDir, state)
	}
	worded := wordRunError(err, res, outDir, cacheLost)
	note := fmt.Sprintf("\n  %d answer(s) the teacher gave could not be stored in the cache (%s): a rerun pays for them again", lost.Lost, lost.Why)
	if ee, ok := worded.(*exitError); ok {
		return &exitError{code: ee.code, err: errors.New(ee.err.Error() + note)}
	}
	return errors.New(worded.Error() + note)
}

func wordRunError(err error, res *engine.Result, outDir string, cache cacheState) error {
	var ue *engine.UnhealthyError
	var nr *inputs.NoRecordsError
	var wi *inputs.WrongInputError
	var ns *inputs.NoSharedIDsError
	var ls *engine.LimitShrinksError
	var re *engine.ResumeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nr):
		return usageErr(fmt.Errorf("%w\n  nothing was judged and the outputs in %s are unchanged: check that %s names the right file", err, outDir, inputFlags[nr.Kind]))
	case output.NoSpace(err):
		var b strings.Builder
		fmt.Fprintf(&b, "%v\n  the disk is full", err)
		if errors.Is(err, syscall.EDQUOT) {
			b.WriteString(" (your quota on it is used up)")
		}
		var ioe *output.IOError
		if errors.As(err, &ioe) && ioe.Staged() {
			fmt.Fprintf(&b, ": nothing was committed, the outputs in %s are unchanged; the run's partial files and pgrules' spares there were removed", outDir)
		}
		b.WriteString("\n  free space on it (or pass another --out-dir) and rerun")
		if cache == cacheKept {
			b.WriteString(": answers already received are in the cache")
		}
		return errors.New(b.String())
	case errors.As(err, &ls):
		return usageErr(fmt.Errorf("%w\n  nothing was judged, the outputs in %s are unchanged: for a trial, pass another --out-dir (e.g. %s-limit-%d); to replace them anyway, remove them first", err, outDir, strings.TrimRight(outDir, "/"), ls.Limit))
	case errors.Is(err, inputs.ErrChanged):
		var b strings.Builder
		fmt.Fprintf(&b, "%v\n  nothing was committed, the outputs in %s are unchanged: rerun once the file is complete", err, outDir)
		if cache == cacheKept {
			b.WriteString(" (answers already received are in the cache)")
		}
		return errors.New(b.String())
	case errors.As(err, &re):
		rerun := "answers in the cache cost no teacher call"
		if cache == cacheOff {
			rerun = "with the cache off, every sample is asked again"
		}
		return usageErr(fmt.Errorf("cannot resume: %w\n  %s: rerun without --resume to judge every sample from these inputs under these rules (%s), or put back what changed to resume", err, untouched(outDir), rerun))
	case errors.As(err, &ns):
		return usageErr(fmt.Errorf("%w\n  %s: check %s", err, untouched(outDir), inputFlags[ns.Kind]))
	case errors.As(err, &wi):
		return usageErr(fmt.Errorf("%w\n  %s: check %s and %s (swapped?)", err, untouched(outDir), inputFlags[wi.Kind], inputFlags[wi.LooksLike]))
	case errors.Is(err, engine.ErrInterrupted):
		if res != nil && res.InterruptedReading {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted before any sample was judged (while reading the inputs): nothing was committed, the outputs in %s are unchanged; rerun the same command to start again", outDir)}
		}
		switch cache {
		case cacheOff:
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted with %d sample(s) not finished: nothing was committed, the outputs in %s are unchanged (the cache is off, so a rerun asks the teacher again for every sample)", res.Remaining, outDir)}
		case cacheLost:
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted with %d sample(s) not finished: nothing was committed, the outputs in %s are unchanged; rerun the same command to finish", res.Remaining, outDir)}
		}
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted with %d sample(s) not finished: nothing was committed, the outputs in %s are unchanged. Every answer received so far is in the response cache: rerun the same command to finish, paying only for what was not answered", res.Remaining, outDir)}
	case errors.As(err, &ue):
		var b strings.Builder
		fmt.Fprintf(&b, "run NOT committed, it is unhealthy: %s\n", strings.Join(ue.Health.Reasons, "; "))
		fmt.Fprintf(&b, "  the outputs in %s are unchanged; what this run would have written is in %s\n", outDir, ue.StashDir)
		h := ue.Health
		if h.GateErrors > 0 {
			b.WriteString("  fix the gate (`pgrules explain ID --rules FILE` shows it on one sample) and rerun: a re-gate asks the teacher nothing new\n")
		}
		if h.MaxCallsReached {
			b.WriteString("  if that many calls are expected, rerun with a higher --max-calls (0: no cap)")
			if cache == cacheKept {
				b.WriteString(": answers already received are cached")
			}
			b.WriteString("\n")
			preview := strings.TrimRight(outDir, "/") + "-preview"
			fmt.Fprintf(&b, "  if not, see what makes the answers new: `pgrules run --offline --out-dir %s` counts the samples without a cached answer, then `pgrules diff %s %s` names what differs (template, system message, provider settings)\n", preview, outDir, preview)
			b.WriteString("  or pass --allow-unhealthy to commit anyway")
			return errors.New(b.String())
		}
		if h.Stopped != "" || h.FailureRate > h.MaxFailureRate {
			b.WriteString("  fix the teacher (key, base URL, model, server) and rerun")
			if cache == cacheKept {
				b.WriteString(": answers already received are cached")
			}
			b.WriteString("\n")
		}
		if h.StaleOffline > 0 {
			b.WriteString("  run without --offline to ask the teacher for their answers (or put back what changed)\n")
			b.WriteString("  or pass --allow-unhealthy to commit them rejected no_cached_answer")
			return errors.New(b.String())
		}
		b.WriteString("  or pass --allow-unhealthy to commit anyway")
		return errors.New(b.String())
	}
	return err
}

// printRunEnd prints the finish line and the changes since the previous run.
func printRunEnd(cmd *cobra.Command, log zerolog.Logger, cfg *Config, res *engine.Result, took time.Duration, anonMB, fileMB float64) {
	out := cmd.ErrOrStderr()
	if res.Interrupted {
		return
	}
	s := res.Stats.Summary
	rate := float64(s.Processed) / max(took.Seconds(), 1e-9)
	ev := log.Info()
	if anonMB > 0 {
		// Most of a big run's RSS is mapped file pages, shared and
		// reclaimable; the anonymous part is the process's own. Only
		// Linux tells them apart (/proc): elsewhere neither is logged,
		// rather than a 0 that reads as a measurement.
		ev.Str("peak_rss_anon", fmt.Sprintf("%.0f MB", anonMB)).Str("peak_rss_file", fmt.Sprintf("%.0f MB", fileMB))
	}
	ev.Int("accepted", s.Accepted).Int("rejected", s.Rejected).Int("resumed", s.Resumed).
		Int("input_problems", res.ProblemCount).Int("cache_hits", res.Stats.Cache.Hits).Int("cache_misses", res.Stats.Cache.Misses).
		Int("teacher_failures", res.Health.TeacherFailures).Int("gate_errors", res.Health.GateErrors).
		Int("prompts_remembered", res.Memo.PromptKeys).Int("schema_verdicts_remembered", res.Memo.SchemaVerdicts).Int("word_list_hits_remembered", res.Memo.WordListHits).
		Bool("committed", res.Committed).
		Str("took", took.Round(time.Millisecond).String()).Str("rate", fmt.Sprintf("%.0f samples/s", rate)).
		Str("peak_rss", fmt.Sprintf("%.0f MB", engine.PeakRSSMB())).
		Str("out_dir", cfg.OutDir).Msg("run finished")
	fmt.Fprintln(out, finishLine(res, cfg.OutDir))
	// Shadow gates: what a warn gate would have rejected, were it enforced.
	for _, reason := range sortedKeys(res.Stats.WarningReasons) {
		fmt.Fprintf(out, "shadow gate (warn): %d sample(s) would have been rejected %s\n", res.Stats.WarningReasons[reason], reason)
	}
	c := res.Changes
	if !c.HadPrevious || !res.Committed {
		return
	}
	fmt.Fprintf(out, "changes since the previous run in %s (every id in %s): ", cfg.OutDir, filepath.Join(cfg.OutDir, "dataset_v1_manifest.json"))
	printChanges(out, c, 5)
}

// finishLine is the run in one line: decisions, the top reasons, shadow
// gates, failures, cost, and whether the outputs were committed.
func finishLine(res *engine.Result, outDir string) string {
	st := res.Stats
	var b strings.Builder
	fmt.Fprintf(&b, "%d accepted, %d rejected", st.Summary.Accepted, st.Summary.Rejected)
	if top := topCounts(st.RejectionReasons, 3); top != "" {
		fmt.Fprintf(&b, " (%s)", top)
	}
	warned := 0
	for _, n := range st.WarningReasons {
		warned += n
	}
	fmt.Fprintf(&b, "; shadow gates: %d warning(s)", warned)
	if top := topCounts(st.WarningReasons, 3); top != "" {
		fmt.Fprintf(&b, " (%s)", top)
	}
	fmt.Fprintf(&b, "; teacher failures: %d", res.Health.TeacherFailures)
	if res.Health.Stopped != "" {
		// The calls a stop is decided on end no sample: "teacher
		// failures: 0" alone would contradict the error that follows.
		b.WriteString(" recorded before the run stopped early")
	}
	fmt.Fprintf(&b, "; gate errors: %d", res.Health.GateErrors)
	if h := res.Health; h.DetailErrors > 0 {
		fmt.Fprintf(&b, "; details that failed to evaluate: %d sample(s), the first %s (the records read \"error: …\" there; the decisions stand)", h.DetailErrors, h.DetailErrorSample)
	}
	if res.NoCachedAnswer > 0 || res.KeptOffline > 0 {
		fmt.Fprintf(&b, "; offline without a cached answer: %d rejected no_cached_answer, %d kept their committed record", res.NoCachedAnswer, res.KeptOffline)
	}
	if st.CostUSD != nil {
		fmt.Fprintf(&b, "; cost $%.4f", *st.CostUSD)
	} else {
		b.WriteString("; cost: not reported")
	}
	if d := st.DuplicateResponses; d != nil {
		more := ""
		if d.Records > 1 {
			more = ", …"
		}
		fmt.Fprintf(&b, "; duplicates: %d accepted record(s) repeat an earlier one's response (%s is %s%s: duplicate_responses in the stats)", d.Records, d.First[0].ID, d.First[0].SameAs, more)
	}
	fmt.Fprintf(&b, "; %d answer(s) from the cache", st.Cache.Hits)
	if st.Cache.NotStored > 0 {
		fmt.Fprintf(&b, "; %d answer(s) the teacher gave NOT stored in the cache (%s): a rerun pays for them again", st.Cache.NotStored, res.NotStoredWhy)
	}
	switch {
	case res.Committed && !res.Health.Healthy:
		fmt.Fprintf(&b, "; COMMITTED to %s despite an unhealthy run (--allow-unhealthy)", outDir)
	case res.Committed:
		fmt.Fprintf(&b, "; committed to %s", outDir)
	default:
		fmt.Fprintf(&b, "; NOT committed: %s is unchanged", outDir)
	}
	return b.String()
}

// topCounts renders the n largest counts as "reason N, reason N".
func topCounts(m map[string]int, n int) string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var parts []string
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func checkRunConfig(l *loaded) error {
	cfg := l.cfg
	var missing []string
	if cfg.Plan == "" {
		missing = append(missing, "--plan")
	}
	if cfg.Drafts == "" {
		missing = append(missing, "--drafts")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %v: name the input files with flags, PGRULES_PLAN / PGRULES_DRAFTS, or in pgrules.yaml", missing)
	}
	ins := []struct {
		key, flag string
		path      *string
	}{{"plan", "--plan", &cfg.Plan}, {"drafts", "--drafts", &cfg.Drafts}, {"critiques", "--critiques", &cfg.Critiques}}
	// "-" is standard input, as for most tools (one input at most: a
	// pipe can be read once).
	stdin := ""
	for _, in := range ins {
		if *in.path != "-" {
			continue
		}
		if stdin != "" {
			return fmt.Errorf("%s and %s are both - (standard input): only one input can come from it; name a file, or a pipe such as <(zcat FILE), for the other", stdin, in.flag)
		}
		// Spooling a terminal would wait for an end of file nobody means
		// to type: the pipe was forgotten.
		if isatty.IsTerminal(os.Stdin.Fd()) {
			return fmt.Errorf("%s - reads the input from standard input, which is a terminal: pipe it in (zcat plan.jsonl.gz | pgrules run %s - …) or name the file", in.flag, in.flag)
		}
		stdin, *in.path = in.flag, os.Stdin.Name()
	}
	// Unreadable inputs are found before a plugin starts or a cache opens.
	for _, in := range ins {
		path := *in.path
		if path == "" {
			continue
		}
		// Where the path was set: a config file's line, a variable, or
		// the flag (a config file's paths are relative to the file).
		where := in.flag
		switch o := l.origin(in.key); {
		case strings.HasPrefix(o, "environment variable "):
			where = strings.TrimPrefix(o, "environment variable ")
		case o != "default" && !strings.HasPrefix(o, "flag "):
			where = in.key + " at " + o
		}
		if st, err := os.Stat(path); err != nil {
			return fmt.Errorf("cannot read input %s (%s): %w", path, where, errors.Unwrap(err))
		} else if st.IsDir() {
			return fmt.Errorf("cannot read input %s (%s): it is a directory, expected a JSONL file", path, where)
		}
	}
	if cfg.Provider == "" {
		return errors.New("--provider is empty: use openrouter, local or dryrun")
	}
	return nil
}

// fallbackFS reads path from disk when it exists, else from the copy built
// into pgrules, so the binary works outside the repository.
func fallbackFS(path string) fs.FS {
	if _, err := os.Stat(path); err == nil || filepath.IsAbs(path) {
		return nil
	}
	return pgrules.Defaults
}

func readWithFallback(path string) ([]byte, error) {
	if fsys := fallbackFS(path); fsys != nil {
		return fs.ReadFile(fsys, path)
	}
	return os.ReadFile(path)
}

// clock honours SOURCE_DATE_EPOCH so that two runs of the same inputs give
// the same bytes.
func clock() (func() time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Now, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q: must be whole seconds since 1970", v)
	}
	t := time.Unix(sec, 0).UTC()
	return func() time.Time { return t }, nil
}

// loadRules reads the gates file from disk; the default name falls back to
// the built-in gates.yaml so pgrules works outside the repository, but a
// path the user named must exist.
func loadRules(path string) (*rules.Rules, error) {
	if _, err := os.Stat(path); err != nil && path == "gates.yaml" {
		return rules.LoadFS(pgrules.Defaults, "gates.yaml", rules.Options{Fallback: pgrules.Defaults})
	}
	return rules.Load(path, rules.Options{Fallback: pgrules.Defaults})
}

// progressBar draws done/total, accepted %, rate and ETA on a terminal;
// elsewhere (CI logs, files) the engine logs a progress line instead.
func progressBar(cmd *cobra.Command, cfg *Config) (func(done, total, accepted int), func()) {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok || cfg.LogFormat == "json" || !isatty.IsTerminal(f.Fd()) {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	return func(done, total, accepted int) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(f), progressbar.OptionShowCount(),
					progressbar.OptionShowIts(), progressbar.OptionSetItsString("samples"), progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionFullWidth())
			}
			bar.Describe(fmt.Sprintf("accepted %.1f%%", 100*float64(accepted)/float64(max(done, 1))))
			_ = bar.Set(done)
		}, func() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(f)
			}
		}
}

// effectiveLimit is a shard's rate limit: its own, and its 1/N of the
// total for all shards, whichever is lower (0: no limit).
func effectiveLimit(own, total float64, shard engine.Shard) float64 {
	if total <= 0 {
		return own
	}
	share := total
	if shard.Enabled() {
		share = total / float64(shard.N)
	}
	if own > 0 && own < share {
		return own
	}
	return share
}
