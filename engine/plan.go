package engine

import "github.com/pgrules/pgrules/engine/output"

// job is one id to take through the stages; keep is set when the record of
// a previous run is kept as it is (--resume).
type job struct {
	seq  int
	id   string
	keep *output.PriorRecord
	// prev is the id's committed record, for an offline run to keep when
	// the cache has no answer.
	prev *output.PriorRecord
}

// work is the plan of a run: every id of the inputs in input order, each
// either taken through the stages or kept from the previous run.
type work struct {
	jobs []job
	// total counts the samples this run processes (kept records excluded).
	total int
	// limited counts ids left out by --limit.
	limited int
	kept    int
}

// planWork decides what happens to each id. With --resume a previous
// record is kept unless its outcome was a teacher failure, which is not a
// decision about the sample and is asked again.
func planWork(ids []string, prior *output.Prior, opt Options) work {
	var w work
	w.jobs = make([]job, 0, len(ids))
	for _, id := range ids {
		if opt.Resume {
			if i, ok := prior.ByID[id]; ok && !prior.Records[i].TeacherFailed {
				rec := prior.Records[i]
				w.jobs = append(w.jobs, job{seq: len(w.jobs), id: id, keep: &rec})
				w.kept++
				continue
			}
		}
		if opt.Limit > 0 && w.total >= opt.Limit {
			w.limited++
			continue
		}
		w.total++
		j := job{seq: len(w.jobs), id: id}
		if opt.Offline {
			if i, ok := prior.ByID[id]; ok {
				j.prev = &prior.Records[i]
			}
		}
		w.jobs = append(w.jobs, j)
	}
	return w
}
