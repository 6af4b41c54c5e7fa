package engine

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pgrules/pgrules/engine/changes"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
)

// Two kinds of run write committed records back unjudged: --resume keeps
// those it does not need to redo, and --offline keeps the record of a
// sample whose answer is not in the cache. A record written back is only
// the truth about these inputs under these rules if it was decided from
// the same inputs under the same rules. Both used to write them back
// whatever had changed: after an edit of gates.yaml, the old decisions (a
// gate that could no longer fail still rejecting samples) were committed
// under a manifest naming the new gates, exit 0.
//
// compareProvenance compares the committed run's manifest with this run's
// provenance before any record is written back. Rules, word lists,
// schemas, template, system message, gating mode or the provider's
// answer-changing settings that differ make every committed record
// stale. An input file that only grew by lines added at its end (new
// samples, a missing draft supplied) makes stale only the records of ids
// whose lines now come from the added part. An input changed in any other
// way makes every record stale: which ones it touched cannot be told. A
// record file that no longer matches its manifest holds records no run
// decided, and makes every record stale too.

// provenance says which committed records are still the truth about this
// run's inputs under its rules; nil: all of them.
type provenance struct {
	// changed, when not nil, makes every committed record stale, and
	// says why.
	changed *ProvenanceChange
	// grown are the input files that grew by appended lines, each with
	// its size in the committed run.
	grown []grownFile
}

type grownFile struct {
	f    *inputs.File
	size int64
}

// stale reports whether the committed record of the id numbered ord was
// decided from other inputs or under other rules than this run's.
func (p *provenance) stale(ord int) bool {
	if p == nil {
		return false
	}
	if p.changed != nil {
		return true
	}
	for _, g := range p.grown {
		if off, ok := g.f.RecordAt(ord); ok && off >= g.size {
			return true
		}
	}
	return false
}

// why says what makes the stale records stale ("" when none is).
func (p *provenance) why() string {
	switch {
	case p == nil:
		return ""
	case p.changed != nil:
		return p.changed.String()
	}
	return "lines for them were added to the inputs"
}

// compareProvenance compares the committed run's provenance with this
// run's (see above).
func compareProvenance(opt Options, set *inputs.Set, prior *output.Prior, d Deps) (*provenance, error) {
	// No manifest, or one that is not JSON (the reader reports it): no
	// provenance to compare.
	if len(opt.MergeFrom) > 0 || prior.View == nil || len(prior.Records) == 0 {
		return nil, nil
	}
	before := prior.View
	var now Manifest
	if d.Manifest != nil {
		now.Provider, now.PgrulesVersion = d.Manifest.Provider, d.Manifest.PgrulesVersion
	}
	now.provenance(opt, set, d)
	draft, err := json.Marshal(&now)
	if err != nil {
		return nil, err
	}
	change := &ProvenanceChange{}
	for _, c := range changes.CompareFiles(prior.Manifest, draft) {
		switch c.Kind {
		case "pgrules":
			// Refusing every resume after an upgrade would cost, without
			// the cache, every answer again; but the kept records were
			// decided by the old pgrules, which a release may decide
			// otherwise (an answer it now refuses): the user is told.
			d.Log.Warn().Str("was", c.Before).Str("now", c.After).Msgf("the records this run keeps were decided by pgrules %s; this is pgrules %s, which may decide some of them otherwise: rerun without --resume (or --offline) to have it judge every sample, from the cache", c.Before, c.After)
		case "plugin", "input":
			// A rebuilt plugin with the same answer-changing settings
			// gives the same answers (provider_settings says when it does
			// not); inputs are looked at one id at a time below.
		default:
			change.Changed = append(change.Changed, c)
		}
	}
	// A record file changed by hand holds records no run decided.
	change.Edited = prior.Edited
	p := &provenance{}
	for _, in := range []struct {
		role string
		f    *inputs.File
	}{{"prompt_plan", set.Plan}, {"drafts", set.Drafts}, {"critiques", set.Critiques}} {
		was, had := before.Inputs[in.role]
		switch {
		case in.f == nil && !had:
		case in.f == nil || !had:
			change.Inputs = append(change.Inputs, ChangedInput{Role: in.role, Given: in.f != nil})
		case was.SHA256 == in.f.SHA256:
		case in.f.Extends(was.Bytes, was.SHA256):
			p.grown = append(p.grown, grownFile{f: in.f, size: was.Bytes})
		default:
			change.Inputs = append(change.Inputs, ChangedInput{Role: in.role, Path: in.f.Path, Rewritten: true})
		}
	}
	if len(change.Changed) > 0 || len(change.Inputs) > 0 || len(change.Edited) > 0 {
		p.changed = change
	}
	if p.changed == nil && len(p.grown) == 0 {
		return nil, nil
	}
	return p, nil
}

// ProvenanceChange is what differs between the committed run's inputs
// and rules and this run's, such that none of its records can be written
// back as they are.
type ProvenanceChange struct {
	// Changed are the rules, template, system message, gating mode or
	// provider settings that differ from the committed run's.
	Changed []changes.FileChange
	// Inputs are the input files changed otherwise than by appending.
	Inputs []ChangedInput
	// Edited are the committed record files changed since the run that
	// wrote them (they do not match its manifest).
	Edited []string
}

// ChangedInput is an input file whose committed records cannot be told
// apart from the changed ones.
type ChangedInput struct {
	// Role is the input's manifest name: prompt_plan, drafts, critiques.
	Role string
	Path string
	// Rewritten: changed, not only by lines added at its end. Otherwise
	// the file is given now and was not then (Given) or the reverse.
	Rewritten, Given bool
}

// String says what changed, as "since that run, …" continues.
func (c *ProvenanceChange) String() string {
	var why []string
	for _, f := range c.Changed {
		if f.Path != "" {
			f.Name = f.Path // gates.yaml, not "gates file"
		}
		switch {
		case f.Kind == "gating_mode":
			why = append(why, fmt.Sprintf("the gating mode changed (%s → %s)", f.Before, f.After))
		case f.Before == "":
			why = append(why, fmt.Sprintf("%s is new", f.Name))
		case f.After == "":
			why = append(why, fmt.Sprintf("%s is gone", f.Name))
		default:
			why = append(why, fmt.Sprintf("%s changed (sha256 %s… → %s…)", f.Name, short(f.Before), short(f.After)))
		}
	}
	for _, in := range c.Inputs {
		switch {
		case in.Rewritten:
			why = append(why, fmt.Sprintf("%s (%s) changed, and not only by lines added at its end", in.Path, in.Role))
		case in.Given:
			why = append(why, fmt.Sprintf("the %s were not given to the committed run", in.Role))
		default:
			why = append(why, fmt.Sprintf("the %s given to the committed run are not given now", in.Role))
		}
	}
	for _, f := range c.Edited {
		why = append(why, fmt.Sprintf("%s was changed (it does not match the sha256 in the manifest)", f))
	}
	return strings.Join(why, "; ")
}

// ResumeError is a --resume that would keep records decided from other
// inputs or under other rules than this run's; nothing was judged.
type ResumeError struct {
	OutDir string
	// Kept is how many committed records the resume would have kept.
	Kept int
	ProvenanceChange
}

func (e *ResumeError) Error() string {
	return fmt.Sprintf("the %d records committed in %s may not be the truth about these inputs under these rules: since that run, %s",
		e.Kept, e.OutDir, e.ProvenanceChange.String())
}

// checkResume refuses a --resume whose kept records would all be stale.
func checkResume(opt Options, prior *output.Prior, p *provenance) error {
	if !opt.Resume || p == nil || p.changed == nil {
		return nil
	}
	e := &ResumeError{OutDir: opt.OutDir, ProvenanceChange: *p.changed}
	for _, r := range prior.Records {
		if !r.TeacherFailed {
			e.Kept++
		}
	}
	return e
}

func short(sum string) string { return sum[:min(12, len(sum))] }
