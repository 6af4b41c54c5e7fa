package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/pgrules/pgrules"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/rules"
)

func configured(t *testing.T, cfg string) *dryrun {
	t.Helper()
	d := &dryrun{}
	if _, err := d.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMixDistributionAndDeterminism(t *testing.T) {
	d := configured(t, "")
	const n = 20000
	counts := map[string]int{}
	for i := range n {
		counts[d.Outcome(fmt.Sprintf("v1_checklist_safety_%05d", i))]++
	}
	total := 0.0
	for _, w := range defaultMix {
		total += w
	}
	for o, w := range defaultMix {
		want := w / total
		got := float64(counts[o]) / n
		if math.Abs(got-want) > 0.015 {
			t.Errorf("outcome %s: %.3f of answers, configured %.3f", o, got, want)
		}
	}
	a, _ := d.Generate(context.Background(), reqFor("v1_x_0001", "itinerary"))
	b, _ := configured(t, "").Generate(context.Background(), reqFor("v1_x_0001", "itinerary"))
	if a.Text != b.Text {
		t.Error("the same id gave different answers")
	}
	// The original's dry run gave every sample the same answer.
	texts := map[string]bool{}
	for i := range 50 {
		r, err := d.Generate(context.Background(), reqFor(fmt.Sprintf("v1_y_%04d", i), "checklist"))
		if err == nil {
			texts[r.Text] = true
		}
	}
	if len(texts) < 10 {
		t.Errorf("only %d distinct answers for 50 ids", len(texts))
	}
}

func reqFor(id, pt string) providers.Request {
	return providers.Request{ID: id, PayloadType: pt, Prompt: "p"}
}

// TestOutcomesMeanWhatTheySay runs every outcome for every payload type
// through the shipped rules.
func TestOutcomesMeanWhatTheySay(t *testing.T) {
	r, err := rules.LoadFS(pgrules.Defaults, "gates.yaml", rules.Options{Fallback: pgrules.Defaults})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		strict, lenient string // "" = accepted
	}{
		"valid":                {"", ""},
		"fenced":               {"parse_failed", ""},
		"missing_verification": {"missing_verification_requirements", "missing_verification_requirements"},
		"overconfident":        {"overconfident_time_sensitive", "overconfident_time_sensitive"},
		"invalid_json":         {"parse_failed", "parse_failed"},
		"schema_invalid":       {"payload_invalid", "payload_invalid"},
	}
	for _, pt := range []string{"checklist", "itinerary", "decision_tree", "procedure"} {
		for outcome, w := range want {
			for variant := range uint64(8) {
				text := answer(pt, outcome, variant<<16|variant<<8|variant)
				s := rules.Sample{ID: "x", PayloadType: pt}
				for mode, reason := range map[rules.Mode]string{rules.ModeStrict: w.strict, rules.ModeLenient: w.lenient} {
					d := r.Evaluate(s, text, mode)
					got := strings.Join(d.ReasonCodes, ",")
					if got != reason {
						t.Errorf("%s/%s variant %d (%s): reasons %q, want %q; contract errors %v", pt, outcome, variant, mode, got, reason, d.Contract.Errors)
					}
				}
			}
		}
	}
}
