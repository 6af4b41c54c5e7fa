package rules

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// gatesJSONReflect is GatesJSON as encoding/json writes it, gate by gate:
// the oracle the appending encoder must match byte for byte.
func gatesJSONReflect(d *Decision) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, g := range d.Gates {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(g.Name)
		b.Write(k)
		b.WriteByte(':')
		b.Write(gateJSONReflect(g))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// The appending encoder writes what encoding/json writes, for names,
// reason codes and details of every kind a gate yields: plain and escaped
// strings (quotes, HTML characters, control characters, U+2028, invalid
// UTF-8), integers of every width, floats, lists, maps, nulls, and values
// encoding/json refuses (the gate then carries the reflective error).
func TestGatesJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "plain_gate", "time_sensitive", `quo"te`, `back\slash`, "<b>&", "a<b", "a>b", "a&b", "tab\tnl\n", "\x01ctl", "é ü 日本", "\u2028sep", "bad\xffutf8", "del\x7f", "x y z 0-9"}
	values := []any{nil, true, false, int64(-7), int64(math.MaxInt64), int(3), uint64(math.MaxUint64), 0.5, 1e21, 3.0, math.NaN(), math.Inf(1),
		[]any{"a", int64(1)}, map[string]any{"b": 1, "a": "<"}, []string{"x"}, "str", `esc"aped`}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	for n := 0; n < 5000; n++ {
		d := &Decision{}
		for range r.IntN(5) {
			g := GateResult{Name: pick(strs), ReasonCode: pick(strs)}
			switch r.IntN(3) {
			case 0:
			case 1:
				p := true
				g.Passed = &p
			case 2:
				p := false
				g.Passed = &p
			}
			if r.IntN(4) > 0 {
				g.Details = Details{}
				for range r.IntN(4) {
					g.Details = append(g.Details, KV{Key: pick(strs), Value: values[r.IntN(len(values))]})
				}
			}
			d.Gates = append(d.Gates, g)
		}
		got, want := d.GatesJSON(), gatesJSONReflect(d)
		if !bytes.Equal(got, want) {
			t.Fatalf("gates %+v:\n got %s\nwant %s", d.Gates, got, want)
		}
	}
}

func BenchmarkGatesJSON(b *testing.B) {
	pass, fail := true, false
	d := &Decision{Gates: []GateResult{
		{Name: "contract", Passed: &pass, Details: Details{{"parse_mode", "strict"}}},
		{Name: "time_sensitive_needs_verification", Passed: &fail, ReasonCode: "missing_verification_requirements", Details: Details{{"hits", int64(3)}, {"verification_steps", int64(0)}}},
		{Name: "overconfidence", Passed: &pass, Details: Details{{"hits", int64(0)}}},
		{Name: "critique_verdict", Passed: &pass, Details: Details{{"verdict", "revise"}}},
	}}
	b.Run("append", func(b *testing.B) {
		for range b.N {
			d.GatesJSON()
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			gatesJSONReflect(d)
		}
	})
}
