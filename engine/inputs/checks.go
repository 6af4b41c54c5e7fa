package inputs

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/pgrules/pgrules/internal/jsonscan"
)

// The checks below refuse inputs that cannot be what they were given as,
// before any sample is judged or any teacher asked. A bad line costs only
// its sample; these are files whose every sample would be lost: the wrong
// file, the right one in another encoding, or another dataset's.

// checkHasRecords refuses a file with no record: with lines, or none.
// An empty file is what a stage before pgrules leaves when it failed or
// has not written yet, and a run over it would commit every sample
// rejected (or none at all) in place of the last good dataset.
func checkHasRecords(f *File) error {
	if f.Records > 0 {
		return nil
	}
	if f.ProblemCount == 0 {
		return &NoRecordsError{Path: f.Path, Kind: f.kind.name}
	}
	return &NoRecordsError{Path: f.Path, Kind: f.kind.name, Lines: f.ProblemCount, First: f.Problems[0],
		UTF16: bytes.HasPrefix(f.data, []byte{0xff, 0xfe}) || bytes.HasPrefix(f.data, []byte{0xfe, 0xff}),
		Gzip:  bytes.HasPrefix(f.data, []byte{0x1f, 0x8b})}
}

// NoRecordsError is an input file none of whose lines is a record: the
// wrong file, or the right one in another encoding. A bad line costs only
// its sample, but a run over a file with no good one would commit every
// sample rejected for missing inputs in place of the last good dataset.
type NoRecordsError struct {
	// Kind is what the file was given as (prompt_plan, drafts, critiques).
	Path, Kind string
	// Lines counts the non-blank lines (0: the file is empty or blank).
	Lines int
	First Problem
	// UTF16 is set when the file starts with a UTF-16 byte order mark,
	// Gzip when it starts with gzip's magic number.
	UTF16, Gzip bool
}

func (e *NoRecordsError) Error() string {
	if e.Lines == 0 {
		return fmt.Sprintf("%s is empty: it holds no record (has the stage that writes it failed, or not finished?)", e.Path)
	}
	first := e.First
	first.Msg, _, _ = strings.Cut(first.Msg, "; the line is skipped")
	msg := fmt.Sprintf("%s: none of its %d non-blank line(s) is a record (the first: %s)", e.Path, e.Lines, first.Error())
	switch {
	case e.UTF16:
		msg += "; the file is UTF-16: save it as UTF-8"
	case e.Gzip:
		msg += "; the file is gzip-compressed: decompress it, or pass it through a pipe such as <(zcat " + e.Path + ")"
	}
	return msg
}

// checkShared refuses drafts or critiques that share no id with the plan:
// the inputs of another dataset, or of another run of the pipeline. Every
// sample would lack an input (or, for critiques, be judged as if it had
// none, reject verdicts and all).
func (s *Set) checkShared() error {
	if s.Plan.Records == 0 {
		return nil
	}
	for _, in := range []struct {
		f    *File
		kind string
	}{{s.Drafts, "drafts"}, {s.Critiques, "critiques"}} {
		if in.f == nil || in.f.Records == 0 {
			continue
		}
		example := ""
		shared := false
		for i := int32(0); i < int32(s.ids.Len()); i++ {
			if !in.f.has(i) {
				continue
			}
			if s.Plan.has(i) {
				shared = true
				break
			}
			if example == "" {
				example = s.ids.ID(int(i))
			}
		}
		if !shared {
			e := &NoSharedIDsError{Path: in.f.Path, Kind: in.kind, Records: in.f.Records, PlanPath: s.Plan.Path, Example: example}
			// Ids that differ only by white space are the likelier cause.
			for i := int32(0); i < int32(s.ids.Len()); i++ {
				if !in.f.has(i) {
					continue
				}
				if near := s.lookalike(s.ids.ID(int(i)), s.Plan); near != "" {
					e.Example, e.PlanLookalike = s.ids.ID(int(i)), near
					break
				}
			}
			return e
		}
	}
	return nil
}

// NoSharedIDsError is a drafts or critiques file none of whose ids is in
// the plan.
type NoSharedIDsError struct {
	Path, Kind string
	Records    int
	PlanPath   string
	// Example is one of the file's ids.
	Example string
	// PlanLookalike is the plan's id that differs from Example only by
	// white space around it ("" when no id of the file has one).
	PlanLookalike string
}

func (e *NoSharedIDsError) Error() string {
	if e.PlanLookalike != "" {
		return fmt.Sprintf("%s: none of its %d %s has an id of the prompt plan %s, but their ids differ by white space around them: it has %q, the plan %q; strip the spaces in the stage that writes one of them", e.Path, e.Records, e.Kind, e.PlanPath, e.Example, e.PlanLookalike)
	}
	return fmt.Sprintf("%s: none of its %d %s has an id of the prompt plan %s (one of its ids: %q): are these the %s of this plan?", e.Path, e.Records, e.Kind, e.PlanPath, e.Example, e.Kind)
}

// signatures are the top-level keys that tell the three inputs apart.
var signatures = []struct {
	kind, what string
	keys       []string
}{
	{"prompt_plan", "the prompt plan", []string{"payload_type"}},
	{"drafts", "the drafts", []string{"output_text"}},
	{"critiques", "the critiques", []string{"critique", "verdict"}},
}

// sniffRecords is how many records sniffKind reads from the top of a file.
const sniffRecords = 100

// sniffKind refuses a file passed as one input that is another: none of
// the first records has a key of its own kind, and every one has a key of
// the same other kind. Drafts passed as the plan would each cost a teacher
// call on a prompt that is not one, and end rejected.
func sniffKind(f *File, kind string) error {
	var own, read int
	other := map[string]int{}
	data := f.data
	for len(data) > 0 && read < sniffRecords {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		keys := map[string]bool{}
		if !jsonscan.Members(bytes.TrimPrefix(line, bom), func(k, _ []byte) { keys[string(k)] = true }) {
			continue
		}
		read++
		for _, sig := range signatures {
			for _, k := range sig.keys {
				if keys[k] {
					if sig.kind == kind {
						own++
					} else {
						other[sig.kind]++
					}
					break
				}
			}
		}
	}
	if own > 0 || read == 0 {
		return nil
	}
	var mine struct{ what, key string }
	for _, sig := range signatures {
		if sig.kind == kind {
			mine.what, mine.key = sig.what, sig.keys[0]
		}
	}
	for _, sig := range signatures {
		if other[sig.kind] == read {
			return &WrongInputError{Path: f.Path, Kind: kind, LooksLike: sig.kind,
				Why: fmt.Sprintf("given as %s, but its first %d record(s) look like %s: each has %q and none has %q", mine.what, read, sig.what, sig.keys[0], mine.key)}
		}
	}
	return nil
}

// WrongInputError is an input passed in another input's place (the drafts
// as the plan): Kind is what it was given as, LooksLike what it is.
type WrongInputError struct {
	Path, Kind, LooksLike, Why string
}

func (e *WrongInputError) Error() string { return e.Path + ": " + e.Why }
