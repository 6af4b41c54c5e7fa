package engine

import (
	"fmt"
	"strings"

	"github.com/pgrules/pgrules/engine/answer"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
)

// job is one id to take through the stages. It holds no pointer and no
// string (the id is the inputs' ID(ord)).
type job struct {
	seq, ord int32
	// keep is 1 + the index in the source's Records of a previous record
	// kept as it is (--resume, merge); 0: none.
	keep int32
	// prev is 1 + the index in the committed run's Records of the id's
	// record, for an offline run to keep when the cache has no answer; 0:
	// none.
	prev int32
	// cached is the answer under the sample's remembered prompt key, read
	// ahead (nil: not read ahead, or none).
	cached *answer.Answer
}

// work is the plan of a run: every id of the inputs in input order, each
// either taken through the stages or kept from the previous run. The jobs
// are not stored (16 MB at a million ids) but decided again as they are
// dispatched: the decision is a function of the inputs and the previous
// records, so both passes agree.
type work struct {
	set           *inputs.Set
	prior, source *output.Prior
	opt           Options
	// prov says which committed records are stale (--resume, --offline).
	prov *provenance
	// total counts the samples this run processes (kept records excluded).
	total int
	// limited counts ids left out by --limit.
	limited int
	kept    int
}

// plan decides what the run does with each id, after the checks that
// can refuse it before anything is judged: a resume that would keep stale
// records, a limit that would shrink the outputs.
func plan(opt Options, set *inputs.Set, prior, source *output.Prior, d Deps) (work, *provenance, error) {
	var prov *provenance
	if opt.Resume || opt.Offline {
		var err error
		if prov, err = compareProvenance(opt, set, prior, d); err != nil {
			return work{}, nil, err
		}
	}
	if err := checkResume(opt, prior, prov); err != nil {
		return work{}, nil, err
	}
	w, err := planWork(set, prior, source, opt, prov)
	if err != nil {
		return w, nil, err
	}
	if err := checkLimit(opt, prior.View, w); err != nil {
		return w, nil, err
	}
	return w, prov, nil
}

// planWork decides what happens to each id and counts the outcomes. With
// --resume a previous record is kept unless its outcome was a teacher
// failure, which is not a decision about the sample and is asked again,
// or it is stale (see compareProvenance). A
// shard takes only its ids; a merge keeps every id's record from the
// shards, and an id without one means the shards are not the whole run.
func planWork(set *inputs.Set, prior, source *output.Prior, opt Options, prov *provenance) (work, error) {
	w := work{set: set, prior: prior, source: source, opt: opt, prov: prov}
	missing, jobs := 0, 0
	var firstMissing string
	w.decide(func(j job, d decision) bool {
		switch d {
		case missingShard:
			if missing == 0 {
				firstMissing = set.ID(int(j.ord))
			}
			missing++
		case kept:
			w.kept++
			jobs++
		case processed:
			w.total++
			jobs++
		case limited:
			w.limited++
		}
		return true
	})
	if missing > 0 {
		return w, &MergeError{Problems: []string{fmt.Sprintf("%d input id(s) have no record in any shard (the first: %q): the shards are not all of this run's ids", missing, firstMissing)}}
	}
	if len(opt.MergeFrom) > 0 && jobs != len(source.Records) {
		return w, &MergeError{Problems: []string{fmt.Sprintf("the shards hold %d records but the inputs have %d ids: records of ids that are not in these inputs", len(source.Records), jobs)}}
	}
	return w, nil
}

// jobs yields the jobs in input order.
func (w *work) jobs(yield func(job) bool) {
	w.decide(func(j job, d decision) bool {
		if d == kept || d == processed {
			return yield(j)
		}
		return true
	})
}

type decision int

const (
	outOfShard decision = iota
	missingShard
	kept
	processed
	limited
)

// decide walks the ids in input order and tells fn what happens to each,
// until fn returns false.
func (w *work) decide(fn func(job, decision) bool) {
	opt, merge := w.opt, len(w.opt.MergeFrom) > 0
	seq, total := int32(0), 0
	for ord := range w.set.Len() {
		id := w.set.ID(ord)
		j := job{seq: seq, ord: int32(ord)}
		d := processed
		switch {
		case !opt.Shard.Has(id):
			d = outOfShard
		case merge:
			if i, ok := w.source.Index(id); ok {
				j.keep, d = int32(i+1), kept
			} else {
				d = missingShard
			}
		default:
			// keep is the committed record a resume may keep (-1: none).
			keep := -1
			if opt.Resume {
				if i, ok := w.prior.Index(id); ok && !w.prov.stale(ord) {
					keep = i
				}
			}
			if keep >= 0 && !w.prior.Records[keep].TeacherFailed {
				j.keep, d = int32(keep+1), kept
				break
			}
			if opt.Limit > 0 && total >= opt.Limit {
				d = limited
				if keep >= 0 {
					// Past the limit, a resume keeps even a teacher
					// failure's record: the next resume asks again.
					j.keep, d = int32(keep+1), kept
				}
				break
			}
			total++
			if opt.Offline {
				if i, ok := w.prior.Index(id); ok {
					j.prev = int32(i + 1)
				}
			}
		}
		if d == kept || d == processed {
			seq++
		}
		if !fn(j, d) {
			return
		}
	}
}

// checkLimit refuses a run limited to fewer samples than the outputs it
// would replace hold: a quick `--limit 5` try in the out dir of a full run
// would otherwise commit 5 samples' records over all of them. The records
// a --resume keeps count: resuming 5 more at a time is what a limit is for.
func checkLimit(opt Options, committed *output.ManifestView, w work) error {
	if opt.Limit <= 0 || committed == nil || w.limited == 0 || committed.Counts["total_inputs"] <= w.kept+w.total {
		return nil
	}
	return &LimitShrinksError{OutDir: opt.OutDir, Limit: opt.Limit, Committed: committed.Counts["total_inputs"], Would: w.kept + w.total}
}

// LimitShrinksError is a limited run that would replace outputs holding
// more samples than it processes.
type LimitShrinksError struct {
	OutDir           string
	Limit, Committed int
	// Would is how many samples the limited run's outputs would hold.
	Would int
}

func (e *LimitShrinksError) Error() string {
	return fmt.Sprintf("the outputs committed in %s hold %d samples; a run limited to %d would replace them with %d", e.OutDir, e.Committed, e.Limit, e.Would)
}

// MergeError says why shards cannot be merged; nothing was written.
type MergeError struct{ Problems []string }

func (e *MergeError) Error() string {
	return "cannot merge the shards: " + strings.Join(e.Problems, "; ")
}
