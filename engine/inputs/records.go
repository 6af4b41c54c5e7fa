// Package inputs reads the three JSONL inputs of a refinement run (prompt
// plan, drafts, critiques), reports bad lines with file:line, and joins them
// by id.
//
// Memory grows with the number of ids, not with bytes: the index keeps an
// offset per id and records are read back from disk when a sample is
// processed.
package inputs

import (
	"encoding/json"
	"strings"

	"github.com/pgrules/pgrules/rules"
)

// Location is where the prompt plan places a sample.
type Location struct {
	Country string `json:"country,omitempty"`
	City    string `json:"city,omitempty"`
	Region  string `json:"region,omitempty"`
}

// Plan is one prompt_plan_v1.jsonl record. Its fields that gates see
// (sample.*) are rules.Sample, decoded in place.
type Plan struct {
	rules.Sample
	TemplateVersion string    `json:"template_version"`
	TemplateName    string    `json:"template_name"`
	Prompt          string    `json:"prompt"`
	Location        *Location `json:"location,omitempty"`
	CreatedBy       string    `json:"created_by,omitempty"`
	Seed            *int64    `json:"seed,omitempty"`
}

// Draft is one drafts_v1.jsonl record. Only the fields pgrules uses are
// typed; the rest of the record is not needed downstream.
type Draft struct {
	ID string `json:"id"`
	// OutputText is nil when drafting failed.
	OutputText *string         `json:"output_text"`
	PromptPlan json.RawMessage `json:"prompt_plan,omitempty"`
	// Prompt is left empty by Set.Load: a run renders the plan's prompt.
	Prompt   string          `json:"prompt,omitempty"`
	Contract json.RawMessage `json:"contract,omitempty"`
	Teacher  json.RawMessage `json:"teacher,omitempty"`
}

// Issue is one problem a critique found.
type Issue struct {
	Type         string `json:"type"`
	Severity     string `json:"severity"`
	Message      string `json:"message"`
	EvidencePath string `json:"evidence_path,omitempty"`
}

// Critique is the critique object: nested under `critique` in the real
// files, at the top level in the flat shape.
type Critique struct {
	Verdict             string          `json:"verdict"`
	Issues              []Issue         `json:"issues"`
	Scores              json.RawMessage `json:"scores,omitempty"`
	Hallucination       json.RawMessage `json:"hallucination,omitempty"`
	Verification        json.RawMessage `json:"verification,omitempty"`
	Schema              json.RawMessage `json:"schema,omitempty"`
	RewriteInstructions []string        `json:"rewrite_instructions"`
}

// CritiqueRecord is one critiques_v1.jsonl record after normalising the
// nested and flat shapes.
//
// Most samples need only the verdict (is it reject?): the critique object
// is decoded when Body is first called — for a rejected record's summary,
// or a prompt to render — from Raw. Not safe for concurrent use.
type CritiqueRecord struct {
	ID      string
	DraftID string
	// Raw is the critique object as it appeared in the file, for the
	// prompt; nil when the critique stage failed.
	Raw json.RawMessage
	// verdict is the object's verdict as written; body is the object,
	// nil until decoded.
	verdict string
	body    *Critique
}

// Body is the critique object, nil when the critique stage failed.
func (c *CritiqueRecord) Body() *Critique {
	if c == nil || c.Raw == nil {
		return nil
	}
	if c.body == nil {
		// The index decoded these very bytes when it accepted the line,
		// so decoding them again succeeds.
		b, ok := fastCritiqueBody(c.Raw, true)
		if !ok {
			b = &Critique{}
			if err := json.Unmarshal(c.Raw, b); err != nil {
				b = &Critique{Verdict: c.verdict}
			}
		}
		c.body = b
	}
	return c.body
}

// RewriteInstructions is Body().RewriteInstructions. A prompt needs only
// them, and most samples are accepted, whose records summarise no
// critique: they are decoded alone (the rest only checked), not the
// issues with them (Body: 0.45 s of a 100k first run's CPU).
func (c *CritiqueRecord) RewriteInstructions() []string {
	if c == nil || c.Raw == nil {
		return nil
	}
	if c.body == nil {
		if b, ok := fastCritiqueBodyOf(c.Raw, false, true); ok {
			return b.RewriteInstructions
		}
	}
	return c.Body().RewriteInstructions
}

// Verdict returns the normalised verdict: pass, revise, reject, or
// "failed" (critique stage failed) / "missing" (no critique record).
func (c *CritiqueRecord) Verdict() string {
	if c == nil {
		return "missing"
	}
	if c.Raw == nil {
		return "failed"
	}
	v := strings.ToLower(strings.TrimSpace(c.verdict))
	switch v {
	case "pass", "revise", "reject":
		return v
	case "":
		return "failed"
	}
	return "unknown"
}
