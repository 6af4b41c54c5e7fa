// Package engine runs one refinement pass as a pipeline of stages:
//
//	read/index → join (inputs) → render (prompt) → answer (cache | teacher)
//	→ judge (parse, contract, gates) → write (output sinks)
//	→ stats + manifest → commit
//
// Each stage is its own package; this one plans the work, runs samples
// through the stages concurrently, hands their records to the writer in
// input order, and decides whether the run may replace the committed
// outputs (see Health).
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/engine/answer"
	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/changes"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/judge"
	"github.com/pgrules/pgrules/engine/memo"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/rules"
)

// Options are the knobs of one run.
type Options struct {
	Inputs      inputs.Paths
	OutDir      string
	Mode        rules.Mode
	Resume      bool
	Limit       int
	Concurrency int
	// Refresh skips cache reads but still stores new answers.
	Refresh bool
	// Offline answers from the cache only: no teacher is asked.
	Offline bool
	// MaxTeacherFailureRate (nil: DefaultMaxTeacherFailureRate) and
	// AllowUnhealthy decide whether an unhealthy run is committed (see
	// Health).
	MaxTeacherFailureRate *float64
	AllowUnhealthy        bool
	// Now stamps records; SOURCE_DATE_EPOCH fixes it for reproducible runs.
	Now           func() time.Time
	ProgressEvery time.Duration
	// OnProgress, when set, is told of every written sample (a terminal
	// progress bar); otherwise progress is a log line every ProgressEvery.
	OnProgress func(done, total, accepted int)
	// Drain, once closed, stops the run gently (a first Ctrl-C): no new
	// sample is started, and those in flight finish, so the teacher calls
	// already paid for reach the cache. The run then ends interrupted and
	// commits nothing. Before the samples start it stops the run as ctx
	// does. nil: never.
	Drain <-chan struct{}
	// Shard runs only the ids of one shard (see ShardOf).
	Shard Shard
	// MergeFrom makes the run a merge of these shard out dirs: every id's
	// record is a shard's, kept as it is, and judged for the stats exactly
	// as a fresh one; no teacher is asked. AdjustStats then sets what only
	// the shards know (their calls, cache use, resumed records).
	MergeFrom   []string
	AdjustStats func(*stats.Stats)
	// RoomAboveLiveHeap, when set, raises the process's soft memory
	// limit, once the per-id tables are built, to their size plus this
	// much, if it is lower: below what a run must hold the collector runs
	// back to back (a million-sample re-gate ran at a third of its speed).
	RoomAboveLiveHeap int64
	// WantInputSHA256, by input name (prompt_plan, drafts, critiques),
	// refuses inputs whose bytes are not these, before any sample is read:
	// a merge must read what its shards read.
	WantInputSHA256 map[string]string
}

// Deps are the collaborators of a run, built by the CLI.
type Deps struct {
	Rules    *rules.Rules
	Template *prompt.Template
	System   string
	// Teacher is the provider behind the call policy; nil when offline.
	Teacher answer.Teacher
	// Provider and Identity go into cache keys: the provider's name and the
	// settings that change its answers.
	Provider string
	Identity []byte
	// KeyByID adds the sample id to cache keys, for providers whose answers
	// depend on it (dryrun).
	KeyByID bool
	// NoPrompt and WantsDraft say what of a request the provider reads.
	NoPrompt, WantsDraft bool
	// Cache is nil when caching is off.
	Cache *cache.Cache
	Log   zerolog.Logger
	// Manifest is completed by the run with what only it knows.
	Manifest *Manifest
}

// Result is what a run did, committed or not.
type Result struct {
	Stats    stats.Stats
	Dataset  output.FileInfo
	Rejected output.FileInfo
	Changes  Changes
	Health   Health
	// Committed: the run's files are now the out dir's outputs.
	Committed bool
	// StashDir holds the files of an unhealthy run that was not committed.
	StashDir    string
	Interrupted bool
	// InterruptedReading: the run was interrupted while it read its
	// inputs, before any sample.
	InterruptedReading bool
	// Remaining counts samples an interrupted run did not finish.
	Remaining int
	// NoCachedAnswer counts samples an offline run could not answer and
	// rejected; KeptOffline those whose committed record it kept instead.
	NoCachedAnswer, KeptOffline int
	// NotStoredWhy is why the cache could not store the answers counted
	// in Stats.Cache.NotStored.
	NotStoredWhy string
	// Memo counts the work remembered facts saved (never part of the
	// stats: the outputs do not depend on it).
	Memo MemoUse
	// Problems are the first bad input lines of each file; ProblemCount
	// counts them all.
	Problems     []inputs.Problem
	ProblemCount int
}

// MemoUse counts samples whose prompt was not rendered (its cache key was
// remembered for these very inputs), answers the schemas were not run on
// again (the same text passed the same schemas before) and answers the
// word lists were not run on again (the same text was searched by the
// same lists before).
type MemoUse struct {
	PromptKeys, SchemaVerdicts, WordListHits int
}

// problemsLogged is how many bad lines of one input file are logged one
// by one; the rest are counted.
const problemsLogged = 10

func logProblems(log zerolog.Logger, set *inputs.Set) {
	for _, f := range []*inputs.File{set.Plan, set.Drafts, set.Critiques} {
		if f == nil {
			continue
		}
		for _, p := range f.Problems[:min(len(f.Problems), problemsLogged)] {
			log.Warn().Str("where", fmt.Sprintf("%s:%d", p.File, p.Line)).Msg(p.Error())
		}
		if more := f.ProblemCount - problemsLogged; more > 0 {
			log.Warn().Str("file", f.Path).Int("more", more).Msgf("%s: %d more bad line(s) not shown; the first %d are in dataset_v1_stats.json (input_problems)", f.Path, more, inputs.MaxProblemsKept)
		}
	}
}

// ErrInterrupted reports a run stopped by its context (Ctrl-C): nothing
// was committed; every answer received is in the cache.
var ErrInterrupted = errors.New("run interrupted")

// Run executes a refinement pass. It wires the steps, each a function of
// its own: readInputs, readOutputs, plan, newStages, judgeAll (the stages,
// concurrently, into the writer in input order), settleCache, and
// conclude (stats, manifest, then commit or stash).
func Run(ctx context.Context, opt Options, d Deps) (_ *Result, err error) {
	opt = opt.withDefaults()
	ph := phases{log: d.Log, mark: time.Now()}
	// memos is nil, not a nil *cache.Cache, when caching is off.
	var memos memo.Store
	if d.Cache != nil {
		memos = d.Cache
	}
	// Until the samples start, a drain is a stop: nothing is paid yet.
	early, stopEarly := context.WithCancel(ctx)
	defer stopEarly()
	if opt.Drain != nil {
		go func() {
			select {
			case <-opt.Drain:
				stopEarly()
			case <-early.Done():
			}
		}()
	}
	// The committed outputs are hashed while the inputs are indexed.
	pre := output.StartPrehash(opt.OutDir)
	set, err := readInputs(early, opt, memos, d.Log)
	if err != nil {
		if early.Err() != nil {
			return &Result{Interrupted: true, InterruptedReading: true}, ErrInterrupted
		}
		return nil, err
	}
	defer set.Close()
	ph.done("inputs indexed")

	w, err := output.Create(opt.OutDir)
	if err != nil {
		return nil, err
	}
	defer func() { w.Abort(err) }() // a no-op once committed or stashed
	prev, err := readOutputs(opt, set, pre, d.Log)
	if err != nil {
		return nil, err
	}
	defer prev.Close()
	ph.done("previous outputs read")

	work, prov, err := plan(opt, set, prev.prior, prev.source, d)
	if err != nil {
		return nil, err
	}
	createdAt := opt.Now().UTC().Format(createdAtLayout)
	ph.done("work planned")
	st := newStages(opt, d, set, prev, prov, createdAt, memos)
	t := newTally(d.Rules, prev.prior, work.total, d.Teacher, d.Log, opt)
	if opt.Offline {
		t.health.staleWhy = prov.why()
	}
	// Every table the run holds to its end is built now: the limit is set
	// above them.
	if opt.RoomAboveLiveHeap > 0 {
		fitMemoryLimit(opt.RoomAboveLiveHeap, d.Log)
	}
	ph.done("memos read")
	if early.Err() != nil {
		return &Result{Interrupted: true, Remaining: work.total}, ErrInterrupted
	}
	stopEarly()

	stopped := st.judgeAll(ctx, work, opt.Concurrency, opt.Drain, w, t)
	ph.done("samples judged and written")
	lost := st.settleCache(d, memos)

	// A run that fails from here on says whether every answer it got is in
	// the cache: "rerun, the answers are cached" would be false otherwise.
	failed := func(err error) error {
		if lost.count > 0 {
			return &LostAnswersError{Err: err, Lost: lost.count, Why: lost.why}
		}
		return err
	}
	res := &Result{Problems: set.Problems(), ProblemCount: set.ProblemCount(), Changes: t.changes.Finish(), NoCachedAnswer: t.noCachedAnswer, KeptOffline: t.keptOffline, Memo: t.memo}
	if stopped.ioErr != nil {
		return nil, failed(stopped.ioErr)
	}
	if err := set.Unchanged(); err != nil {
		return nil, failed(err)
	}
	// Drained with every sample done, the run is whole: it commits.
	res.Interrupted = (ctx.Err() != nil || stopped.drained && t.done < work.total) && stopped.stop == nil
	res.Health = t.health.verdict(*opt.MaxTeacherFailureRate, stopped.stop)
	if res.Interrupted {
		res.Remaining = work.total - t.done
		return res, failed(ErrInterrupted)
	}
	res.Stats = t.report(work, res.Problems, res.ProblemCount, d, set.ID)
	res.Stats.Cache.NotStored, res.NotStoredWhy = lost.count, lost.why
	if opt.AdjustStats != nil {
		opt.AdjustStats(&res.Stats)
	}
	if err := conclude(opt, d, set, prev.prior, w, res, createdAt, ph); err != nil {
		if _, unhealthy := err.(*UnhealthyError); unhealthy {
			return res, failed(err) // res says what the stashed run holds
		}
		return nil, failed(err)
	}
	return res, nil
}

// phases logs, at debug level, how long each part of the run took.
type phases struct {
	log  zerolog.Logger
	mark time.Time
}

func (p *phases) done(name string) {
	p.log.Debug().Dur("took", time.Since(p.mark)).Msg(name)
	p.mark = time.Now()
}

// readInputs indexes the three inputs (or recalls their index) and
// reports their bad lines.
func readInputs(ctx context.Context, opt Options, memos memo.Store, log zerolog.Logger) (*inputs.Set, error) {
	set, err := inputs.OpenRemembering(ctx, opt.Inputs, memos)
	if err != nil {
		return nil, err
	}
	if err := checkInputSHA256(set, opt.WantInputSHA256); err != nil {
		set.Close()
		return nil, err
	}
	logProblems(log, set)
	return set, nil
}

// previous holds the committed run's records (prior) and those the run
// keeps (source: prior, or the shards' in a merge).
type previous struct {
	prior, source *output.Prior
}

func (p previous) Close() {
	if p.source != p.prior {
		p.source.Close()
	}
	p.prior.Close()
}

// readOutputs reads the committed records: once the out dir is locked, so
// no other run commits under it, and numbered by the inputs' id table, so
// each id is held once.
func readOutputs(opt Options, set *inputs.Set, pre *output.Prehash, log zerolog.Logger) (previous, error) {
	prior, err := output.ReadPriorWith(opt.OutDir, set.IDs(), pre)
	if err != nil {
		return previous{}, err
	}
	for _, p := range prior.Problems {
		log.Warn().Msg(p)
	}
	prev := previous{prior: prior, source: prior}
	if len(opt.MergeFrom) > 0 {
		if prev.source, err = output.ReadPriors(opt.MergeFrom, set.IDs()); err != nil {
			prior.Close()
			return previous{}, err
		}
		if len(prev.source.Problems) > 0 {
			prev.Close()
			return previous{}, &MergeError{Problems: prev.source.Problems}
		}
	}
	return prev, nil
}

// newStages sets up the stages a sample goes through, with what the
// cache remembers of these inputs.
func newStages(opt Options, d Deps, set *inputs.Set, prev previous, prov *provenance, createdAt string, memos memo.Store) *stages {
	st := &stages{
		set:      set,
		source:   prev.source,
		prior:    prev.prior,
		template: d.Template,
		system:   d.System,
		answers: &answer.Source{
			Cache: d.Cache, Teacher: d.Teacher, Provider: d.Provider, Identity: d.Identity,
			KeyByID: d.KeyByID, Refresh: opt.Refresh, Log: d.Log, NoPrompt: d.NoPrompt, WantsDraft: d.WantsDraft,
		},
		judge: &judge.Judge{Rules: d.Rules, Mode: opt.Mode, Provider: d.Provider, CreatedAt: createdAt},
		merge: len(opt.MergeFrom) > 0,
		prov:  prov,
	}
	if opt.Offline {
		st.answers.Teacher = nil
	}
	if d.Cache != nil && !opt.Refresh && d.Template != nil && d.Rules != nil {
		if err := st.rememberPromptKeys(d, set, memos); err != nil {
			d.Log.Warn().Err(err).Msg("remembered prompt keys not read; every prompt is rendered")
		}
	}
	// A --refresh run reads no answer from the cache but still marks the
	// ones it checks.
	if d.Cache != nil && d.Rules != nil {
		st.schemaChecks = schemaChecks(d.Rules, opt.Mode)
		st.hitsCheck = hitsCheck(d.Rules, opt.Mode)
	}
	return st
}

// judgeAll takes every job through the stages on workers and hands the
// records to the writer, and to the tally, in input order.
func (st *stages) judgeAll(ctx context.Context, work work, workers int, drain <-chan struct{}, w *output.Writer, t *tally) stopped {
	// The response is hashed on the workers, for the repeats the tally
	// finds in order, whether the record is fresh or kept.
	process := func(ctx context.Context, j job) *result {
		r := st.process(ctx, j)
		if a := r.verdict.Accepted; a != nil {
			r.responseHash = responseHash(a.Response)
		}
		r.releaseDecision()
		return r
	}
	s := runInOrder(ctx, st.readAhead(work.jobs), workers, drain, process, func(r *result) error {
		err := w.Write(r.verdict.Sink, r.line)
		r.release()
		if err != nil {
			return err
		}
		t.observe(r)
		return nil
	})
	t.finishProgress()
	return s
}

// LostAnswersError is a run that failed (or was interrupted, or is
// unhealthy) after the cache could not store some of the teacher's
// answers: a rerun pays for those again. It wraps the run's error.
type LostAnswersError struct {
	Err  error
	Lost int
	Why  string
}

func (e *LostAnswersError) Error() string { return e.Err.Error() }

func (e *LostAnswersError) Unwrap() error { return e.Err }

// lostAnswers counts the teacher's answers the cache could not store, and
// says why.
type lostAnswers struct {
	count int
	why   string
}

// settleCache remembers the prompt keys and waits until every answer is
// in the cache: before anything is committed, so no answer behind a
// committed record is still only in memory. One the cache could not
// store costs a call on a rerun, not a record.
func (st *stages) settleCache(d Deps, memos memo.Store) lostAnswers {
	if st.keys != nil {
		if err := st.keys.Save(memos); err != nil {
			d.Log.Warn().Err(err).Msg("prompt keys not remembered; the next run renders every prompt again")
		}
	}
	var lost lostAnswers
	if d.Cache == nil {
		return lost
	}
	if err := d.Cache.Sync(); err != nil {
		d.Log.Warn().Err(err).Msg("cache write failed; these answers will be paid for again on a rerun")
		var se *cache.StoreError
		if errors.As(err, &se) {
			lost = lostAnswers{se.Lost, se.Err.Error()}
		}
	}
	if n := st.answers.NotStored(); n > 0 {
		lost.count += n
		if lost.why == "" {
			lost.why = "see the warnings above"
		}
	}
	return lost
}

// conclude writes the stats and the manifest beside the records, then
// commits them, or stashes them when the run is unhealthy.
func conclude(opt Options, d Deps, set *inputs.Set, prior *output.Prior, w *output.Writer, res *Result, createdAt string, ph phases) error {
	var err error
	if res.Dataset, err = w.Info(output.DatasetFile); err == nil {
		res.Rejected, err = w.Info(output.RejectedFile)
	}
	if err != nil {
		return err
	}
	docs, err := documents(res.Stats, func(statsFile output.FileInfo) *Manifest {
		man := d.Manifest
		if man == nil {
			man = &Manifest{}
		}
		statsFile.Path = filepath.Join(opt.OutDir, output.StatsFile)
		man.complete(opt, set, res, createdAt, d, statsFile)
		if man.Changes != nil && prior.Manifest != nil {
			// Which inputs, rules, template or plugin differ from the
			// committed run's, by sha256.
			draft, _ := json.Marshal(man)
			man.Changes.FilesChanged = changes.CompareFiles(prior.Manifest, draft)
			res.Changes.FilesChanged = man.Changes.FilesChanged
		}
		return man
	})
	if err != nil {
		return err
	}
	if !res.Health.Healthy && !opt.AllowUnhealthy {
		if res.StashDir, err = w.Stash(docs); err != nil {
			return err
		}
		return &UnhealthyError{Health: res.Health, StashDir: res.StashDir}
	}
	ph.done("stats and manifest built")
	if err := w.Commit(docs); err != nil {
		return err
	}
	ph.done("committed")
	res.Committed = true
	return nil
}

// rememberPromptKeys loads the prompt keys remembered for exactly these
// input bytes, template, system message and provider identity.
func (st *stages) rememberPromptKeys(d Deps, set *inputs.Set, memos memo.Store) error {
	digest := memo.New(memo.KindPromptKeys)
	if digest == nil {
		return nil
	}
	digest.Add(d.Provider, string(d.Identity), fmt.Sprint(d.KeyByID), d.System, d.Template.SHA256, fmt.Sprint(set.Len()))
	for _, f := range []*inputs.File{set.Plan, set.Drafts, set.Critiques} {
		if f == nil {
			digest.Add("")
			continue
		}
		digest.Add(f.SHA256)
	}
	var err error
	st.keys, err = memo.LoadPromptKeys(memos, digest.Sum(), set.Len())
	return err
}

func checkInputSHA256(set *inputs.Set, want map[string]string) error {
	var problems []string
	for name, f := range map[string]*inputs.File{"prompt_plan": set.Plan, "drafts": set.Drafts, "critiques": set.Critiques} {
		w, ok := want[name]
		switch {
		case !ok:
		case f == nil:
			problems = append(problems, fmt.Sprintf("input %s is not given; the shards read one with sha256 %s", name, w))
		case f.SHA256 != w:
			problems = append(problems, fmt.Sprintf("input %s %s has sha256 %s, the shards read %s", name, f.Path, f.SHA256, w))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return &MergeError{Problems: problems}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 2 * time.Second
	}
	if o.MaxTeacherFailureRate == nil {
		r := DefaultMaxTeacherFailureRate
		o.MaxTeacherFailureRate = &r
	}
	return o
}

// documents renders the stats and the manifest, which records the stats
// file's sha256.
func documents(st stats.Stats, manifest func(stats output.FileInfo) *Manifest) (map[string][]byte, error) {
	statsDoc, err := output.MarshalDocument(st)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(statsDoc)
	manDoc, err := output.MarshalDocument(manifest(output.FileInfo{SHA256: hex.EncodeToString(sum[:])}))
	if err != nil {
		return nil, err
	}
	return map[string][]byte{output.StatsFile: statsDoc, output.ManifestFile: manDoc}, nil
}

const createdAtLayout = "2006-01-02T15:04:05.000000+00:00"

// PeakRSSMB reports the process's peak resident memory, for the final log
// line and benchmarks.
func PeakRSSMB() float64 {
	return peakRSS()
}
