package rules

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"cel.dev/cel-go/common/cost"
)

// Finding is one lint result.
type Finding struct {
	Pos      Pos
	Severity string // "warning" or "info"
	// Rule names the check, stable for tools (SARIF ruleId).
	Rule string
	Msg  string
}

// LintRules describes each check a Finding can come from.
var LintRules = map[string]string{
	"unused-variable":  "a variable no gate or variable uses",
	"unused-list":      "a word list no gate or variable uses",
	"duplicate-entry":  "a word-list entry given twice",
	"cancelled-entry":  "a word-list entry an exception of the same list cancels: it can never hit",
	"shadowed-entry":   "a phrase that only hits where a shorter entry of the list already hits",
	"no-contract-gate": "no reject gate reads contract: answers that break it are still rejected, but no gate says why",
	"shared-reason":    "two gates give the same literal reason: the stats and reason_codes count them as one",
}

func (f Finding) String() string { return fmt.Sprintf("%s: %s: %s", f.Pos, f.Severity, f.Msg) }

// GateCost is a gate's estimated CEL cost range.
type GateCost struct {
	Gate     string
	Min, Max uint64
}

// Lint checks what compiling cannot (unknown response fields and costs
// over the limit are compile errors): variables and lists nothing uses, list entries that duplicate or
// shadow each other; and it estimates each gate's CEL cost.
func (r *Rules) Lint() ([]Finding, []GateCost) {
	var out []Finding
	all := r.expressions()
	srcs := make([]string, len(all))
	for i, c := range all {
		srcs[i] = c.src
	}
	joined := strings.Join(srcs, "\n")
	for _, v := range r.variables {
		if !regexp.MustCompile(`\bvariables\.` + v.Name + `\b`).MatchString(joined) {
			out = append(out, Finding{Pos: v.Pos, Severity: "warning", Rule: "unused-variable", Msg: fmt.Sprintf("variable %q is never used", v.Name)})
		}
	}
	for _, l := range r.lists {
		if !regexp.MustCompile(`\bhits\.` + l.Name + `\b`).MatchString(joined) {
			out = append(out, Finding{Pos: Pos{File: r.path, Line: 1, Col: 1}, Severity: "warning", Rule: "unused-list", Msg: fmt.Sprintf("list %q is never used by a gate or variable", l.Name)})
		}
		out = append(out, lintList(l)...)
	}
	contractGate := false
	for _, g := range r.gates {
		contractGate = contractGate || g.Action == ActionReject && g.expr != nil && strings.Contains(g.expr.src, "contract.")
	}
	if !contractGate {
		out = append(out, Finding{Pos: Pos{File: r.path, Line: 1, Col: 1}, Severity: "warning", Rule: "no-contract-gate",
			Msg: "no reject gate reads contract: an answer that does not parse or breaks the schemas is still rejected (parse_failed, envelope_invalid or payload_invalid), but no gate's details say why; the shipped contract_ok gate does"})
	}
	// A gate copied and its reason left as it was: the stats and the
	// records count both gates under one code, and which one rejected a
	// sample is only in its details. Two gates may mean the same thing,
	// so it is said, not refused.
	byReason := map[string]*Gate{}
	for _, g := range r.gates {
		if g.Reason == "" || g.reasonExpr != nil {
			continue
		}
		if first, ok := byReason[g.Reason]; ok {
			out = append(out, Finding{Pos: g.reasonPos, Severity: "info", Rule: "shared-reason",
				Msg: fmt.Sprintf("gate %q gives reason %q, as gate %q does: the stats and reason_codes count both as one; give each its own reason unless they mean the same", g.Name, g.Reason, first.Name)})
			continue
		}
		byReason[g.Reason] = g
	}
	var costs []GateCost
	for _, g := range r.gates {
		var gc GateCost
		gc.Gate = g.Name
		for _, c := range []*compiled{g.when, g.expr} {
			if c == nil {
				continue
			}
			est, err := r.env.EstimateCost(c.ast, sizeHints{})
			if err == nil {
				gc.Min += est.Min
				gc.Max += est.Max
			}
		}
		costs = append(costs, gc)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pos.Line < out[j].Pos.Line })
	return out, costs
}

// lintList reports duplicate entries, entries an exception cancels, and
// phrases that can only hit where a shorter entry already hits.
func lintList(l *WordList) []Finding {
	var out []Finding
	first := map[string]Term{}
	for _, t := range l.Terms {
		if p, dup := first[t.Text]; dup {
			out = append(out, Finding{Pos: Pos{File: t.File, Line: t.Line, Col: 1}, Severity: "warning", Rule: "duplicate-entry", Msg: fmt.Sprintf("%q duplicates line %d", t.Raw, p.Line)})
			continue
		}
		first[t.Text] = t
	}
	for _, e := range l.Exceptions {
		if t, ok := first[e.Text]; ok {
			out = append(out, Finding{Pos: Pos{File: t.File, Line: t.Line, Col: 1}, Severity: "warning", Rule: "cancelled-entry", Msg: fmt.Sprintf("%q can never hit: exception %q (%s:%d) cancels it", t.Raw, e.Raw, e.File, e.Line)})
		}
	}
	// One pass per phrase over an automaton of every entry: a phrase is
	// shadowed when a shorter entry occurs inside it on word boundaries.
	// (Pairwise checks were quadratic: hours for a 200,000-entry list.)
	var texts []string
	for _, t := range l.Terms {
		texts = append(texts, t.Text)
	}
	all := newMatcher(texts)
	byText := map[string]Term{}
	for _, t := range l.Terms {
		if _, ok := byText[t.Text]; !ok {
			byText[t.Text] = t
		}
	}
	for _, t := range l.Terms {
		if !strings.Contains(t.Text, " ") {
			continue
		}
		for _, sp := range spansAll(all, t.Text) {
			inner := t.Text[sp[0]:sp[1]]
			if inner == t.Text {
				continue
			}
			s := byText[inner]
			out = append(out, Finding{Pos: Pos{File: t.File, Line: t.Line, Col: 1}, Severity: "info", Rule: "shadowed-entry",
				Msg: fmt.Sprintf("%q is shadowed by %q (line %d): any text with the phrase already contains the word; keep it only if details should name the phrase", t.Raw, s.Raw, s.Line)})
			break
		}
	}
	return out
}

// spansAll is every whole-word occurrence, overlapping ones included.
func spansAll(m *matcher, s string) [][2]int {
	var out [][2]int
	for _, sp := range m.find(s) {
		if boundaryBefore(s, sp[0]) && boundaryAfter(s, sp[1]) {
			out = append(out, sp)
		}
	}
	return out
}

// Size hints bound what static cost estimation cannot know about an
// answer: a refined answer is a few thousand characters of JSON, so its
// lists hold tens of items; these bounds are generous on purpose.
const (
	maxListHint   = 100
	maxStringHint = 20_000
)

type sizeHints struct{}

func (sizeHints) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.Type() != nil && n.Type().String() == "string" {
		return &cost.SizeEstimate{Min: 0, Max: maxStringHint}
	}
	return &cost.SizeEstimate{Min: 0, Max: maxListHint}
}

func (sizeHints) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
