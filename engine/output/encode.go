package output

import (
	"encoding/json"
	"strconv"

	"github.com/pgrules/pgrules/internal/pyjson"
	"github.com/pgrules/pgrules/providers"
)

// The records are written straight into Python's json.dumps layout
// (", " and ": ", ensure_ascii=False) field by field. marshalLine — a
// reflective encoding/json pass, then a second pass re-quoting every string
// — gives the same bytes (a fuzz test holds them equal) and was a tenth of
// a re-gate's time.

// AppendAccepted appends one dataset record.
func AppendAccepted(b []byte, r *Accepted) []byte {
	b = append(b, `{"id": `...)
	b = pyjson.AppendString(b, r.ID)
	b = append(b, `, "category": `...)
	b = pyjson.AppendString(b, r.Category)
	b = append(b, `, "difficulty": `...)
	b = pyjson.AppendString(b, r.Difficulty)
	b = append(b, `, "region_tags": `...)
	b = pyStrings(b, r.RegionTags)
	b = append(b, `, "payload_type": `...)
	b = pyjson.AppendString(b, r.PayloadType)
	b = append(b, `, "template_version": `...)
	b = pyjson.AppendString(b, r.TemplateVersion)
	b = append(b, `, "template_name": `...)
	b = pyjson.AppendString(b, r.TemplateName)
	b = append(b, `, "prompt": `...)
	b = pyjson.AppendString(b, r.Prompt)
	b = append(b, `, "response": `...)
	if len(r.Response) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Response...) // already in Python's layout
	}
	b = append(b, `, "teacher": `...)
	b = appendTeacher(b, r.Teacher)
	b = append(b, `, "quality": {"overall_ok": `...)
	b = strconv.AppendBool(b, r.Quality.OverallOK)
	b = append(b, `, "gates": `...)
	b = pyRaw(b, r.Quality.Gates)
	if len(r.Quality.Warnings) > 0 {
		b = append(b, `, "warnings": `...)
		b = pyStrings(b, r.Quality.Warnings)
	}
	b = append(b, `}, "created_at": `...)
	b = pyjson.AppendString(b, r.CreatedAt)
	return append(b, '}')
}

// AppendRejected appends one rejected record.
func AppendRejected(b []byte, r *Rejected) []byte {
	b = append(b, `{"id": `...)
	b = pyjson.AppendString(b, r.ID)
	b = append(b, `, "reason_codes": `...)
	b = pyStrings(b, r.ReasonCodes)
	b = append(b, `, "contract": `...)
	if c := r.Contract; c == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"overall_ok": `...)
		b = strconv.AppendBool(b, c.OverallOK)
		b = append(b, `, "parse_mode": `...)
		b = pyOptString(b, c.ParseMode)
		if c.PayloadType != "" {
			b = append(b, `, "payload_type": `...)
			b = pyjson.AppendString(b, c.PayloadType)
		}
		b = append(b, `, "strict_json_ok": `...)
		b = strconv.AppendBool(b, c.StrictJSONOK)
		b = append(b, `, "envelope_ok": `...)
		b = strconv.AppendBool(b, c.EnvelopeOK)
		b = append(b, `, "payload_ok": `...)
		b = strconv.AppendBool(b, c.PayloadOK)
		if len(c.Errors) > 0 {
			b = append(b, `, "errors": `...)
			b = pyStrings(b, c.Errors)
		}
		if c.Error != "" {
			b = append(b, `, "error": `...)
			b = pyjson.AppendString(b, c.Error)
		}
		b = append(b, '}')
	}
	b = append(b, `, "critique_summary": `...)
	if cs := r.CritiqueSummary; cs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"verdict": `...)
		b = pyjson.AppendString(b, cs.Verdict)
		b = append(b, `, "issue_count": `...)
		b = strconv.AppendInt(b, int64(cs.IssueCount), 10)
		if len(cs.IssueTypes) > 0 {
			b = append(b, `, "issue_types": `...)
			b = pyStrings(b, cs.IssueTypes)
		}
		b = append(b, `, "rewrite_instructions_count": `...)
		b = strconv.AppendInt(b, int64(cs.RewriteInstructionsCount), 10)
		b = append(b, '}')
	}
	b = append(b, `, "raw_refined_text": `...)
	b = pyOptString(b, r.RawRefinedText)
	b = append(b, `, "gates": `...)
	b = pyRaw(b, r.Gates)
	b = append(b, `, "teacher": `...)
	b = appendTeacher(b, r.Teacher)
	b = append(b, `, "created_at": `...)
	b = pyjson.AppendString(b, r.CreatedAt)
	if len(r.Warnings) > 0 {
		b = append(b, `, "warnings": `...)
		b = pyStrings(b, r.Warnings)
	}
	return append(b, '}')
}

func appendTeacher(b []byte, t *Teacher) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"provider": `...)
	b = pyjson.AppendString(b, t.Provider)
	if t.SelectedModel != "" {
		b = append(b, `, "selected_model": `...)
		b = pyjson.AppendString(b, t.SelectedModel)
	}
	if t.ChosenModel != "" {
		b = append(b, `, "chosen_model": `...)
		b = pyjson.AppendString(b, t.ChosenModel)
	}
	b = append(b, `, "attempted_models": `...)
	b = pyStrings(b, t.AttemptedModels)
	if t.RequestID != "" {
		b = append(b, `, "request_id": `...)
		b = pyjson.AppendString(b, t.RequestID)
	}
	if t.Timing != nil {
		b = append(b, `, "timing": {"latency_s": `...)
		b = pyjson.AppendFloat(b, t.Timing.LatencyS)
		b = append(b, '}')
	}
	b = append(b, `, "usage": `...)
	if u := t.Usage; u == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"prompt_tokens": `...)
		b = strconv.AppendInt(b, u.PromptTokens, 10)
		b = append(b, `, "completion_tokens": `...)
		b = strconv.AppendInt(b, u.CompletionTokens, 10)
		b = append(b, `, "total_tokens": `...)
		b = strconv.AppendInt(b, u.TotalTokens, 10)
		b = append(b, '}')
	}
	if t.CostUSD != nil {
		b = append(b, `, "cost_usd": `...)
		b = pyjson.AppendFloat(b, *t.CostUSD)
	}
	if t.FinishReason != "" {
		b = append(b, `, "finish_reason": `...)
		b = pyjson.AppendString(b, t.FinishReason)
	}
	if len(t.Fallbacks) > 0 {
		b = append(b, `, "fallbacks": `...)
		b = appendAttempts(b, t.Fallbacks)
	}
	if t.SecretsRedacted != 0 {
		b = append(b, `, "secrets_redacted": `...)
		b = strconv.AppendInt(b, int64(t.SecretsRedacted), 10)
	}
	if e := t.Error; e != nil {
		b = append(b, `, "error": {"kind": `...)
		b = pyjson.AppendString(b, e.Kind)
		b = append(b, `, "code": `...)
		b = pyjson.AppendString(b, e.Code)
		b = append(b, `, "message": `...)
		b = pyjson.AppendString(b, e.Message)
		if e.StatusCode != 0 {
			b = append(b, `, "status_code": `...)
			b = strconv.AppendInt(b, int64(e.StatusCode), 10)
		}
		if len(e.Attempts) > 0 {
			b = append(b, `, "attempts": `...)
			b = appendAttempts(b, e.Attempts)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendAttempts(b []byte, as []providers.Attempt) []byte {
	b = append(b, '[')
	for i, a := range as {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `{"model": `...)
		b = pyjson.AppendString(b, a.Model)
		if a.StatusCode != 0 {
			b = append(b, `, "status_code": `...)
			b = strconv.AppendInt(b, int64(a.StatusCode), 10)
		}
		if a.Error != "" {
			b = append(b, `, "error": `...)
			b = pyjson.AppendString(b, a.Error)
		}
		if a.Code != "" {
			b = append(b, `, "code": `...)
			b = pyjson.AppendString(b, a.Code)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func pyStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = pyjson.AppendString(b, s)
	}
	return append(b, ']')
}

func pyOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return pyjson.AppendString(b, *s)
}

// pyRaw appends JSON that is already compact (an answer, the gates).
func pyRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return pyjson.Restyle(b, raw)
}
