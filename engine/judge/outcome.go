package judge

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/stats"
)

// Outcome is what the stats count of one record. It reads the record
// itself, so a fresh record and one kept from a previous run (--resume)
// are counted by the same code and the stats always describe the files.
//
// Audit gates leave no trace on a record but their gate result, so they
// are read from there with the action the current rules give the gate.
func (j *Judge) Outcome(s inputs.Sample, v Verdict) stats.Outcome {
	o := stats.Outcome{Verdict: s.Critique.Verdict()}
	if s.Plan != nil {
		o.Category, o.PayloadType, o.Difficulty = s.Plan.Category, s.Plan.PayloadType, s.Plan.Difficulty
	}
	var gates json.RawMessage
	var t *output.Teacher
	if a := v.Accepted; a != nil {
		o.Accepted = true
		o.Warnings = a.Quality.Warnings
		gates, t = a.Quality.Gates, a.Teacher
	} else if r := v.Rejected; r != nil {
		o.ReasonCodes, o.Warnings = r.ReasonCodes, r.Warnings
		gates, t = r.Gates, r.Teacher
		if r.Contract != nil && r.Contract.ParseMode != nil {
			o.ParseMode = *r.Contract.ParseMode
		}
	}
	for _, g := range orderedGates(gates) {
		if g.passed == nil {
			continue // not evaluated: a gate it requires failed
		}
		o.Gates = append(o.Gates, stats.GateOutcome{Name: g.name, Passed: *g.passed})
		if !*g.passed && j.Rules != nil && j.Rules.GateAction(g.name) == "audit" && !slices.Contains(o.Audits, g.reason) {
			o.Audits = append(o.Audits, g.reason)
		}
		if o.ParseMode == "" && g.parseMode != "" {
			o.ParseMode = g.parseMode
		}
	}
	if o.ParseMode == "" && !o.Accepted && len(o.Gates) > 0 {
		o.ParseMode = "failed"
	}
	if t != nil && t.Error == nil {
		o.Model = t.ChosenModel
		if t.Usage != nil {
			o.PromptTokens, o.CompletionTokens, o.TotalTokens = t.Usage.PromptTokens, t.Usage.CompletionTokens, t.Usage.TotalTokens
		}
		o.CostUSD = t.CostUSD
		o.SecretsRedacted = t.SecretsRedacted
		for _, f := range t.Fallbacks {
			o.Fallbacks = append(o.Fallbacks, f.Code)
		}
		if t.Timing != nil {
			lat := t.Timing.LatencyS
			o.LatencyS = &lat
		}
	}
	return o
}

type gateSummary struct {
	name      string
	passed    *bool
	reason    string
	parseMode string
}

// orderedGates reads a record's gates object keeping its key order.
func orderedGates(raw json.RawMessage) []gateSummary {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
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
			Passed  *bool  `json:"passed"`
			Reason  string `json:"reason_code"`
			Details struct {
				ParseMode string `json:"parse_mode"`
			} `json:"details"`
		}
		if err := dec.Decode(&g); err != nil {
			return out
		}
		out = append(out, gateSummary{name: name, passed: g.Passed, reason: g.Reason, parseMode: g.Details.ParseMode})
	}
	return out
}
