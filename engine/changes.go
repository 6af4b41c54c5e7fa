package engine

import (
	"github.com/pgrules/pgrules/engine/changes"
	"github.com/pgrules/pgrules/engine/output"
)

// Changes says what moved since the committed outputs a run replaces.
type Changes = changes.Changes

// newChangeTracker compares a run's records with the committed ones.
func newChangeTracker(prior *output.Prior) *changes.Tracker {
	return changes.NewTracker(changes.PreviousOf(prior))
}
