package ruletest

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/pgrules/pgrules/rules"
)

// Coverage records which gate outcomes and which list entries the cases
// exercised.
type Coverage struct {
	gates  []*rules.Gate
	lists  []*rules.WordList
	passed map[string]bool
	failed map[string]bool
	hit    map[string]map[string]bool
}

// NewCoverage starts an empty record for rs.
func NewCoverage(rs *rules.Rules) *Coverage {
	c := &Coverage{gates: rs.Gates(), lists: rs.Lists(), passed: map[string]bool{}, failed: map[string]bool{}, hit: map[string]map[string]bool{}}
	for _, l := range c.lists {
		c.hit[l.Name] = map[string]bool{}
	}
	return c
}

// Add records one evaluated case.
func (c *Coverage) Add(d *rules.Decision) {
	for _, g := range d.Gates {
		if g.Passed == nil {
			continue
		}
		if *g.Passed {
			c.passed[g.Name] = true
		} else {
			c.failed[g.Name] = true
		}
	}
	for _, h := range d.Hits() {
		c.hit[h.List][h.Term] = true
	}
}

// Percent is covered items over all items: each gate made to pass and to
// fail, and each list entry hit at least once.
func (c *Coverage) Percent() float64 {
	covered, total := 0, 0
	for _, g := range c.gates {
		total += 2
		if c.passed[g.Name] {
			covered++
		}
		if c.failed[g.Name] {
			covered++
		}
	}
	for _, l := range c.lists {
		for _, t := range uniqueTerms(l) {
			total++
			if c.hit[l.Name][t] {
				covered++
			}
		}
	}
	if total == 0 {
		return 100
	}
	return 100 * float64(covered) / float64(total)
}

// Floor1 shows a percentage with one decimal, never rounded up: 99.96 is
// 99.9, not 100.0.
func Floor1(p float64) string {
	return fmt.Sprintf("%.1f", math.Floor(p*10)/10)
}

func uniqueTerms(l *rules.WordList) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range l.Terms {
		if !seen[t.Text] {
			seen[t.Text] = true
			out = append(out, t.Text)
		}
	}
	return out
}

// Report prints per-gate and per-list coverage.
func (c *Coverage) Report(w io.Writer) {
	fmt.Fprintln(w, "coverage:")
	for _, g := range c.gates {
		fmt.Fprintf(w, "  gate %-28s passed:%-3s failed:%-3s (%s)\n", g.Name, yesNo(c.passed[g.Name]), yesNo(c.failed[g.Name]), g.Action)
	}
	for _, l := range c.lists {
		terms := uniqueTerms(l)
		var missed []string
		for _, t := range terms {
			if !c.hit[l.Name][t] {
				missed = append(missed, t)
			}
		}
		fmt.Fprintf(w, "  list %-28s %d/%d entries hit", l.Name, len(terms)-len(missed), len(terms))
		if len(missed) > 0 {
			fmt.Fprintf(w, "; never hit: %s", strings.Join(missed, ", "))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  total %s%%\n", Floor1(c.Percent()))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
