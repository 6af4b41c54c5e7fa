// Package changes says what moved between two sets of outputs: which ids
// went from accepted to rejected and back, grouped by reason, which were
// rejected both times for other reasons, and which came or went. A run
// compares itself with the committed outputs it replaces; `pgrules diff`
// compares two out dirs. Both use this one comparison.
package changes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path"
	"slices"
	"sort"

	"github.com/pgrules/pgrules/engine/output"
)

// Record is what a comparison needs of one id's record.
type Record struct {
	Accepted bool
	Reasons  []string
}

// ReasonChange is an id rejected both times, for other reasons.
type ReasonChange struct {
	ID     string   `json:"id"`
	Before []string `json:"before"`
	After  []string `json:"after"`
}

// Changes is the comparison.
type Changes struct {
	HadPrevious bool `json:"had_previous"`
	// NewlyRejected groups ids accepted before by the reason codes that
	// reject them now.
	NewlyRejected map[string][]string `json:"newly_rejected,omitempty"`
	// NewlyAccepted groups ids rejected before by the reason codes that
	// rejected them then.
	NewlyAccepted map[string][]string `json:"newly_accepted,omitempty"`
	// ReasonChanged lists ids rejected both times for different reasons.
	ReasonChanged []ReasonChange `json:"reason_changed,omitempty"`
	Unchanged     int            `json:"unchanged"`
	// New and Gone are ids only in the second, or only in the first, set.
	New  []string `json:"new,omitempty"`
	Gone []string `json:"gone,omitempty"`
	// FilesChanged is what differs in the provenance of the two sets.
	FilesChanged []FileChange `json:"files_changed,omitempty"`
}

// Moved is the number of ids that changed side.
func (c Changes) Moved() int {
	return len(MovedIDs(c.NewlyRejected)) + len(MovedIDs(c.NewlyAccepted))
}

// Identical reports no decision changed.
func (c Changes) Identical() bool {
	return c.Moved() == 0 && len(c.ReasonChanged) == 0 && len(c.New) == 0 && len(c.Gone) == 0
}

// MovedIDs is every id of a group, once (an id rejected for two reasons is
// in two groups).
func MovedIDs(groups map[string][]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, ids := range groups {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Previous is the first set of a comparison: n records, looked up by id
// (giving the record and its index) and listed by index.
type Previous struct {
	N      int
	Lookup func(id string) (Record, int, bool)
	ID     func(i int) string
}

// Tracker compares records as they come with a previous set. It keeps a
// bit per previous record, not a map of ids: memory grows with ids.
type Tracker struct {
	prev Previous
	seen []bool
	c    Changes
}

// NewTracker compares with prev.
func NewTracker(prev Previous) *Tracker {
	return &Tracker{prev: prev, seen: make([]bool, prev.N), c: Changes{HadPrevious: prev.N > 0, NewlyRejected: map[string][]string{}, NewlyAccepted: map[string][]string{}}}
}

// Observe takes one id's record of the second set.
func (t *Tracker) Observe(id string, now Record) {
	before, i, ok := t.prev.Lookup(id)
	if ok {
		t.seen[i] = true
	}
	switch {
	case !ok:
		t.c.New = append(t.c.New, id)
	case before.Accepted && !now.Accepted:
		for _, rc := range now.Reasons {
			t.c.NewlyRejected[rc] = append(t.c.NewlyRejected[rc], id)
		}
	case !before.Accepted && now.Accepted:
		for _, rc := range before.Reasons {
			t.c.NewlyAccepted[rc] = append(t.c.NewlyAccepted[rc], id)
		}
	case !before.Accepted && !sameSet(before.Reasons, now.Reasons):
		t.c.ReasonChanged = append(t.c.ReasonChanged, ReasonChange{ID: id, Before: before.Reasons, After: now.Reasons})
	default:
		t.c.Unchanged++
	}
}

// Finish returns the comparison, ids gone from the second set included.
func (t *Tracker) Finish() Changes {
	for i, seen := range t.seen {
		if !seen {
			t.c.Gone = append(t.c.Gone, t.prev.ID(i))
		}
	}
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
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// FileChange is one input, rules file, template or plugin whose sha256
// differs between the manifests of two sets of outputs.
type FileChange struct {
	Kind string `json:"kind"` // input, gates, wordlist, schema, template, system_message, plugin, provider_settings, gating_mode, pgrules
	Name string `json:"name"`
	// Path is a rules file's path as the run was given it ("" for what is
	// not a rules file).
	Path   string `json:"path,omitempty"`
	Before string `json:"before,omitempty"` // sha256 ("" when absent); the mode or version, for gating_mode and pgrules
	After  string `json:"after,omitempty"`
}

// CompareFiles lists what differs between two manifests' provenance.
// Files are matched by role (the plan, the gates file) and, for word lists
// and schemas, by base name, so a copy of gates.yaml elsewhere with the
// same bytes is no change.
func CompareFiles(before, after []byte) []FileChange {
	var a, b output.ManifestView
	if json.Unmarshal(before, &a) != nil || json.Unmarshal(after, &b) != nil {
		return nil
	}
	// paths name the rules files as the user wrote them, for messages:
	// the run's path, or the committed one for a file that is gone.
	paths := map[[2]string]string{}
	sums := func(m output.ManifestView) map[[2]string]string {
		out := map[[2]string]string{}
		for name, in := range m.Inputs {
			out[[2]string{"input", name}] = in.SHA256
		}
		for _, f := range m.Rules.Files {
			name := path.Base(f.Path)
			if f.Kind == "gates" {
				name = "gates file"
			}
			out[[2]string{f.Kind, name}] = f.SHA256
			paths[[2]string{f.Kind, name}] = f.Path
		}
		out[[2]string{"template", "refine template"}] = m.Template.SHA256
		out[[2]string{"system_message", "system message"}] = m.SystemSHA256
		out[[2]string{"plugin", "provider " + m.Provider.Name}] = m.Provider.SHA256
		// The committed manifest is indented, the run's draft compact: the
		// settings are compared as compact JSON, or every rerun would
		// report them changed.
		var compact bytes.Buffer
		if json.Compact(&compact, m.Provider.Identity) != nil {
			compact.Reset()
			compact.Write(m.Provider.Identity)
		}
		id := sha256.Sum256(compact.Bytes())
		out[[2]string{"provider_settings", "answer-changing settings of provider " + m.Provider.Name}] = hex.EncodeToString(id[:])
		return out
	}
	sa, sb := sums(a), sums(b) // b's paths overwrite a's
	var out []FileChange
	// The gating mode decides as much as a rules file does; it is a word,
	// not a file, so Before and After are the modes.
	if a.GatingMode != "" && b.GatingMode != "" && a.GatingMode != b.GatingMode {
		out = append(out, FileChange{Kind: "gating_mode", Name: "gating mode", Before: a.GatingMode, After: b.GatingMode})
	}
	// So does pgrules itself: an upgrade can judge the same answer
	// otherwise (a check added to the join), and ids that move for no
	// other reason then have one.
	if a.PgrulesVersion != "" && b.PgrulesVersion != "" && a.PgrulesVersion != b.PgrulesVersion {
		out = append(out, FileChange{Kind: "pgrules", Name: "pgrules version", Before: a.PgrulesVersion, After: b.PgrulesVersion})
	}
	for k, v := range sa {
		if sb[k] != v {
			out = append(out, FileChange{Kind: k[0], Name: k[1], Path: paths[k], Before: v, After: sb[k]})
		}
	}
	for k, v := range sb {
		if _, ok := sa[k]; !ok {
			out = append(out, FileChange{Kind: k[0], Name: k[1], Path: paths[k], After: v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}
