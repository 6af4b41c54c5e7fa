package engine

import (
	"fmt"
	"strings"

	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
)

// job is one id to take through the stages. It holds no pointer and no
// string (the id is the inputs' ID(ord)): a million-id run plans a
// million of them, and the collector has nothing to mark in the plan.
type job struct {
	seq, ord int32
	// keep is 1 + the index in the source's Records of a previous record
	// kept as it is (--resume, merge); 0: none.
	keep int32
	// prev is 1 + the index in the committed run's Records of the id's
	// record, for an offline run to keep when the cache has no answer; 0:
	// none.
	prev int32
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
// decision about the sample and is asked again. A shard takes only its
// ids; a merge keeps every id's record from the shards, and an id without
// one means the shards are not the whole run.
func planWork(set *inputs.Set, prior, source *output.Prior, opt Options) (work, error) {
	var w work
	w.jobs = make([]job, 0, set.Len())
	merge := len(opt.MergeFrom) > 0
	missing := 0
	var firstMissing string
	for ord := range set.Len() {
		id := set.ID(ord)
		if !opt.Shard.Has(id) {
			continue
		}
		j := job{seq: int32(len(w.jobs)), ord: int32(ord)}
		if merge {
			i, ok := source.Index(id)
			if !ok {
				if missing == 0 {
					firstMissing = id
				}
				missing++
				continue
			}
			j.keep = int32(i + 1)
			w.jobs = append(w.jobs, j)
			w.kept++
			continue
		}
		if opt.Resume {
			if i, ok := prior.Index(id); ok && !prior.Records[i].TeacherFailed {
				j.keep = int32(i + 1)
				w.jobs = append(w.jobs, j)
				w.kept++
				continue
			}
		}
		if opt.Limit > 0 && w.total >= opt.Limit {
			w.limited++
			continue
		}
		w.total++
		if opt.Offline {
			if i, ok := prior.Index(id); ok {
				j.prev = int32(i + 1)
			}
		}
		w.jobs = append(w.jobs, j)
	}
	if missing > 0 {
		return w, &MergeError{Problems: []string{fmt.Sprintf("%d input id(s) have no record in any shard (the first: %q): the shards are not all of this run's ids", missing, firstMissing)}}
	}
	if merge && len(w.jobs) != len(source.Records) {
		return w, &MergeError{Problems: []string{fmt.Sprintf("the shards hold %d records but the inputs have %d ids: records of ids that are not in these inputs", len(source.Records), len(w.jobs))}}
	}
	return w, nil
}

// MergeError says why shards cannot be merged; nothing was written.
type MergeError struct{ Problems []string }

func (e *MergeError) Error() string {
	return "cannot merge the shards: " + strings.Join(e.Problems, "; ")
}
