package inputs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Paths names the three inputs. Critiques may be empty: every sample is
// then treated as verdict pass with no instructions.
type Paths struct {
	Plan, Drafts, Critiques string
}

// Set is the three indexed inputs and the join order of their ids.
type Set struct {
	Plan, Drafts, Critiques *File
	// IDs is every id seen in any input, in plan order, then ids found only
	// in drafts, then ids found only in critiques.
	IDs []string
}

// Sample is one joined id. Missing lists absent required inputs; Invalid
// lists file:line problems of records that do exist.
type Sample struct {
	ID       string
	Plan     *Plan
	Draft    *Draft
	Critique *CritiqueRecord
	Missing  []string
	Invalid  []string
}

// Open indexes the three inputs. It fails only when a file cannot be read
// (or ctx ends): bad lines become Problems and never stop the other
// samples.
func Open(ctx context.Context, p Paths) (*Set, error) {
	s := &Set{}
	// The three files are independent: index them in parallel.
	var wg sync.WaitGroup
	var errs [3]error
	index := func(i int, path string, k kind, dst **File) {
		defer wg.Done()
		*dst, errs[i] = indexFile(ctx, path, k)
	}
	wg.Add(2)
	go index(0, p.Plan, kind{decode: func(b []byte) (string, error) {
		var v Plan
		err := json.Unmarshal(b, &v)
		return v.ID, err
	}}, &s.Plan)
	go index(1, p.Drafts, kind{decode: func(b []byte) (string, error) {
		var v Draft
		err := json.Unmarshal(b, &v)
		return v.ID, err
	}}, &s.Drafts)
	if p.Critiques != "" {
		wg.Add(1)
		go index(2, p.Critiques, kind{decode: func(b []byte) (string, error) {
			c, err := decodeCritique(b)
			if err != nil {
				return "", err
			}
			if c.ID == "" {
				c.ID = c.DraftID
			}
			return c.ID, nil
		}}, &s.Critiques)
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		s.Close()
		return nil, err
	}
	seen := make(map[string]bool, len(s.Plan.order))
	for _, f := range []*File{s.Plan, s.Drafts, s.Critiques} {
		if f == nil {
			continue
		}
		for _, id := range f.order {
			if !seen[id] {
				seen[id] = true
				s.IDs = append(s.IDs, id)
			}
		}
	}
	return s, nil
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

// Load reads back and joins the records of one id. The error is an I/O
// failure; data problems are reported in Missing and Invalid.
func (s *Set) Load(id string) (Sample, error) {
	smp := Sample{ID: id}
	line, e, ok, err := s.Plan.read(id)
	switch {
	case err != nil:
		return smp, err
	case !ok:
		smp.Missing = append(smp.Missing, fmt.Sprintf("plan (%s has no record with this id)", s.Plan.Path))
	case e.bad != "":
		smp.Invalid = append(smp.Invalid, e.bad)
	default:
		var p Plan
		if err := json.Unmarshal(line, &p); err != nil {
			return smp, err
		}
		smp.Plan = &p
	}

	line, e, ok, err = s.Drafts.read(id)
	switch {
	case err != nil:
		return smp, err
	case !ok:
		smp.Missing = append(smp.Missing, fmt.Sprintf("draft (%s has no record with this id)", s.Drafts.Path))
	case e.bad != "":
		smp.Invalid = append(smp.Invalid, e.bad)
	default:
		var d Draft
		if err := json.Unmarshal(line, &d); err != nil {
			return smp, err
		}
		if d.OutputText == nil {
			smp.Missing = append(smp.Missing, fmt.Sprintf("draft text (%s:%d has output_text null: drafting failed)", s.Drafts.Path, e.line))
		}
		smp.Draft = &d
	}

	line, e, ok, err = s.Critiques.read(id)
	switch {
	case err != nil:
		return smp, err
	case !ok:
	case e.bad != "":
		smp.Invalid = append(smp.Invalid, e.bad)
	default:
		c, err := decodeCritique(line)
		if err != nil {
			return smp, err
		}
		if c.ID == "" {
			c.ID = id
		}
		smp.Critique = c
	}
	return smp, nil
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
	rec.Critique = &c
	rec.Raw = json.RawMessage(body)
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
