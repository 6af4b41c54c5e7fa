package judge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// orderedGatesByDecoder is what orderedGates did with encoding/json: the
// reference it is fuzzed against.
func orderedGatesByDecoder(raw json.RawMessage) []gateSummary {
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

func show(gs []gateSummary) string {
	var b bytes.Buffer
	for _, g := range gs {
		p := "nil"
		if g.passed != nil {
			p = fmt.Sprint(*g.passed)
		}
		fmt.Fprintf(&b, "%q:%s:%q:%q ", g.name, p, g.reason, g.parseMode)
	}
	return b.String()
}

// On the gates objects pgrules writes — members that are objects with a
// boolean-or-null passed, a string reason_code and an object of details —
// the walk reads what the decoder read, in the same order.
func FuzzOrderedGatesAgreesWithTheDecoder(f *testing.F) {
	f.Add([]byte(`{"contract": {"passed": true, "reason_code": "schema_invalid", "details": {"parse_mode": "strict", "errors": []}}, "overconfidence_guard": {"passed": false, "reason_code": "overconfident_time_sensitive", "details": {"hits": [{"term": "visa"}]}}, "skipped": {"passed": null, "reason_code": "x", "details": {}}}`))
	f.Add([]byte(`{"g\u00e9": {"passed": false, "reason_code": "r\"q", "details": {"parse_mode": "lenient"}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var shape map[string]struct {
			Passed  *bool           `json:"passed"`
			Reason  *string         `json:"reason_code"`
			Details *map[string]any `json:"details"`
		}
		if json.Unmarshal(raw, &shape) != nil || shape == nil {
			return
		}
		var strict map[string]map[string]json.RawMessage
		if json.Unmarshal(raw, &strict) != nil {
			return
		}
		for _, g := range strict {
			if d, ok := g["details"]; ok {
				var m map[string]json.RawMessage
				if json.Unmarshal(d, &m) != nil {
					return
				}
				if pm, ok := m["parse_mode"]; ok {
					var s string
					if json.Unmarshal(pm, &s) != nil {
						return
					}
				}
			}
		}
		if got, want := show(orderedGates(raw)), show(orderedGatesByDecoder(raw)); got != want {
			t.Fatalf("orderedGates(%s):\n got %s\nwant %s", raw, got, want)
		}
	})
}
