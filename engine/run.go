// Package engine runs one refinement pass: read and join the inputs, build
// each prompt, get the teacher's answer (from the cache when it has it),
// hand the text to the rules, and write the outputs in input order.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/rules"
)

// Generator is the teacher as the engine sees it: in production the
// host-side call policy (rate limit, retries) around a plugin client.
type Generator interface {
	Generate(ctx context.Context, req providers.Request) (providers.Response, error)
}

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
	// Now stamps records; SOURCE_DATE_EPOCH fixes it for reproducible runs.
	Now           func() time.Time
	ProgressEvery time.Duration
	// OnProgress, when set, is told of every written sample (a terminal
	// progress bar); otherwise progress is a log line every ProgressEvery.
	OnProgress func(done, total, accepted int)
}

// Deps are the collaborators of a run, built by the CLI.
type Deps struct {
	Rules    *rules.Rules
	Template *prompt.Template
	System   string
	Teacher  Generator
	// Provider and Identity go into cache keys: the provider's name and the
	// settings that change its answers.
	Provider string
	Identity []byte
	// KeyByID adds the sample id to cache keys, for providers whose answers
	// depend on it (dryrun).
	KeyByID bool
	// Cache is nil when caching is off.
	Cache *cache.Cache
	Log   zerolog.Logger
	// Manifest is completed by the run with what only it knows.
	Manifest *Manifest
}

// Result is what a run did.
type Result struct {
	Stats       stats.Stats
	Dataset     output.FileInfo
	Rejected    output.FileInfo
	Changes     Changes
	Interrupted bool
	Remaining   int
	Problems    []inputs.Problem
}

// ErrInterrupted reports a run stopped by its context (Ctrl-C) after
// writing what was finished.
var ErrInterrupted = errors.New("run interrupted")

type job struct {
	seq int
	id  string
}

type result struct {
	seq         int
	id          string
	accepted    *output.Accepted
	rejected    *output.Rejected
	outcome     stats.Outcome
	prior       *output.PriorRecord
	interrupted bool
	err         error
	cacheHit    bool
	called      bool
}

// Run executes a refinement pass.
func Run(ctx context.Context, opt Options, d Deps) (*Result, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Concurrency < 1 {
		opt.Concurrency = 1
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = 2 * time.Second
	}
	log := d.Log

	set, err := inputs.Open(opt.Inputs)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	problems := set.Problems()
	for _, p := range problems {
		log.Warn().Str("where", fmt.Sprintf("%s:%d", p.File, p.Line)).Msg(p.Error())
	}

	prior, err := output.ReadPrior(opt.OutDir)
	if err != nil {
		return nil, err
	}
	defer prior.Close()
	for _, p := range prior.Problems {
		log.Warn().Msg(p)
	}

	w, err := output.Create(opt.OutDir)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			w.Abort()
		}
	}()

	gateNames := d.Rules.GateNames()
	actions := map[string]string{}
	for _, g := range gateNames {
		actions[g] = d.Rules.GateAction(g)
	}
	col := stats.New(gateNames, actions)
	changes := newChangeTracker(prior)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	p := &pipeline{opt: opt, d: d, set: set, createdAt: opt.Now().UTC().Format(createdAtLayout)}

	// Dispatch in input order; the window bounds how far workers may run
	// ahead of the writer, so memory stays bounded when one sample is slow.
	window := make(chan struct{}, max(64, 8*opt.Concurrency))
	jobs := make(chan job)
	results := make(chan result, opt.Concurrency)
	var stopErr error
	var stopOnce sync.Once
	stop := func(err error) {
		stopOnce.Do(func() { stopErr = err; cancel() })
	}

	total := 0
	limited := 0
	plan := make([]job, 0, len(set.IDs))
	for _, id := range set.IDs {
		if opt.Resume {
			if _, ok := prior.ByID[id]; ok {
				plan = append(plan, job{seq: len(plan), id: id})
				continue
			}
		}
		if opt.Limit > 0 && total >= opt.Limit {
			limited++
			continue
		}
		total++
		plan = append(plan, job{seq: len(plan), id: id})
	}

	go func() {
		defer close(jobs)
		for _, j := range plan {
			select {
			case window <- struct{}{}:
			case <-runCtx.Done():
				return
			}
			if opt.Resume {
				if i, ok := prior.ByID[j.id]; ok {
					rec := prior.Records[i]
					results <- result{seq: j.seq, id: j.id, prior: &rec}
					continue
				}
			}
			select {
			case jobs <- j:
			case <-runCtx.Done():
				<-window
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for range opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r := p.process(runCtx, j)
				// When no further call can succeed (bad key, unknown model) the
				// run stops and keeps the previous outputs rather than
				// rejecting the whole dataset as teacher_error.
				if errors.Is(r.err, teacher.ErrStopRun) {
					stop(r.err)
					r.interrupted = true
					r.err = nil
				}
				results <- r
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	res := &Result{Problems: problems}
	pending := map[int]result{}
	next := 0
	done, accepted, hits, misses := 0, 0, 0, 0
	var tokensSaved int64
	var costSaved float64
	var writeErr error
	start := time.Now()
	ticker := time.NewTicker(opt.ProgressEvery)
	defer ticker.Stop()
	progress := func(final bool) {
		el := time.Since(start).Seconds()
		rate := float64(done) / max(el, 1e-9)
		ev := log.Info()
		if final {
			ev = log.Info().Bool("final", true)
		}
		eta := "-"
		if rate > 0 && done < total {
			eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
		}
		ev.Str("done", fmt.Sprintf("%d/%d", done, total)).
			Str("accepted", fmt.Sprintf("%.1f%%", pct(accepted, done))).
			Str("rate", fmt.Sprintf("%.1f/s", rate)).
			Str("eta", eta).
			Int("cache_hits", hits).Msg("progress")
	}

	handle := func(r result) {
		if writeErr != nil {
			return
		}
		switch {
		case r.interrupted:
			return // not written: --resume does it
		case r.err != nil:
			// An I/O failure on one sample (e.g. its input file vanished)
			// stops the run: later samples would fail the same way.
			writeErr = r.err
			cancel()
			return
		case r.prior != nil:
			line, err := r.prior.Line()
			if err == nil {
				err = w.CopyLine(r.prior.Accepted, line)
			}
			if err != nil {
				writeErr = err
				cancel()
				return
			}
			col.Add(p.priorOutcome(r.id, r.prior.Accepted, line))
			return
		case r.accepted != nil:
			writeErr = w.Accepted(r.accepted)
		default:
			writeErr = w.Rejected(r.rejected)
		}
		if writeErr != nil {
			cancel()
			return
		}
		col.Add(r.outcome)
		changes.observe(r)
		done++
		if r.accepted != nil {
			accepted++
		}
		if opt.OnProgress != nil {
			opt.OnProgress(done, total, accepted)
		}
		if r.cacheHit {
			hits++
			tokensSaved += r.outcome.TotalTokens
			if r.outcome.CostUSD != nil {
				costSaved += *r.outcome.CostUSD
			}
		} else if r.called {
			misses++
		}
	}

loop:
	for {
		select {
		case r, ok := <-results:
			if !ok {
				break loop
			}
			pending[r.seq] = r
			for {
				rr, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				handle(rr)
				<-window
			}
		case <-ticker.C:
			if opt.OnProgress == nil {
				progress(false)
			}
		}
	}
	// Results after a gap (a sample interrupted mid-call) are written too:
	// their answers are paid for, and --resume fills the gap later.
	for seq := next; len(pending) > 0; seq++ {
		if rr, ok := pending[seq]; ok {
			delete(pending, seq)
			handle(rr)
		}
	}
	if writeErr != nil {
		return nil, writeErr
	}
	if stopErr != nil {
		return nil, stopErr
	}
	interrupted := ctx.Err() != nil
	if interrupted {
		res.Remaining = total - done
	}
	if opt.OnProgress == nil {
		progress(true)
	}

	st := col.Report()
	st.Skipped.InputProblems = len(problems)
	st.Skipped.Limit = limited
	st.Cache = stats.Cache{Enabled: d.Cache != nil, Hits: hits, Misses: misses, TokensSaved: tokensSaved, CostSavedUSD: roundCost(costSaved)}
	for _, pr := range problems {
		if len(st.InputProblems) == 100 {
			break
		}
		st.InputProblems = append(st.InputProblems, pr)
	}
	if tc, ok := d.Teacher.(interface{ StatsJSON() []byte }); ok {
		st.Teacher = tc.StatsJSON()
	}
	res.Stats = st
	res.Changes = changes.summary()
	res.Interrupted = interrupted

	res.Dataset, res.Rejected, err = w.Infos()
	if err != nil {
		return nil, err
	}
	statsDoc, err := output.MarshalDocument(st)
	if err != nil {
		return nil, err
	}
	man := d.Manifest
	if man == nil {
		man = &Manifest{}
	}
	man.complete(opt, set, res, p.createdAt, d)
	manDoc, err := output.MarshalDocument(man)
	if err != nil {
		return nil, err
	}
	if err := w.Commit(statsDoc, manDoc); err != nil {
		return nil, err
	}
	committed = true
	if interrupted {
		return res, ErrInterrupted
	}
	return res, nil
}

const createdAtLayout = "2006-01-02T15:04:05.000000+00:00"

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func roundCost(x float64) float64 {
	return float64(int64(x*1e8+0.5)) / 1e8
}

// PeakRSSMB reports the process's peak resident memory, for the final log
// line and benchmarks.
func PeakRSSMB() float64 {
	return peakRSS()
}
