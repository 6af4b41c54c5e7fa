package engine

import (
	"sort"

	"github.com/pgrules/pgrules/engine/output"
)

// Changes says which ids moved between accepted and rejected since the
// previous run in the same out dir: what a gate edit actually did.
type Changes struct {
	HadPrevious bool `json:"had_previous"`
	// NewlyRejected groups ids that were accepted before by the reason
	// codes that reject them now.
	NewlyRejected map[string][]string `json:"newly_rejected,omitempty"`
	// NewlyAccepted groups ids that were rejected before by the reason
	// codes that rejected them then.
	NewlyAccepted map[string][]string `json:"newly_accepted,omitempty"`
	// ReasonChanged counts ids rejected both times for different reasons.
	ReasonChanged int `json:"reason_changed"`
	Unchanged     int `json:"unchanged"`
	New           int `json:"new"`
	// Counts per reason, complete even when the id lists are capped.
	NewlyRejectedCounts map[string]int `json:"newly_rejected_counts,omitempty"`
	NewlyAcceptedCounts map[string]int `json:"newly_accepted_counts,omitempty"`
}

// Capped keeps at most n ids per reason, so a manifest stays small when a
// gate edit moves thousands of samples; the counts stay exact.
func (c Changes) Capped(n int) Changes {
	capMap := func(m map[string][]string) (map[string][]string, map[string]int) {
		ids, counts := map[string][]string{}, map[string]int{}
		for r, l := range m {
			counts[r] = len(l)
			ids[r] = l[:min(n, len(l))]
		}
		return ids, counts
	}
	c.NewlyRejected, c.NewlyRejectedCounts = capMap(c.NewlyRejected)
	c.NewlyAccepted, c.NewlyAcceptedCounts = capMap(c.NewlyAccepted)
	return c
}

// Moved is the number of ids that changed side.
func (c Changes) Moved() int {
	n := 0
	for _, ids := range c.NewlyRejected {
		n += len(ids)
	}
	for _, ids := range c.NewlyAccepted {
		n += len(ids)
	}
	return n
}

type changeTracker struct {
	prior *output.Prior
	c     Changes
}

func newChangeTracker(prior *output.Prior) *changeTracker {
	return &changeTracker{prior: prior, c: Changes{HadPrevious: len(prior.Records) > 0, NewlyRejected: map[string][]string{}, NewlyAccepted: map[string][]string{}}}
}

func (t *changeTracker) observe(r *result) {
	i, ok := t.prior.ByID[r.id]
	if !ok {
		t.c.New++
		return
	}
	before := t.prior.Records[i]
	nowAccepted := r.verdict.Accepted != nil
	switch {
	case before.Accepted && !nowAccepted:
		for _, rc := range r.verdict.Rejected.ReasonCodes {
			t.c.NewlyRejected[rc] = append(t.c.NewlyRejected[rc], r.id)
		}
	case !before.Accepted && nowAccepted:
		for _, rc := range before.ReasonCodes {
			t.c.NewlyAccepted[rc] = append(t.c.NewlyAccepted[rc], r.id)
		}
	case !before.Accepted && !sameSet(before.ReasonCodes, r.verdict.Rejected.ReasonCodes):
		t.c.ReasonChanged++
	default:
		t.c.Unchanged++
	}
}

func (t *changeTracker) summary() Changes {
	for _, m := range []map[string][]string{t.c.NewlyRejected, t.c.NewlyAccepted} {
		for _, ids := range m {
			sort.Strings(ids)
		}
	}
	return t.c
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
