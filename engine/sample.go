package engine

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/pgrules/pgrules/engine/answer"
	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/judge"
	"github.com/pgrules/pgrules/engine/memo"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/rules"
)

// stages are the per-sample stages of a run, wired once.
type stages struct {
	set *inputs.Set
	// source holds the records jobs keep (the committed run's, or the
	// shards' in a merge); prior the committed run's.
	source, prior *output.Prior
	template      *prompt.Template
	system        string
	answers       *answer.Source
	judge         *judge.Judge
	merge         bool
	// prov says which committed records are stale: an offline run does
	// not keep those (nil: none is).
	prov *provenance
	// keys are the prompt keys remembered for these inputs (nil: none
	// kept).
	keys *memo.PromptKeys
	// schemaChecks names the schema check of an answer by the payload
	// type its plan asks for (nil: checks are not remembered).
	schemaChecks map[string][]byte
	// hitsCheck names the word lists' search of an answer (nil: hits are
	// not remembered).
	hitsCheck []byte
}

// result is one sample after the stages: its record, encoded, and what
// the tallies need to know about it.
type result struct {
	seq int
	ord int32
	id  string
	// dec is the judge's decision on a fresh answer, until judgeAll
	// releases it once the record is encoded and hashed.
	dec *rules.Decision
	// responseHash is responseHash of the accepted record's response,
	// fresh or kept (set by judgeAll).
	responseHash uint64
	verdict      judge.Verdict
	line         []byte
	outcome      stats.Outcome
	// kept: the record is the previous run's (--resume).
	kept bool
	// asked: the sample needed a teacher answer.
	asked            bool
	cacheHit, called bool
	noCachedAnswer   bool
	// keyRemembered: the prompt key was remembered and its answer cached,
	// so no prompt was rendered; schemaRemembered: the schemas were not
	// run again on an answer that passed them before; hitsRemembered: the
	// word lists were not run again on an answer searched before.
	keyRemembered, schemaRemembered, hitsRemembered bool
	// keptOffline: an offline run had no answer and kept the committed
	// record.
	keptOffline bool
	// staleOffline: an offline run had no answer, and the committed
	// record was stale (see compareProvenance).
	staleOffline bool
	// detailError is the first details expression that failed on this
	// sample (rules.GateResult.DetailError).
	detailError string
	// interrupted: the run was cancelled before the sample finished.
	interrupted bool
	// err is an I/O failure or the teacher's early stop, never bad data:
	// bad data is a rejected record.
	err error
	// buf is the pooled buffer behind line, returned once it is written.
	buf *[]byte
}

// readAhead reads the cached answers of jobs whose prompt keys are
// remembered, cache.GetManyBatch at a time, before they are dispatched:
// one statement for many answers costs less than one each
// (cache.BenchmarkGetMany). It only reads: a job whose answer is not found
// looks it up itself, so an answer stored in between is not paid twice.
func (st *stages) readAhead(jobs iter.Seq[job]) iter.Seq[job] {
	if st.keys == nil || st.answers.Cache == nil || st.answers.Refresh {
		return jobs
	}
	return func(yield func(job) bool) {
		batch := make([]job, 0, cache.GetManyBatch)
		keys := make([]string, 0, cache.GetManyBatch)
		flush := func() bool {
			found := st.answers.Prefetch(keys)
			for i, j := range batch {
				if a, ok := found[keys[i]]; ok {
					j.cached = &a
				}
				if !yield(j) {
					return false
				}
			}
			batch, keys = batch[:0], keys[:0]
			return true
		}
		for j := range jobs {
			key := ""
			if j.keep == 0 {
				key, _ = st.keys.Get(int(j.ord))
			}
			batch, keys = append(batch, j), append(keys, key)
			if len(batch) == cap(batch) && !flush() {
				return
			}
		}
		flush()
	}
}

// linePool recycles the buffers records are encoded into: a record is
// written, then its buffer serves the next one.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// releaseDecision gives the parse's buffers of r's answer back, once its
// record is encoded: the record's Response is gone with them.
func (r *result) releaseDecision() {
	if r.dec == nil {
		return
	}
	r.dec.Release()
	r.dec = nil
	if a := r.verdict.Accepted; a != nil {
		a.Response = nil
	}
}

// release returns r's buffer to the pool; r.line is invalid afterwards.
func (r *result) release() {
	if r.buf != nil {
		*r.buf = r.line[:0]
		linePool.Put(r.buf)
		r.buf, r.line = nil, nil
	}
}

// process takes one id through join → render → answer → judge → encode.
func (st *stages) process(ctx context.Context, j job) *result {
	id := st.set.ID(int(j.ord))
	r := &result{seq: int(j.seq), ord: j.ord, id: id}
	var key string
	load := st.set.Load
	if j.keep == 0 && st.keys != nil {
		var known bool
		if key, known = st.keys.Get(int(j.ord)); known {
			// These very input bytes were rendered into this key
			// before, so the sample got past the early checks then: the
			// draft is read only if the cache misses.
			load = st.set.LoadWithoutDraft
		}
	}
	s, err := load(int(j.ord))
	if err != nil {
		r.err = err
		return r
	}
	if j.keep != 0 {
		return st.keep(r, s, st.source, int(j.keep-1))
	}
	v, early := st.judge.Early(s)
	if !early {
		r.asked = true
		var ok bool
		if v, ok = st.answer(ctx, r, s, int(j.ord), key, j.cached); !ok {
			return r
		}
		if r.noCachedAnswer && j.prev != 0 {
			if st.prov.stale(int(j.ord)) {
				// Decided from other inputs or under other rules: it is
				// no record of this run's, and the sample has none. (A
				// committed teacher failure was no decision to lose.)
				r.staleOffline = !st.prior.Records[j.prev-1].TeacherFailed
				return st.finish(r, s, v)
			}
			// Offline, no answer: the committed record stands.
			r.noCachedAnswer, r.keptOffline = false, true
			return st.keep(r, s, st.prior, int(j.prev-1))
		}
	}
	return st.finish(r, s, v)
}

// answer gets the teacher's answer — from the cache by the remembered
// prompt key when there is one (cached, when it was read ahead), else by
// rendering the prompt — and judges it; false means the sample has no
// record (interrupted, or the run is stopping).
func (st *stages) answer(ctx context.Context, r *result, s inputs.Sample, ord int, key string, cached *answer.Answer) (judge.Verdict, bool) {
	var a answer.Answer
	var err error
	hit := false
	switch {
	case key != "" && cached != nil:
		a, hit = *cached, true
		r.keyRemembered = true
	case key != "":
		a, hit = st.answers.Cached(s.ID, key)
		r.keyRemembered = hit
	}
	if !hit {
		remembered := key
		if s.Draft == nil {
			if err := st.set.LoadDraft(ord, &s); err != nil {
				r.err = err
				return judge.Verdict{}, false
			}
			if v, early := st.judge.Early(s); early {
				return v, true
			}
		}
		req := providers.Request{ID: s.ID, System: st.system, PayloadType: s.Plan.PayloadType, Draft: *s.Draft.OutputText}
		parts := st.template.Parts(prompt.FieldsOf(s))
		key = st.answers.Key(req, parts)
		if st.keys != nil && key != "" {
			st.keys.Set(ord, key)
		}
		if key != remembered { // the remembered key was looked up already
			a, hit = st.answers.Cached(s.ID, key)
		}
		if !hit {
			a, err = st.answers.Ask(ctx, req, parts)
		}
	}
	r.cacheHit, r.called = a.CacheHit, a.Called
	switch {
	case err == nil:
		return st.judgeAnswer(r, s, key, a), true
	case ctx.Err() != nil:
		r.interrupted = true
		return judge.Verdict{}, false
	case errors.Is(err, teacher.ErrStopRun):
		r.err = err
		return judge.Verdict{}, false
	case errors.Is(err, answer.ErrNoCachedAnswer):
		r.noCachedAnswer = true
		return st.judge.NoAnswer(s), true
	default:
		return st.judge.Failed(s, err), true
	}
}

// judgeAnswer judges an answer, skipping the schemas when the cache
// says this very text passed them and the word lists when it holds their
// hits in it, and telling the cache what it had to work out.
func (st *stages) judgeAnswer(r *result, s inputs.Sample, key string, a answer.Answer) judge.Verdict {
	var known rules.Known
	check := st.schemaCheck(key, s)
	known.SchemaOK = check != nil && bytes.Equal(a.Passed, check)
	hitsCheck := st.hitsCheck
	if key == "" {
		hitsCheck = nil
	}
	if n := len(hitsCheck); n > 0 && len(a.Hits) > n && bytes.Equal(a.Hits[:n], hitsCheck) {
		known.Hits = a.Hits[n:]
	}
	v, dec := st.judge.Answered(s, a.Text, a.Response, known)
	r.dec = dec
	r.schemaRemembered, r.hitsRemembered = known.SchemaOK, dec.HitsKnown
	r.detailError = dec.DetailError()
	var passed, hits []byte
	if check != nil && !known.SchemaOK && dec.Contract.OverallOK {
		passed = check
	}
	if m := dec.HitsMemo(); hitsCheck != nil && !dec.HitsKnown && m != nil {
		hits = append(bytes.Clone(hitsCheck), m...)
	}
	st.answers.Keep(s.ID, key, a, passed, hits)
	return v
}

// hitsCheck names the word lists' search of an answer: the lists and the
// parse mode (the mode decides which object of the text is searched).
func hitsCheck(r *rules.Rules, mode rules.Mode) []byte {
	d := memo.New(memo.KindHits)
	if d == nil {
		return nil
	}
	return d.AddBytes(r.ListsDigest()).Add(string(mode)).Sum()
}

// schemaCheck names the schema check of an answer to s: the schemas, the
// parse mode and the payload type the plan asks for (nil: not
// remembered). The cache keeps it on the answer's row, so an answer
// replaced under the same key is checked again.
func (st *stages) schemaCheck(key string, s inputs.Sample) []byte {
	if key == "" || s.Plan == nil {
		return nil
	}
	return st.schemaChecks[s.Plan.PayloadType]
}

// schemaChecks are the names of the schema checks an answer can pass,
// by the payload type its plan asks for: one of the schemas' or none
// (any). An answer asked for another type fails the contract, so it
// needs none.
func schemaChecks(r *rules.Rules, mode rules.Mode) map[string][]byte {
	base := memo.New(memo.KindSchemaOK)
	if base == nil {
		return nil
	}
	common := base.AddBytes(r.SchemaDigest()).Add(string(mode)).Sum()
	checks := map[string][]byte{"": memo.Extend(common, "")}
	for _, pt := range r.PayloadTypes() {
		checks[pt] = memo.Extend(common, pt)
	}
	return checks
}

func (st *stages) keep(r *result, s inputs.Sample, from *output.Prior, i int) *result {
	line, err := from.Line(i)
	if err == nil {
		r.verdict, err = judge.Kept(line, from.Records[i].Accepted)
	}
	if err != nil {
		r.err = err
		return r
	}
	r.kept, r.line = true, line
	r.outcome = st.judge.Outcome(s, r.verdict)
	// A merged record was processed by its shard, not resumed by the merge.
	r.outcome.Resumed = !st.merge
	return r
}

func (st *stages) finish(r *result, s inputs.Sample, v judge.Verdict) *result {
	buf := linePool.Get().(*[]byte)
	r.verdict, r.line, r.buf = v, v.Encode((*buf)[:0]), buf
	r.outcome = st.judge.Outcome(s, v)
	return r
}
