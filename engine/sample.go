package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/pgrules/pgrules/engine/answer"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/judge"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/providers"
)

// stages are the per-sample stages of a run, wired once.
type stages struct {
	set      *inputs.Set
	template *prompt.Template
	system   string
	answers  *answer.Source
	judge    *judge.Judge
	merge    bool
}

// result is one sample after the stages: its record, encoded, and what
// the tallies need to know about it.
type result struct {
	seq     int
	id      string
	verdict judge.Verdict
	line    []byte
	outcome stats.Outcome
	// kept: the record is the previous run's (--resume).
	kept bool
	// asked: the sample needed a teacher answer.
	asked            bool
	cacheHit, called bool
	noCachedAnswer   bool
	// keptOffline: an offline run had no answer and kept the committed
	// record.
	keptOffline bool
	// interrupted: the run was cancelled before the sample finished.
	interrupted bool
	// err is an I/O failure or the teacher's early stop, never bad data:
	// bad data is a rejected record.
	err error
	// buf is the pooled buffer behind line, returned once it is written.
	buf *[]byte
}

// linePool recycles the buffers records are encoded into: a record is
// written, then its buffer serves the next one.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

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
	r := &result{seq: j.seq, id: j.id}
	s, err := st.set.Load(j.id)
	if err != nil {
		r.err = err
		return r
	}
	if j.keep != nil {
		return st.keep(r, s, j)
	}
	v, early := st.judge.Early(s)
	if !early {
		r.asked = true
		var ok bool
		if v, ok = st.answer(ctx, r, s); !ok {
			return r
		}
		if r.noCachedAnswer && j.prev != nil {
			// Offline, no answer: the committed record stands.
			r.noCachedAnswer, r.keptOffline = false, true
			return st.keep(r, s, job{seq: j.seq, id: j.id, keep: j.prev})
		}
	}
	return st.finish(r, s, v)
}

// answer renders the prompt and gets the teacher's answer; false means
// the sample has no record (interrupted, or the run is stopping).
func (st *stages) answer(ctx context.Context, r *result, s inputs.Sample) (judge.Verdict, bool) {
	req := providers.Request{ID: s.ID, System: st.system, PayloadType: s.Plan.PayloadType, Draft: *s.Draft.OutputText}
	a, err := st.answers.Answer(ctx, req, st.template.Parts(prompt.FieldsOf(s)))
	r.cacheHit, r.called = a.CacheHit, a.Called
	switch {
	case err == nil:
		v, _ := st.judge.Answered(s, a.Text, a.Response)
		return v, true
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

func (st *stages) keep(r *result, s inputs.Sample, j job) *result {
	line, err := j.keep.Line()
	if err == nil {
		r.verdict, err = judge.Kept(line, j.keep.Accepted)
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
