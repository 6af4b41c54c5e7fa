// Package judge is the judge stage of a run: it turns one joined sample
// and what the teacher did with it (an answer, a failure, nothing) into
// the sample's record — accepted or rejected, with every reason — by
// handing the answer to the rules (parse → contract → gates).
package judge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/rules"
)

// Reason codes decided outside the gates. The gates' own codes come from
// gates.yaml; rules.ReasonGateError marks a gate that failed to evaluate.
const (
	ReasonMissingInputs  = "missing_inputs"
	ReasonInvalidInput   = "invalid_input"
	ReasonCritiqueReject = "critique_reject"
	ReasonTeacherError   = output.ReasonTeacherError
	ReasonNoCachedAnswer = output.ReasonNoCachedAnswer
)

// Judge decides records. It is safe for concurrent use.
type Judge struct {
	Rules *rules.Rules
	Mode  rules.Mode
	// Provider names the teacher on records of failed calls.
	Provider string
	// CreatedAt stamps every record of the run.
	CreatedAt string
}

// Verdict is one sample's record: exactly one of Accepted and Rejected.
type Verdict struct {
	Accepted *output.Accepted
	Rejected *output.Rejected
	// Sink is the output file the record belongs in.
	Sink string
}

func accepted(a *output.Accepted) Verdict {
	return Verdict{Accepted: a, Sink: output.DatasetFile}
}

func rejected(r *output.Rejected) Verdict {
	return Verdict{Rejected: r, Sink: output.RejectedFile}
}

// Encode appends the record, as its output line, to b.
func (v Verdict) Encode(b []byte) []byte {
	if v.Accepted != nil {
		return output.AppendAccepted(b, v.Accepted)
	}
	return output.AppendRejected(b, v.Rejected)
}

// ReasonCodes are the record's reasons (none when accepted).
func (v Verdict) ReasonCodes() []string {
	if v.Rejected != nil {
		return v.Rejected.ReasonCodes
	}
	return nil
}

// Early rejects a sample that cannot be sent to the teacher: bad or
// missing inputs, or a critique that already rejected the draft. It
// returns false when the sample goes on to the teacher.
func (j *Judge) Early(s inputs.Sample) (Verdict, bool) {
	switch {
	case len(s.Invalid) > 0:
		return j.reject(s, ReasonInvalidInput, "invalid input record: "+strings.Join(s.Invalid, "; ")), true
	case len(s.Missing) > 0:
		return j.reject(s, ReasonMissingInputs, "missing "+strings.Join(s.Missing, "; ")), true
	case s.Plan != nil && s.Plan.PayloadType != "" && j.Rules != nil && !j.Rules.HasPayloadType(s.Plan.PayloadType):
		// The contract asks the answer for the plan's payload type, which
		// no schema allows: no answer could pass, so none is paid for.
		return j.reject(s, ReasonInvalidInput, fmt.Sprintf("invalid input record: %s:%d: payload_type %q has no payload schema (the rules have: %s); no teacher call was made",
			s.PlanPath, s.PlanLine, s.Plan.PayloadType, strings.Join(j.Rules.PayloadTypes(), ", "))), true
	case s.Critique.Verdict() == "reject":
		return j.reject(s, ReasonCritiqueReject, "the critique's verdict is reject; no teacher call was made"), true
	}
	return Verdict{}, false
}

// Answered judges the teacher's text with the rules, not working out
// again what is known of it (see rules.Known).
func (j *Judge) Answered(s inputs.Sample, text string, resp providers.Response, known rules.Known) (Verdict, *rules.Decision) {
	sample := s.Plan.Sample
	sample.ID = s.ID
	dec := j.Rules.EvaluateKnown(sample, text, j.Mode, known)
	teacher := output.TeacherFromResponse(resp)
	gates := dec.GatesJSON()
	if dec.OverallOK {
		return accepted(&output.Accepted{
			ID: s.ID, Category: s.Plan.Category, Difficulty: s.Plan.Difficulty,
			RegionTags: nonNil(s.Plan.RegionTags), PayloadType: s.Plan.PayloadType,
			TemplateVersion: s.Plan.TemplateVersion, TemplateName: s.Plan.TemplateName,
			Prompt: s.Plan.Prompt, Response: dec.Response, Teacher: teacher,
			Quality:   output.Quality{OverallOK: true, Gates: gates, Warnings: dec.Warnings},
			CreatedAt: j.CreatedAt,
		}), dec
	}
	c := dec.Contract
	var mode *string
	if c.ParseMode != "" {
		m := c.ParseMode
		mode = &m
	}
	return rejected(&output.Rejected{
		ID: s.ID, ReasonCodes: dec.ReasonCodes,
		Contract: &output.Contract{
			OverallOK: c.OverallOK, ParseMode: mode, PayloadType: c.PayloadType,
			StrictJSONOK: c.StrictJSONOK, EnvelopeOK: c.EnvelopeOK, PayloadOK: c.PayloadOK, Errors: c.Errors,
		},
		CritiqueSummary: summarize(s.Critique),
		RawRefinedText:  output.CapRaw(text),
		Gates:           gates,
		Teacher:         teacher,
		CreatedAt:       j.CreatedAt,
		Warnings:        dec.Warnings,
	}), dec
}

// Failed rejects a sample whose teacher call failed.
func (j *Judge) Failed(s inputs.Sample, err error) Verdict {
	te := &output.TeacherError{Kind: providers.KindFailed.String(), Code: "error", Message: err.Error()}
	var pe *providers.Error
	if errors.As(err, &pe) {
		te = &output.TeacherError{Kind: pe.Kind.String(), Code: pe.Code, Message: pe.Message, StatusCode: pe.StatusCode, Attempts: pe.Attempts}
	}
	v := j.reject(s, ReasonTeacherError, fmt.Sprintf("teacher call failed: %s", err))
	attempted := []string{}
	for _, a := range te.Attempts {
		attempted = append(attempted, a.Model)
	}
	v.Rejected.Teacher = &output.Teacher{Provider: j.Provider, AttemptedModels: attempted, Error: te}
	return v
}

// NoAnswer rejects a sample that an offline run could not answer from the
// cache.
func (j *Judge) NoAnswer(s inputs.Sample) Verdict {
	return j.reject(s, ReasonNoCachedAnswer, "offline run: the response cache holds no answer for this prompt, and no teacher was asked")
}

func (j *Judge) reject(s inputs.Sample, reason, msg string) Verdict {
	return rejected(&output.Rejected{
		ID: s.ID, ReasonCodes: []string{reason},
		Contract:        &output.Contract{Error: msg},
		CritiqueSummary: summarize(s.Critique),
		Gates:           json.RawMessage("{}"),
		CreatedAt:       j.CreatedAt,
	})
}

// Kept decodes a record kept from a previous run (--resume) so that it
// goes through the same accounting as a fresh one.
func Kept(line []byte, isAccepted bool) (Verdict, error) {
	if isAccepted {
		var a output.Accepted
		if err := json.Unmarshal(line, &a); err != nil {
			return Verdict{}, err
		}
		return accepted(&a), nil
	}
	var r output.Rejected
	if err := json.Unmarshal(line, &r); err != nil {
		return Verdict{}, err
	}
	return rejected(&r), nil
}

func summarize(c *inputs.CritiqueRecord) *output.CritiqueSummary {
	s := &output.CritiqueSummary{Verdict: c.Verdict()}
	body := c.Body()
	if body == nil {
		return s
	}
	seen := map[string]bool{}
	for _, is := range body.Issues {
		s.IssueCount++
		if is.Type != "" && !seen[is.Type] {
			seen[is.Type] = true
			s.IssueTypes = append(s.IssueTypes, is.Type)
		}
	}
	s.RewriteInstructionsCount = len(body.RewriteInstructions)
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
