package judge

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/internal/jsonscan"
	"github.com/pgrules/pgrules/internal/jsonstr"
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

// orderedGates reads a record's gates object keeping its key order. It
// walks the raw bytes (every record goes through here, so a decoder was
// a twentieth of a re-gate); a record it cannot read has no gates.
func orderedGates(raw json.RawMessage) []gateSummary {
	if len(raw) == 0 {
		return nil
	}
	var out []gateSummary
	jsonscan.Members(raw, func(key, val []byte) {
		g := gateSummary{name: text(key)}
		// Keys match as encoding/json matches them: without case.
		jsonscan.Members(val, func(k, v []byte) {
			switch key := text(k); {
			case strings.EqualFold(key, "passed"):
				g.passed = nil
				if b := string(v); b == "true" || b == "false" {
					passed := b == "true"
					g.passed = &passed
				}
			case strings.EqualFold(key, "reason_code"):
				if string(v) != "null" {
					g.reason, _, _ = jsonscan.StringOf(v)
				}
			case strings.EqualFold(key, "details"):
				jsonscan.Members(v, func(dk, dv []byte) {
					if strings.EqualFold(text(dk), "parse_mode") && string(dv) != "null" {
						g.parseMode, _, _ = jsonscan.StringOf(dv)
					}
				})
			}
		})
		out = append(out, g)
	})
	return out
}

// text decodes a member key's raw bytes.
func text(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	s, _ := jsonstr.Unescape(raw)
	return s
}
