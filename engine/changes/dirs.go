package changes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/pgrules/pgrules/engine/output"
)

// Report compares the committed outputs of two out dirs: what moved, how
// each gate's pass rate changed, the rejection reasons side by side, and
// which inputs, rules, template or plugin differ.
type Report struct {
	A, B    string     `json:"-"`
	Changes Changes    `json:"changes"`
	Gates   []GateRate `json:"gate_pass_rates"`
	Reasons []Count    `json:"rejection_reasons"`
	// Different: decisions or provenance differ.
	Different bool `json:"different"`
}

// GateRate is one gate's pass rate in both, and the change.
type GateRate struct {
	Gate  string  `json:"gate"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
	Delta float64 `json:"delta"`
}

// Count is one reason's count in both.
type Count struct {
	Reason string `json:"reason"`
	A      int    `json:"a"`
	B      int    `json:"b"`
}

// CompareDirs reads the committed outputs of a and b (finishing a commit a
// killed run left half done) and compares them.
func CompareDirs(a, b string) (*Report, error) {
	pa, err := output.ReadPrior(a, nil)
	if err != nil {
		return nil, err
	}
	defer pa.Close()
	pb, err := output.ReadPrior(b, nil)
	if err != nil {
		return nil, err
	}
	defer pb.Close()
	for dir, p := range map[string]*output.Prior{a: pa, b: pb} {
		if p.Manifest == nil && len(p.Records) == 0 {
			return nil, fmt.Errorf("%s holds no pgrules outputs", dir)
		}
	}
	r := &Report{A: a, B: b}
	tr := NewTracker(PreviousOf(pa))
	for i, rec := range pb.Records {
		tr.Observe(pb.ID(i), Record{Accepted: rec.Accepted, Reasons: pb.Head(i).ReasonCodes})
	}
	r.Changes = tr.Finish()
	r.Changes.HadPrevious = true
	r.Changes.FilesChanged = CompareFiles(pa.Manifest, pb.Manifest)

	sa, err := readStats(pa)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	sb, err := readStats(pb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	seen := map[string]bool{}
	for _, s := range []statsDoc{sa, sb} {
		for _, g := range s.order {
			if !seen[g] {
				seen[g] = true
				ga, gb := sa.gates[g], sb.gates[g]
				r.Gates = append(r.Gates, GateRate{Gate: g, A: ga, B: gb, Delta: round4(gb - ga)})
			}
		}
	}
	reasons := map[string]*Count{}
	for k, n := range sa.Reasons {
		reasons[k] = &Count{Reason: k, A: n}
	}
	for k, n := range sb.Reasons {
		if reasons[k] == nil {
			reasons[k] = &Count{Reason: k}
		}
		reasons[k].B = n
	}
	for _, c := range reasons {
		r.Reasons = append(r.Reasons, *c)
	}
	sort.Slice(r.Reasons, func(i, j int) bool {
		x, y := r.Reasons[i], r.Reasons[j]
		if x.A+x.B != y.A+y.B {
			return x.A+x.B > y.A+y.B
		}
		return x.Reason < y.Reason
	})
	// Another pgrules version alone is not a difference: it is named in
	// case ids moved because of it.
	r.Different = !r.Changes.Identical() || slices.ContainsFunc(r.Changes.FilesChanged, func(f FileChange) bool { return f.Kind != "pgrules" })
	return r, nil
}

// PreviousOf is the committed records of an out dir as the first set of a
// comparison.
func PreviousOf(p *output.Prior) Previous {
	return Previous{
		N: len(p.Records),
		Lookup: func(id string) (Record, int, bool) {
			i, ok := p.Index(id)
			if !ok {
				return Record{}, 0, false
			}
			return Record{Accepted: p.Records[i].Accepted, Reasons: p.Head(i).ReasonCodes}, i, true
		},
		ID: p.ID,
	}
}

type statsDoc struct {
	Reasons map[string]int `json:"rejection_reasons"`
	gates   map[string]float64
	order   []string
}

func readStats(p *output.Prior) (statsDoc, error) {
	var s statsDoc
	data := p.Stats
	if data == nil {
		return s, nil
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", output.StatsFile, err)
	}
	// gate_pass_rates keeps gates.yaml order: read it as it is written.
	var raw struct {
		Gates json.RawMessage `json:"gate_pass_rates"`
	}
	_ = json.Unmarshal(data, &raw)
	s.gates = map[string]float64{}
	dec := json.NewDecoder(bytesReader(raw.Gates))
	if t, err := dec.Token(); err == nil && t == json.Delim('{') {
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				break
			}
			var g struct {
				PassRate float64 `json:"pass_rate"`
			}
			if dec.Decode(&g) != nil {
				break
			}
			name, _ := t.(string)
			s.order = append(s.order, name)
			s.gates[name] = g.PassRate
		}
	}
	return s, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func round4(x float64) float64 {
	return float64(int64(x*10000+copysign(0.5, x))) / 10000
}

func copysign(a, b float64) float64 {
	if b < 0 {
		return -a
	}
	return a
}
