package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/rules"
)

// Reason codes decided before any gate runs.
const (
	ReasonMissingInputs  = "missing_inputs"
	ReasonInvalidInput   = "invalid_input"
	ReasonCritiqueReject = "critique_reject"
	ReasonTeacherError   = "teacher_error"
)

type pipeline struct {
	opt       Options
	d         Deps
	set       *inputs.Set
	createdAt string
}

func (p *pipeline) now() string {
	return p.opt.Now().UTC().Format(createdAtLayout)
}

// process turns one id into its record. It never fails for bad data: that
// is a rejected record. err is reserved for I/O failures.
func (p *pipeline) process(ctx context.Context, j job) result {
	r := result{seq: j.seq, id: j.id}
	s, err := p.set.Load(j.id)
	if err != nil {
		r.err = err
		return r
	}
	verdict := s.Critique.Verdict()
	r.outcome = stats.Outcome{Verdict: verdict}
	if s.Plan != nil {
		r.outcome.Category, r.outcome.PayloadType, r.outcome.Difficulty = s.Plan.Category, s.Plan.PayloadType, s.Plan.Difficulty
	}
	switch {
	case len(s.Invalid) > 0:
		return p.early(r, s, ReasonInvalidInput, "invalid input record: "+strings.Join(s.Invalid, "; "))
	case len(s.Missing) > 0:
		return p.early(r, s, ReasonMissingInputs, "missing "+strings.Join(s.Missing, "; "))
	case verdict == "reject":
		return p.early(r, s, ReasonCritiqueReject, "the critique's verdict is reject; no teacher call was made")
	}

	fields := prompt.Fields{
		Prompt:      s.Plan.Prompt,
		DraftOutput: *s.Draft.OutputText,
		PayloadType: s.Plan.PayloadType,
	}
	if s.Critique != nil && s.Critique.Critique != nil {
		fields.CritiqueJSON = s.Critique.Raw
		fields.RewriteInstructions = s.Critique.Critique.RewriteInstructions
	}
	req := providers.Request{ID: s.ID, System: p.d.System, Prompt: p.d.Template.Render(fields), PayloadType: s.Plan.PayloadType}

	text, resp, hit, err := p.answer(ctx, req)
	r.cacheHit = hit
	r.called = !hit
	if err != nil {
		if ctx.Err() != nil {
			r.interrupted = true
			return r
		}
		if errors.Is(err, teacher.ErrStopRun) {
			r.err = err
			return r
		}
		return p.teacherFailed(r, s, err)
	}

	dec := p.d.Rules.Evaluate(rules.Sample{
		ID: s.ID, Category: s.Plan.Category, Difficulty: s.Plan.Difficulty,
		PayloadType: s.Plan.PayloadType, RegionTags: s.Plan.RegionTags,
	}, text, p.opt.Mode)
	teacher := output.TeacherFromResponse(resp)
	gates := dec.GatesJSON()
	p.fillOutcome(&r.outcome, dec, resp)
	if dec.OverallOK {
		r.accepted = &output.Accepted{
			ID: s.ID, Category: s.Plan.Category, Difficulty: s.Plan.Difficulty,
			RegionTags: nonNil(s.Plan.RegionTags), PayloadType: s.Plan.PayloadType,
			TemplateVersion: s.Plan.TemplateVersion, TemplateName: s.Plan.TemplateName,
			Prompt: s.Plan.Prompt, Response: dec.Response, Teacher: teacher,
			Quality:   output.Quality{OverallOK: true, Gates: gates, Warnings: dec.Warnings},
			CreatedAt: p.now(),
		}
		r.outcome.Accepted = true
		return r
	}
	c := dec.Contract
	var mode *string
	if c.ParseMode != "" {
		m := c.ParseMode
		mode = &m
	}
	r.rejected = &output.Rejected{
		ID: s.ID, ReasonCodes: dec.ReasonCodes,
		Contract: &output.Contract{
			OverallOK: c.OverallOK, ParseMode: mode, PayloadType: c.PayloadType,
			StrictJSONOK: c.StrictJSONOK, EnvelopeOK: c.EnvelopeOK, PayloadOK: c.PayloadOK, Errors: c.Errors,
		},
		CritiqueSummary: summarize(s.Critique),
		RawRefinedText:  output.CapRaw(text),
		Gates:           gates,
		Teacher:         teacher,
		CreatedAt:       p.now(),
		Warnings:        dec.Warnings,
	}
	r.outcome.ReasonCodes = dec.ReasonCodes
	return r
}

// answer returns the teacher's text for req, from the cache when allowed.
func (p *pipeline) answer(ctx context.Context, req providers.Request) (string, providers.Response, bool, error) {
	var key string
	if p.d.Cache != nil {
		parts := cache.KeyParts{Provider: p.d.Provider, IdentityJSON: p.d.Identity, System: req.System, Prompt: req.Prompt}
		if p.d.KeyByID {
			parts.SampleID = req.ID
		}
		key = cache.Key(parts)
		if !p.opt.Refresh {
			e, ok, err := p.d.Cache.Get(key)
			if err != nil {
				p.d.Log.Warn().Err(err).Str("id", req.ID).Msg("cache read failed; asking the teacher")
			} else if ok {
				return e.Text, e.Teacher, true, nil
			}
		}
	}
	resp, err := p.d.Teacher.Generate(ctx, req)
	if err != nil {
		return "", resp, false, err
	}
	if p.d.Cache != nil {
		// Stored before the record is written: once paid for, an answer
		// survives a crash at any later point.
		if err := p.d.Cache.Put(key, cache.Entry{Text: resp.Text, Teacher: resp, StoredAt: p.opt.Now().UTC()}); err != nil {
			p.d.Log.Warn().Err(err).Str("id", req.ID).Msg("cache write failed; this answer will be paid for again on a rerun")
		}
	}
	return resp.Text, resp, false, nil
}

func (p *pipeline) early(r result, s inputs.Sample, reason, msg string) result {
	r.rejected = &output.Rejected{
		ID: s.ID, ReasonCodes: []string{reason},
		Contract:        &output.Contract{Error: msg},
		CritiqueSummary: summarize(s.Critique),
		Gates:           json.RawMessage("{}"),
		CreatedAt:       p.now(),
	}
	r.outcome.ReasonCodes = r.rejected.ReasonCodes
	return r
}

func (p *pipeline) teacherFailed(r result, s inputs.Sample, err error) result {
	te := &output.TeacherError{Kind: providers.KindFailed.String(), Code: "error", Message: err.Error()}
	var pe *providers.Error
	if errors.As(err, &pe) {
		te = &output.TeacherError{Kind: pe.Kind.String(), Code: pe.Code, Message: pe.Message, StatusCode: pe.StatusCode, Attempts: pe.Attempts}
	}
	r = p.early(r, s, ReasonTeacherError, fmt.Sprintf("teacher call failed: %s", err))
	attempted := []string{}
	for _, a := range te.Attempts {
		attempted = append(attempted, a.Model)
	}
	r.rejected.Teacher = &output.Teacher{Provider: p.d.Provider, AttemptedModels: attempted, Error: te}
	return r
}

func (p *pipeline) fillOutcome(o *stats.Outcome, dec *rules.Decision, resp providers.Response) {
	o.Warnings, o.Audits = dec.Warnings, dec.Audits
	o.ParseMode = dec.Contract.ParseMode
	if o.ParseMode == "" {
		o.ParseMode = "failed"
	}
	for _, g := range dec.Gates {
		if g.Passed != nil { // nil: not evaluated (a required gate failed)
			o.Gates = append(o.Gates, stats.GateOutcome{Name: g.Name, Passed: *g.Passed})
		}
	}
	o.Model = resp.ChosenModel
	o.PromptTokens, o.CompletionTokens, o.TotalTokens = resp.Usage.PromptTokens, resp.Usage.CompletionTokens, resp.Usage.TotalTokens
	o.CostUSD = resp.CostUSD
	lat := resp.LatencySeconds
	o.LatencyS = &lat
}

// priorOutcome rebuilds stats for a record kept from a previous run, so
// stats describe the whole output files.
func (p *pipeline) priorOutcome(id string, accepted bool, line []byte) stats.Outcome {
	var rec struct {
		ReasonCodes []string        `json:"reason_codes"`
		Gates       json.RawMessage `json:"gates"`
		Warnings    []string        `json:"warnings"`
		Quality     struct {
			Gates    json.RawMessage `json:"gates"`
			Warnings []string        `json:"warnings"`
		} `json:"quality"`
		Contract *struct {
			ParseMode *string `json:"parse_mode"`
		} `json:"contract"`
		Teacher *output.Teacher `json:"teacher"`
	}
	_ = json.Unmarshal(line, &rec)
	o := stats.Outcome{Accepted: accepted, ReasonCodes: rec.ReasonCodes, Warnings: rec.Warnings, Resumed: true}
	gates := rec.Gates
	if accepted {
		gates, o.Warnings = rec.Quality.Gates, rec.Quality.Warnings
	}
	for _, g := range orderedGates(gates) {
		if g.passed == nil {
			continue
		}
		o.Gates = append(o.Gates, stats.GateOutcome{Name: g.name, Passed: *g.passed})
		if g.parseMode != "" {
			o.ParseMode = g.parseMode
		}
	}
	if rec.Contract != nil && rec.Contract.ParseMode != nil {
		o.ParseMode = *rec.Contract.ParseMode
	} else if len(o.Gates) > 0 && o.ParseMode == "" {
		o.ParseMode = "failed"
	}
	if t := rec.Teacher; t != nil && t.Error == nil {
		o.Model = t.ChosenModel
		if t.Usage != nil {
			o.PromptTokens, o.CompletionTokens, o.TotalTokens = t.Usage.PromptTokens, t.Usage.CompletionTokens, t.Usage.TotalTokens
		}
		o.CostUSD = t.CostUSD
		if t.Timing != nil {
			lat := t.Timing.LatencyS
			o.LatencyS = &lat
		}
	}
	if s, err := p.set.Load(id); err == nil {
		o.Verdict = s.Critique.Verdict()
		if s.Plan != nil {
			o.Category, o.PayloadType, o.Difficulty = s.Plan.Category, s.Plan.PayloadType, s.Plan.Difficulty
		}
	}
	return o
}

type gateSummary struct {
	name      string
	passed    *bool
	parseMode string
}

// orderedGates reads a record's gates object keeping its key order.
func orderedGates(raw json.RawMessage) []gateSummary {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []gateSummary
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		name, _ := t.(string)
		var g struct {
			Passed  *bool `json:"passed"`
			Details struct {
				ParseMode string `json:"parse_mode"`
			} `json:"details"`
		}
		if err := dec.Decode(&g); err != nil {
			return out
		}
		out = append(out, gateSummary{name: name, passed: g.Passed, parseMode: g.Details.ParseMode})
	}
	return out
}

func summarize(c *inputs.CritiqueRecord) *output.CritiqueSummary {
	s := &output.CritiqueSummary{Verdict: c.Verdict()}
	if c == nil || c.Critique == nil {
		return s
	}
	seen := map[string]bool{}
	for _, is := range c.Critique.Issues {
		s.IssueCount++
		if is.Type != "" && !seen[is.Type] {
			seen[is.Type] = true
			s.IssueTypes = append(s.IssueTypes, is.Type)
		}
	}
	s.RewriteInstructionsCount = len(c.Critique.RewriteInstructions)
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
