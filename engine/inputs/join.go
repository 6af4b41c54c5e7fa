package inputs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/pgrules/pgrules/engine/memo"
	"github.com/pgrules/pgrules/internal/idtab"
)

// Paths names the three inputs. Critiques may be empty: every sample is
// then treated as verdict pass with no instructions.
type Paths struct {
	Plan, Drafts, Critiques string
}

// Set is the three indexed inputs and the join order of their ids.
type Set struct {
	Plan, Drafts, Critiques *File
	// ids numbers every id seen in any input: plan order, then ids found
	// only in drafts, then ids found only in critiques.
	ids *idtab.Table
	// spaced maps the trimmed form of each id with white space around it
	// to those ids (built once, when an input is first found missing).
	spaced     map[string][]int32
	spacedOnce sync.Once
}

// lookalike is the id of f that differs from id only by white space
// around it ("" when there is none): the usual reason two inputs that
// look alike do not join.
func (s *Set) lookalike(id string, f *File) string {
	trimmed := strings.TrimSpace(id)
	if trimmed != id {
		if ord, ok := s.ids.Get(trimmed); ok && f.has(int32(ord)) {
			return trimmed
		}
	}
	s.spacedOnce.Do(func() {
		s.spaced = map[string][]int32{}
		for ord := range s.ids.Len() {
			v := s.ids.ID(ord)
			if t := strings.TrimSpace(v); t != v {
				s.spaced[t] = append(s.spaced[t], int32(ord))
			}
		}
	})
	for _, ord := range s.spaced[trimmed] {
		if v := s.ids.ID(int(ord)); v != id && f.has(ord) {
			return v
		}
	}
	return ""
}

// missing words an input f lacks for id, naming a lookalike id it has.
func (s *Set) missing(what, id string, f *File) string {
	if near := s.lookalike(id, f); near != "" {
		return fmt.Sprintf("%s (%s has no record with this id; it has %q, which differs only by white space around it)", what, f.Path, near)
	}
	return fmt.Sprintf("%s (%s has no record with this id)", what, f.Path)
}

// Len is the number of ids in the inputs.
func (s *Set) Len() int { return s.ids.Len() }

// ID is the id numbered ord (0 ≤ ord < Len) in input order.
func (s *Set) ID(ord int) string { return s.ids.ID(ord) }

// IDs numbers the inputs' ids; the table is the Set's (read it, do not
// add to it).
func (s *Set) IDs() *idtab.Table { return s.ids }

// Sample is one joined id. Missing lists absent required inputs; Invalid
// lists file:line problems of records that do exist.
type Sample struct {
	ID       string
	Plan     *Plan
	Draft    *Draft
	Critique *CritiqueRecord
	Missing  []string
	Invalid  []string
	// PlanPath and PlanLine say where the plan record is (PlanLine 0:
	// there is none).
	PlanPath string
	PlanLine int
}

var (
	planKind = kind{
		name: "prompt_plan",
		fast: func(b []byte) (string, bool) {
			p, ok := fastPlanMode(b, false)
			return p.ID, ok
		},
		slow: func(b []byte) (string, error) {
			var v Plan
			err := json.Unmarshal(b, &v)
			return v.ID, err
		},
	}
	draftKind = kind{
		name: "drafts",
		fast: func(b []byte) (string, bool) {
			d, ok := fastDraftMode(b, false, false)
			return d.ID, ok
		},
		slow: func(b []byte) (string, error) {
			var v Draft
			err := json.Unmarshal(b, &v)
			return v.ID, err
		},
	}
	critiqueKind = kind{
		name: "critiques",
		fast: func(b []byte) (string, bool) {
			c, ok := checkCritique(b)
			if !ok || c.Verdict() == "unknown" {
				return "", false // the slow path says what is wrong
			}
			if c.ID == "" {
				return c.DraftID, true
			}
			return c.ID, true
		},
		slow: func(b []byte) (string, error) {
			c, err := decodeCritique(b)
			if err != nil {
				return "", err
			}
			if c.ID == "" {
				c.ID = c.DraftID
			}
			return c.ID, nil
		},
	}
)

// Open indexes the three inputs. It fails only when a file cannot be read
// (or ctx ends): bad lines become Problems and never stop the other
// samples. The files are mapped into memory and scanned in chunks on
// every core; memory then holds an entry per id, not the records.
func Open(ctx context.Context, p Paths) (*Set, error) {
	return OpenRemembering(ctx, p, nil)
}

// OpenRemembering is Open that keeps each file's index in memos (the
// response cache) under the file's sha256, and reads a file whose index
// is remembered without scanning it. memos may be nil.
func OpenRemembering(ctx context.Context, p Paths, memos memo.Store) (*Set, error) {
	s := &Set{}
	type input struct {
		path string
		k    kind
		dst  **File
	}
	ins := []input{{p.Plan, planKind, &s.Plan}, {p.Drafts, draftKind, &s.Drafts}}
	if p.Critiques != "" {
		ins = append(ins, input{p.Critiques, critiqueKind, &s.Critiques})
	}
	// Open (and spool) concurrently: a FIFO must not wait for another.
	var wg sync.WaitGroup
	errs := make([]error, len(ins))
	for i, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*in.dst, errs[i] = openFile(ctx, in.path, in.k)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, err
	}
	files := make([]*File, len(ins))
	for i, in := range ins {
		files[i] = *in.dst
	}
	// Each file is hashed, then its index recalled for its sha256 or its
	// chunks scanned on every core, while the chunks done so far are added
	// in file order (duplicates and problems depend on what came first),
	// so only a few chunks' lines are held at a time. A file is scanned
	// as soon as its own sum says it must be, while the others are still
	// hashed: hashing every file before scanning any left a core idle
	// while the largest was hashed (at 100k, about 0.3 s). Its index never
	// waits for its sum. (Hashing a file while it is scanned saved 0.3 s
	// at 100k, but each file's index then waited for its sum in memory:
	// at a million lines, three 48 MB indexes at once, and the run's peak
	// RssAnon went from 280 to 396 MB.) Remembered indexes are read (and
	// checked) side by side: one after the other they were most of a
	// re-gate's first half second, on one core.
	//
	// Hashing and scanning share one token a core, taken by the hashes
	// first: a hash never waits for a core once it has begun, so the
	// largest file's sum, which its scan waits for, comes as soon as it
	// can. (Without them the scans of the first file took both cores
	// while the drafts were hashed, and the drafts' scan then waited.)
	recalled := make([][]byte, len(files))
	remembered := make([]bool, len(files))
	decided := make([]chan struct{}, len(files))
	cores := make(chan struct{}, runtime.GOMAXPROCS(0))
	var hashing sync.WaitGroup
	for i, f := range files {
		decided[i] = make(chan struct{})
		hashing.Add(1)
		go func() {
			defer hashing.Done()
			defer close(decided[i])
			if ctx.Err() != nil {
				return
			}
			cores <- struct{}{}
			defer func() { <-cores }()
			if !f.knownSum(memos) {
				f.hash(ctx, memos)
			}
			if index, ok := f.recall(memos); ok {
				recalled[i], remembered[i] = index, true
			}
		}()
	}
	// fail closes the files on the way out, once nothing reads them.
	fail := func(err error) (*Set, error) {
		hashing.Wait()
		s.Close()
		return nil, err
	}
	var chunks []*chunk
	for i, f := range files {
		for _, c := range f.split() {
			c.decided, c.remembered = decided[i], &remembered[i]
			chunks = append(chunks, c)
		}
	}
	scanning := scanAll(ctx, chunks, cores)
	t := idtab.New(0)
	add := func(f *File) func(scanned) { return func(sc scanned) { f.add(t, sc) } }
	next := 0
	for i, f := range files {
		<-decided[i]
		if remembered[i] {
			eachScanned(recalled[i], add(f))
			recalled[i] = nil
			for ; next < len(chunks) && chunks[next].file == f; next++ {
				<-chunks[next].done // skipped
				scanning.release()
			}
			continue
		}
		var index []byte
		base := 0 // lines in the file's earlier chunks
		for ; next < len(chunks) && chunks[next].file == f; next++ {
			c := chunks[next]
			<-c.done
			for _, sc := range c.lines {
				sc.line += base
				f.add(t, sc)
				index = appendScanned(index, sc)
			}
			base += c.lineCount
			c.lines = nil
			scanning.release()
		}
		if ctx.Err() == nil {
			f.remember(memos, index)
		}
	}
	hashing.Wait()
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	for i, f := range files {
		err := checkHasRecords(f)
		if err == nil {
			err = sniffKind(f, ins[i].k.name)
		}
		if err != nil {
			return fail(err)
		}
	}
	s.join(t)
	if err := s.checkShared(); err != nil {
		return fail(err)
	}
	return s, nil
}

// scanner scans chunks in order on every core, at most a few ahead of
// the chunks the caller has taken in (release).
type scanner struct{ tokens chan struct{} }

func (s scanner) release() { <-s.tokens }

func scanAll(ctx context.Context, chunks []*chunk, cores chan struct{}) scanner {
	workers := runtime.GOMAXPROCS(0)
	sc := scanner{tokens: make(chan struct{}, 2*workers)}
	work := make(chan *chunk, len(chunks))
	for _, c := range chunks {
		c.done = make(chan struct{})
		work <- c
	}
	close(work)
	for range workers {
		go func() {
			for {
				sc.tokens <- struct{}{}
				c, ok := <-work
				if !ok {
					<-sc.tokens
					return
				}
				<-c.decided
				if ctx.Err() == nil && !*c.remembered {
					cores <- struct{}{}
					c.scan()
					<-cores
				}
				close(c.done)
			}
		}()
	}
	return sc
}

// join takes the id table: every id once, in plan order, then ids only in
// drafts, then only in critiques; each file's records by id index.
func (s *Set) join(t *idtab.Table) {
	s.ids = t
	for _, f := range []*File{s.Plan, s.Drafts, s.Critiques} {
		if f == nil {
			continue
		}
		if n := t.Len() - len(f.byIndex); n > 0 {
			f.byIndex = append(f.byIndex, make([]location, n)...)
		}
		f.salvaged = nil
	}
}

// ProblemCount counts every bad line of the three inputs.
func (s *Set) ProblemCount() int {
	n := 0
	for _, f := range []*File{s.Plan, s.Drafts, s.Critiques} {
		if f != nil {
			n += f.ProblemCount
		}
	}
	return n
}

// Problems returns the bad lines kept of the three inputs (at most
// MaxProblemsKept a file), file by file.
func (s *Set) Problems() []Problem {
	var out []Problem
	for _, f := range []*File{s.Plan, s.Drafts, s.Critiques} {
		if f != nil {
			out = append(out, f.Problems...)
		}
	}
	return out
}

// Close releases the three files.
func (s *Set) Close() error {
	return errors.Join(s.Plan.Close(), s.Drafts.Close(), s.Critiques.Close())
}

// Unchanged reports, as ErrChanged, an input written to since the run
// opened it.
func (s *Set) Unchanged() error {
	return errors.Join(s.Plan.Unchanged(), s.Drafts.Unchanged(), s.Critiques.Unchanged())
}

// ErrChanged reports an input file that changed (was written to, or
// truncated) while the run read it.
var ErrChanged = errors.New("input changed during the run")

// Load reads back and joins the records of the id numbered ord (see ID):
// the caller has the ordinal, so the id is not looked up again. The error
// is an input that changed under the run; data problems are reported in
// Missing and Invalid.
func (s *Set) Load(ord int) (Sample, error) {
	return s.safely(ord, func() (Sample, error) { return s.load(ord, s.ID(ord), true) })
}

// LoadWithoutDraft is Load leaving Sample.Draft nil (and not looking
// inside the draft record): a rerun that remembers the sample's prompt key
// needs the draft — the largest record — only when the cache misses, and
// then calls LoadDraft.
func (s *Set) LoadWithoutDraft(ord int) (Sample, error) {
	return s.safely(ord, func() (Sample, error) { return s.load(ord, s.ID(ord), false) })
}

// LoadDraft fills in the draft of smp, the sample LoadWithoutDraft(ord)
// returned.
func (s *Set) LoadDraft(ord int, smp *Sample) error {
	_, err := s.safely(ord, func() (Sample, error) { return Sample{}, s.loadDraft(ord, smp) })
	return err
}

func (s *Set) safely(ord int, load func() (Sample, error)) (smp Sample, err error) {
	// The records are read from memory-mapped files: a file truncated
	// under the run faults instead of failing a read, so the fault is
	// turned into an error here.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: reading the records of %q: %v", ErrChanged, s.ID(ord), r)
		}
	}()
	return load()
}

func (s *Set) load(i int, id string, draft bool) (Sample, error) {
	smp := Sample{ID: id}
	if e := s.Plan.byIndex[i]; !e.present() {
		smp.Missing = append(smp.Missing, s.missing("plan", id, s.Plan))
	} else if bad := s.Plan.bad[int32(i)]; bad != "" {
		smp.Invalid = append(smp.Invalid, bad)
	} else {
		smp.PlanPath, smp.PlanLine = s.Plan.Path, int(e.line)
		line := s.Plan.line(e)
		p, ok := fastPlan(line)
		if !ok {
			if err := json.Unmarshal(line, &p); err != nil {
				return smp, err
			}
		}
		smp.Plan = &p
	}

	if e := s.Drafts.byIndex[i]; !e.present() {
		smp.Missing = append(smp.Missing, s.missing("draft", id, s.Drafts))
	} else if bad := s.Drafts.bad[int32(i)]; bad != "" {
		smp.Invalid = append(smp.Invalid, bad)
	} else if draft {
		if err := s.loadDraft(i, &smp); err != nil {
			return smp, err
		}
	}

	if s.Critiques == nil {
		return smp, nil
	}
	switch e, bad := s.Critiques.byIndex[i], s.Critiques.bad[int32(i)]; {
	case !e.present(): // no critique: verdict missing
	case bad != "":
		smp.Invalid = append(smp.Invalid, bad)
	default:
		line := s.Critiques.line(e)
		c, ok := fastCritiqueMode(line, false)
		if !ok {
			var err error
			if c, err = decodeCritique(line); err != nil {
				return smp, err
			}
		}
		if c.ID == "" {
			c.ID = id
		}
		smp.Critique = c
	}
	return smp, nil
}

func (s *Set) loadDraft(i int, smp *Sample) error {
	e := s.Drafts.byIndex[i]
	if !e.present() || s.Drafts.bad[int32(i)] != "" {
		return nil // reported by load
	}
	line := s.Drafts.line(e)
	d, ok := fastDraftText(line)
	if !ok {
		if err := json.Unmarshal(line, &d); err != nil {
			return err
		}
	}
	switch {
	case d.OutputText == nil:
		smp.Missing = append(smp.Missing, fmt.Sprintf("draft text (%s:%d has output_text null: drafting failed)", s.Drafts.Path, e.line))
	case strings.TrimSpace(*d.OutputText) == "":
		// Nothing to refine: the teacher would write an answer from the
		// prompt alone, and the critique is of nothing.
		smp.Missing = append(smp.Missing, fmt.Sprintf("draft text (%s:%d has an empty output_text: nothing to refine)", s.Drafts.Path, e.line))
	}
	smp.Draft = &d
	return nil
}

// decodeCritique accepts the real nested shape ({"critique": {...}}) and
// the flat one (verdict, issues ... at the top level). The original read
// only the flat shape and so saw every real verdict as "unknown".
func decodeCritique(b []byte) (*CritiqueRecord, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	rec := &CritiqueRecord{}
	if raw, ok := top["id"]; ok {
		_ = json.Unmarshal(raw, &rec.ID)
	}
	if raw, ok := top["draft_id"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &rec.DraftID); err != nil {
			return nil, fieldErr("draft_id", err)
		}
	}
	body, nested := top["critique"]
	if !nested {
		if _, flat := top["verdict"]; !flat {
			// No critique at all: the critique stage produced nothing usable.
			return rec, nil
		}
		body = b
	}
	if string(body) == "null" {
		return rec, nil
	}
	var c Critique
	var err error
	if err = json.Unmarshal(body, &c); err != nil {
		if nested {
			return nil, fieldErr("critique", err)
		}
		return nil, err
	}
	rec.body, rec.verdict = &c, c.Verdict
	rec.Raw = json.RawMessage(body)
	if rec.Verdict() == "unknown" {
		// Refined as a "revise", a draft the critic meant to reject
		// ("rejected", "fail") could be accepted.
		field := "verdict"
		if nested {
			field = "critique.verdict"
		}
		return nil, fmt.Errorf("field %q: %q is not one of pass, revise, reject", field, c.Verdict)
	}
	if !nested {
		// Keep the flat record's id, teacher and timestamps out of the prompt.
		if rec.Raw, err = json.Marshal(&c); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

func fieldErr(field string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			te.Field = field
		} else {
			te.Field = field + "." + te.Field
		}
		return te
	}
	return fmt.Errorf("field %q: %w", field, err)
}
