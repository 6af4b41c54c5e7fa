package engine

import (
	"github.com/pgrules/pgrules/engine/changes"
	"github.com/pgrules/pgrules/engine/output"
)

// Changes says what moved since the committed outputs a run replaces.
type Changes = changes.Changes

// newChangeTracker compares a run's records with the committed ones.
func newChangeTracker(prior *output.Prior) *changes.Tracker {
	return changes.NewTracker(func(id string) (changes.Record, bool) {
		i, ok := prior.ByID[id]
		if !ok {
			return changes.Record{}, false
		}
		r := prior.Records[i]
		return changes.Record{Accepted: r.Accepted, Reasons: r.ReasonCodes}, true
	}, len(prior.Records) > 0)
}

// priorIDs lists the committed records' ids.
func priorIDs(prior *output.Prior) []string {
	out := make([]string, len(prior.Records))
	for i, r := range prior.Records {
		out[i] = r.ID
	}
	return out
}
