package stats

import (
	"encoding/json"
	"strings"
	"testing"
)

func f(x float64) *float64 { return &x }

func TestPassRatesArePerGateName(t *testing.T) {
	c := New([]string{"contract_ok", "verification_when_needed", "overconfidence_guard"}, map[string]string{"contract_ok": "reject"})
	// The original stored failures under reason codes and looked them up
	// by gate name, so every gate read 100 %. Here a failure of
	// overconfidence_guard (reason overconfident_time_sensitive) counts
	// against that gate only.
	c.Add(Outcome{Accepted: true, Gates: []GateOutcome{{"contract_ok", true}, {"verification_when_needed", true}, {"overconfidence_guard", true}}, Model: "m", LatencyS: f(1), TotalTokens: 10, CostUSD: f(0.5)})
	c.Add(Outcome{ReasonCodes: []string{"overconfident_time_sensitive"}, Gates: []GateOutcome{{"contract_ok", true}, {"verification_when_needed", true}, {"overconfidence_guard", false}}, Model: "m", LatencyS: f(3), TotalTokens: 20})
	c.Add(Outcome{ReasonCodes: []string{"parse_failed"}, Gates: []GateOutcome{{"contract_ok", false}}, ParseMode: "failed", LatencyS: f(2)})
	c.Add(Outcome{ReasonCodes: []string{"missing_inputs"}, Verdict: "missing"})
	s := c.Report()
	want := map[string][3]int{"contract_ok": {3, 2, 1}, "verification_when_needed": {2, 2, 0}, "overconfidence_guard": {2, 1, 1}}
	for name, w := range want {
		r := s.GatePassRates.Rates[name]
		if r.Evaluated != w[0] || r.Passed != w[1] || r.Failed != w[2] {
			t.Errorf("%s: %+v, want evaluated/passed/failed %v", name, r, w)
		}
	}
	if r := s.GatePassRates.Rates["overconfidence_guard"].PassRate; r != 0.5 {
		t.Errorf("overconfidence pass rate %v", r)
	}
	if s.Summary.TotalInputs != 4 || s.Summary.Accepted != 1 || s.Summary.Rejected != 3 || s.Summary.AcceptanceRate != 0.25 {
		t.Errorf("summary %+v", s.Summary)
	}
	if s.LatencyS.P50 != 2 || s.LatencyS.Max != 3 || s.LatencyS.Count != 3 || s.Tokens.Total != 30 || *s.CostUSD != 0.5 {
		t.Errorf("latency %+v tokens %+v cost %v", s.LatencyS, s.Tokens, *s.CostUSD)
	}
	b, _ := json.Marshal(s.GatePassRates)
	if !strings.HasPrefix(string(b), `{"contract_ok":`) || strings.Index(string(b), "verification_when_needed") > strings.Index(string(b), "overconfidence_guard") {
		t.Errorf("gate order not kept: %s", b)
	}
}
