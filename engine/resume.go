package engine

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pgrules/pgrules/engine/changes"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
)

// A record kept by --resume is only the truth about these inputs under
// these rules if it was decided from the same inputs under the same rules.
// Kept records used to be taken whatever had changed: after an edit of
// gates.yaml, `--resume` committed the old decisions (a gate that could
// no longer fail still rejecting 7 samples) under a manifest naming the
// new gates, exit 0.
//
// checkResume compares the committed run's manifest with this run's
// provenance before any record is kept. Rules, word lists, schemas,
// template, system message, gating mode or the provider's answer-changing
// settings that differ refuse the resume: every kept record would be
// stale, and a rerun without --resume judges them all again from the
// cache. An input file that only grew by lines added at its end (new
// samples, a missing draft supplied) is resumed: an id whose record in
// it now comes from the added lines is processed again, the others are
// kept. An input changed in any other way refuses the resume: which
// records it touched cannot be told.

// resumeMarks says, for a --resume run, which committed records still
// stand.
type resumeMarks struct {
	// grown are the input files that grew by appended lines, each with
	// its size in the committed run.
	grown []grownFile
}

type grownFile struct {
	f    *inputs.File
	size int64
}

// stale reports whether the id numbered ord has a record in lines added
// to an input since the committed run.
func (m *resumeMarks) stale(ord int) bool {
	if m == nil {
		return false
	}
	for _, g := range m.grown {
		if off, ok := g.f.RecordAt(ord); ok && off >= g.size {
			return true
		}
	}
	return false
}

// checkResume decides whether the records committed in opt.OutDir can be
// kept (see above); nil marks when nothing grew.
func checkResume(opt Options, set *inputs.Set, prior *output.Prior, d Deps) (*resumeMarks, error) {
	if !opt.Resume || len(opt.MergeFrom) > 0 || prior.Manifest == nil || len(prior.Records) == 0 {
		return nil, nil
	}
	var before output.ManifestView
	if err := json.Unmarshal(prior.Manifest, &before); err != nil {
		return nil, nil // reported as a damaged manifest by the reader
	}
	var now Manifest
	if d.Manifest != nil {
		now.Provider = d.Manifest.Provider
	}
	now.provenance(opt, set, d)
	draft, err := json.Marshal(&now)
	if err != nil {
		return nil, err
	}
	stale := &ResumeError{OutDir: opt.OutDir}
	for _, r := range prior.Records {
		if !r.TeacherFailed {
			stale.Kept++
		}
	}
	for _, c := range changes.CompareFiles(prior.Manifest, draft) {
		// A rebuilt plugin with the same answer-changing settings gives
		// the same answers (provider_settings says when it does not);
		// inputs are looked at one id at a time below.
		if c.Kind == "plugin" || c.Kind == "input" {
			continue
		}
		if c.Kind == "gates" && d.Rules != nil {
			for _, f := range d.Rules.Files() {
				if f.Kind == "gates" {
					c.Name = f.Path
				}
			}
		}
		stale.Changed = append(stale.Changed, c)
	}
	if before.GatingMode != "" && before.GatingMode != string(opt.Mode) {
		stale.Changed = append(stale.Changed, changes.FileChange{Kind: "gating_mode", Name: "gating mode", Before: before.GatingMode, After: string(opt.Mode)})
	}
	marks := &resumeMarks{}
	for _, in := range []struct {
		role string
		f    *inputs.File
	}{{"prompt_plan", set.Plan}, {"drafts", set.Drafts}, {"critiques", set.Critiques}} {
		was, had := before.Inputs[in.role]
		switch {
		case in.f == nil && !had:
		case in.f == nil || !had:
			stale.Inputs = append(stale.Inputs, ChangedInput{Role: in.role, Given: in.f != nil})
		case was.SHA256 == in.f.SHA256:
		case in.f.Extends(was.Bytes, was.SHA256):
			marks.grown = append(marks.grown, grownFile{f: in.f, size: was.Bytes})
		default:
			stale.Inputs = append(stale.Inputs, ChangedInput{Role: in.role, Path: in.f.Path, Rewritten: true})
		}
	}
	if len(stale.Changed) > 0 || len(stale.Inputs) > 0 {
		return nil, stale
	}
	if len(marks.grown) == 0 {
		return nil, nil
	}
	return marks, nil
}

// ResumeError is a --resume that would keep records decided from other
// inputs or under other rules than this run's; nothing was judged.
type ResumeError struct {
	OutDir string
	// Kept is how many committed records the resume would have kept.
	Kept int
	// Changed are the rules, template, system message, gating mode or
	// provider settings that differ from the committed run's.
	Changed []changes.FileChange
	// Inputs are the input files changed otherwise than by appending.
	Inputs []ChangedInput
}

// ChangedInput is an input file a resume cannot keep records of.
type ChangedInput struct {
	// Role is the input's manifest name: prompt_plan, drafts, critiques.
	Role string
	Path string
	// Rewritten: changed, not only by lines added at its end. Otherwise
	// the file is given now and was not then (Given) or the reverse.
	Rewritten, Given bool
}

func (e *ResumeError) Error() string {
	var why []string
	for _, c := range e.Changed {
		switch {
		case c.Kind == "gating_mode":
			why = append(why, fmt.Sprintf("the gating mode changed (%s → %s)", c.Before, c.After))
		case c.Before == "":
			why = append(why, fmt.Sprintf("%s is new", c.Name))
		case c.After == "":
			why = append(why, fmt.Sprintf("%s is gone", c.Name))
		default:
			why = append(why, fmt.Sprintf("%s changed (sha256 %s… → %s…)", c.Name, short(c.Before), short(c.After)))
		}
	}
	for _, in := range e.Inputs {
		switch {
		case in.Rewritten:
			why = append(why, fmt.Sprintf("%s (%s) changed, and not only by lines added at its end", in.Path, in.Role))
		case in.Given:
			why = append(why, fmt.Sprintf("the %s were not given to the committed run", in.Role))
		default:
			why = append(why, fmt.Sprintf("the %s given to the committed run are not given now", in.Role))
		}
	}
	return fmt.Sprintf("--resume would keep the %d records committed in %s, but they were decided from other inputs or under other rules: since that run, %s",
		e.Kept, e.OutDir, strings.Join(why, "; "))
}

func short(sum string) string { return sum[:min(12, len(sum))] }
