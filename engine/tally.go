package engine

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/engine/changes"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/rules"
)

// tally watches the records go by in input order and keeps everything the
// end of a run reports: stats, changes since the previous run, health and
// progress. It is owned by the consuming goroutine.
type tally struct {
	stats   *stats.Collector
	dups    dupFinder
	changes *changes.Tracker
	health  *healthTally
	log     zerolog.Logger
	opt     Options
	teacher any

	total, done, accepted int
	hits, misses          int
	noCachedAnswer        int
	keptOffline           int
	memo                  MemoUse
	tokensSaved           int64
	costSaved             float64
	start, lastProgress   time.Time
}

func newTally(rs *rules.Rules, prior *output.Prior, total int, teacher any, log zerolog.Logger, opt Options) *tally {
	gateNames := rs.GateNames()
	actions := map[string]string{}
	for _, g := range gateNames {
		actions[g] = rs.GateAction(g)
	}
	now := time.Now()
	st := stats.New(gateNames, actions)
	st.Reserve(total)
	return &tally{
		stats: st, changes: newChangeTracker(prior), health: newHealthTally(),
		// Reserved whole: growing by doubling would hold twice as much.
		dups: dupFinder{hashes: make([]uint64, 0, total), ords: make([]int32, 0, total)},
		log:  log, opt: opt, teacher: teacher, total: total, start: now, lastProgress: now,
	}
}

func (t *tally) observe(r *result) {
	t.stats.Add(r.outcome)
	t.changes.Observe(r.id, changes.Record{Accepted: r.verdict.Accepted != nil, Reasons: r.verdict.ReasonCodes()})
	if r.verdict.Accepted != nil {
		t.dups.add(r.responseHash, r.ord)
	}
	if r.kept {
		if r.keptOffline {
			t.keptOffline++
			t.done++
		} else if r.outcome.Resumed {
			t.health.kept(r.verdict)
		}
		return
	}
	t.health.observe(r)
	t.done++
	if r.verdict.Accepted != nil {
		t.accepted++
	}
	if r.noCachedAnswer {
		t.noCachedAnswer++
	}
	if r.keyRemembered {
		t.memo.PromptKeys++
	}
	if r.schemaRemembered {
		t.memo.SchemaVerdicts++
	}
	if r.hitsRemembered {
		t.memo.WordListHits++
	}
	if r.cacheHit {
		t.hits++
		t.tokensSaved += r.outcome.TotalTokens
		if r.outcome.CostUSD != nil {
			t.costSaved += *r.outcome.CostUSD
		}
	} else if r.called {
		t.misses++
	}
	if t.opt.OnProgress != nil {
		t.opt.OnProgress(t.done, t.total, t.accepted)
	} else if time.Since(t.lastProgress) >= t.opt.ProgressEvery {
		t.progress(false)
	}
}

// retries reads the call policy's retry count when the teacher has one.
func (t *tally) retries() (int, bool) {
	if c, ok := t.teacher.(*teacher.Caller); ok {
		return c.Stats().Retries, true
	}
	return 0, false
}

func (t *tally) progress(final bool) {
	t.lastProgress = time.Now()
	el := time.Since(t.start).Seconds()
	rate := float64(t.done) / max(el, 1e-9)
	ev := t.log.Info()
	if final {
		ev = ev.Bool("final", true)
	}
	eta := "-"
	if rate > 0 && t.done < t.total {
		eta = (time.Duration(float64(t.total-t.done)/rate) * time.Second).Round(time.Second).String()
	}
	ev = ev.Str("done", fmt.Sprintf("%d/%d", t.done, t.total)).
		Str("accepted", fmt.Sprintf("%.1f%%", pct(t.accepted, t.done))).
		Str("rate", fmt.Sprintf("%.1f/s", rate)).
		Str("eta", eta).
		Int("cache_hits", t.hits)
	if n, ok := t.retries(); ok {
		ev = ev.Int("retries", n)
	}
	ev.Msg("progress")
}

func (t *tally) finishProgress() {
	if t.opt.OnProgress == nil {
		t.progress(true)
	}
}

// report builds the stats document.
func (t *tally) report(w work, problems []inputs.Problem, problemCount int, d Deps, idOf func(int) string) stats.Stats {
	st := t.stats.Report()
	st.DuplicateResponses = t.dups.find(idOf)
	st.Skipped.InputProblems = problemCount
	for _, p := range problems[:min(len(problems), 100)] {
		st.InputProblems = append(st.InputProblems, p)
	}
	st.Skipped.Limit = w.limited
	st.Cache = stats.Cache{Enabled: d.Cache != nil, Hits: t.hits, Misses: t.misses, TokensSaved: t.tokensSaved, CostSavedUSD: roundCost(t.costSaved)}
	if tc, ok := d.Teacher.(interface{ StatsJSON() []byte }); ok {
		st.Teacher = tc.StatsJSON()
	}
	return st
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func roundCost(x float64) float64 {
	return float64(int64(x*1e8+0.5)) / 1e8
}
