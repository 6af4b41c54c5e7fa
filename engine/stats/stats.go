// Package stats aggregates the outcome of every sample of the output files
// into dataset_v1_stats.json.
//
// Stats are computed from what lands in the files, resumed records
// included, so they always describe the whole files and never only the
// last run.
package stats

import (
	"encoding/json"
	"math"
	"slices"
	"sort"

	"github.com/pgrules/pgrules/internal/ordered"
)

// GateOutcome is one evaluated gate of one sample.
type GateOutcome struct {
	Name   string
	Passed bool
}

// Outcome is everything stats need to know about one sample.
type Outcome struct {
	Accepted    bool
	ReasonCodes []string
	Warnings    []string
	Audits      []string
	Gates       []GateOutcome
	// ParseMode is strict, lenient, failed, or "" when no answer was parsed
	// because none was asked for.
	ParseMode   string
	Verdict     string
	Category    string
	PayloadType string
	Difficulty  string
	// Model is the model that answered; empty when no teacher call was made.
	Model            string
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	CostUSD          *float64
	LatencyS         *float64
	Resumed          bool
	// SecretsRedacted counts API keys removed from the answer.
	SecretsRedacted int
	// Fallbacks are the codes of the models that failed before one
	// answered.
	Fallbacks []string
}

// Collector accumulates outcomes. It is not safe for concurrent use: the
// engine's single writer goroutine owns it.
type Collector struct {
	gateOrder   []string
	gateActions map[string]string
	gates       map[string]*GateRate

	total, accepted, rejected, resumed int
	reasons, warnings, audits          map[string]int
	verdicts, categories, payloadTypes map[string]int
	difficulties, models, parseModes   map[string]int
	tokens                             Tokens
	cost                               float64
	costReported                       int
	latencies                          []float64
	secretsRedacted                    int
	reasonsBy                          map[string]map[string]map[string]int
	fallbacks                          map[string]int
}

// New starts a collector for the gates in their gates.yaml order.
func New(gateOrder []string, gateActions map[string]string) *Collector {
	c := &Collector{
		gateOrder: gateOrder, gateActions: gateActions, gates: map[string]*GateRate{},
		reasons: map[string]int{}, warnings: map[string]int{}, audits: map[string]int{},
		verdicts: map[string]int{}, categories: map[string]int{}, payloadTypes: map[string]int{},
		difficulties: map[string]int{}, models: map[string]int{}, parseModes: map[string]int{},
		reasonsBy: map[string]map[string]map[string]int{"payload_type": {}, "category": {}, "difficulty": {}},
		fallbacks: map[string]int{},
	}
	for _, g := range gateOrder {
		c.gates[g] = &GateRate{Action: gateActions[g]}
	}
	return c
}

// Reserve makes room for the latencies of about n samples at once: a
// million appended one at a time held up to twice their 8 MB while the
// slice grew.
func (c *Collector) Reserve(n int) {
	if n > cap(c.latencies) {
		c.latencies = slices.Grow(c.latencies, n-len(c.latencies))
	}
}

// Add counts one sample.
func (c *Collector) Add(o Outcome) {
	c.total++
	if o.Accepted {
		c.accepted++
	} else {
		c.rejected++
	}
	if o.Resumed {
		c.resumed++
	}
	for _, r := range o.ReasonCodes {
		c.reasons[r]++
		for dim, v := range map[string]string{"payload_type": o.PayloadType, "category": o.Category, "difficulty": o.Difficulty} {
			if v == "" {
				v = "(unknown)"
			}
			m := c.reasonsBy[dim][v]
			if m == nil {
				m = map[string]int{}
				c.reasonsBy[dim][v] = m
			}
			m[r]++
		}
	}
	for _, f := range o.Fallbacks {
		c.fallbacks[f]++
	}
	for _, r := range o.Warnings {
		c.warnings[r]++
	}
	for _, r := range o.Audits {
		c.audits[r]++
	}
	// Pass rates are counted per gate name. The original counted failures
	// under reason codes and looked them up by gate name, so every gate
	// showed 100 %.
	for _, g := range o.Gates {
		r := c.gates[g.Name]
		if r == nil {
			r = &GateRate{Action: c.gateActions[g.Name]}
			c.gates[g.Name] = r
			c.gateOrder = append(c.gateOrder, g.Name)
		}
		r.Evaluated++
		if g.Passed {
			r.Passed++
		} else {
			r.Failed++
		}
	}
	inc(c.verdicts, o.Verdict)
	inc(c.categories, o.Category)
	inc(c.payloadTypes, o.PayloadType)
	inc(c.difficulties, o.Difficulty)
	inc(c.parseModes, o.ParseMode)
	if o.Model != "" {
		c.models[o.Model]++
	}
	c.tokens.Prompt += o.PromptTokens
	c.tokens.Completion += o.CompletionTokens
	c.tokens.Total += o.TotalTokens
	if o.CostUSD != nil {
		c.cost += *o.CostUSD
		c.costReported++
	}
	if o.LatencyS != nil {
		c.latencies = append(c.latencies, *o.LatencyS)
	}
	c.secretsRedacted += o.SecretsRedacted
}

func inc(m map[string]int, k string) {
	if k != "" {
		m[k]++
	}
}

// GateRate is one gate's line in gate_pass_rates.
type GateRate struct {
	Action    string  `json:"action,omitempty"`
	Evaluated int     `json:"evaluated"`
	Passed    int     `json:"passed"`
	Failed    int     `json:"failed"`
	PassRate  float64 `json:"pass_rate"`
}

// Tokens sums token usage.
type Tokens struct {
	Prompt     int64 `json:"prompt_tokens"`
	Completion int64 `json:"completion_tokens"`
	Total      int64 `json:"total_tokens"`
}

// Latency summarises teacher latencies in seconds.
type Latency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	// Histogram counts latencies up to each bound (the last bucket has
	// none: the rest).
	Histogram []Bucket `json:"histogram,omitempty"`
}

// Bucket is one histogram bar: latencies ≤ LE (seconds), above the
// previous bucket's bound; LE is null for the last.
type Bucket struct {
	LE    *float64 `json:"le"`
	Count int      `json:"count"`
}

var latencyBounds = []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120}

// Summary is the top of the stats file. Accepted + Rejected = TotalInputs;
// Resumed of them were kept from a previous run's files.
type Summary struct {
	TotalInputs    int     `json:"total_inputs"`
	Accepted       int     `json:"accepted"`
	Rejected       int     `json:"rejected"`
	AcceptanceRate float64 `json:"acceptance_rate"`
	Processed      int     `json:"processed_this_run"`
	Resumed        int     `json:"resumed"`
}

// Cache is what the response cache did in this run.
type Cache struct {
	Enabled      bool    `json:"enabled"`
	Hits         int     `json:"hits"`
	Misses       int     `json:"misses"`
	TokensSaved  int64   `json:"tokens_saved"`
	CostSavedUSD float64 `json:"cost_saved_usd"`
	// NotStored counts the answers the teacher gave this run that the
	// cache could not store (a full disk): a rerun pays for them again.
	NotStored int `json:"not_stored,omitempty"`
}

// Duplicates are the accepted records whose response repeats an earlier
// accepted record's, byte for byte as written.
type Duplicates struct {
	// Records counts the repeats (an original is not counted).
	Records int `json:"records"`
	// First names the first repeats in input order (at most 10).
	First []Duplicate `json:"first"`
}

// Duplicate is one repeat: ID's response is SameAs's.
type Duplicate struct {
	ID     string `json:"id"`
	SameAs string `json:"same_as"`
}

// Skipped counts what did not go through the teacher and gates.
type Skipped struct {
	Resume        int `json:"resume"`
	InputProblems int `json:"input_problems"`
	Limit         int `json:"limit,omitempty"`
}

// Stats is dataset_v1_stats.json.
type Stats struct {
	Summary          Summary        `json:"summary"`
	GatePassRates    OrderedRates   `json:"gate_pass_rates"`
	RejectionReasons map[string]int `json:"rejection_reasons"`
	WarningReasons   map[string]int `json:"warning_reasons"`
	AuditReasons     map[string]int `json:"audit_reasons"`
	Verdicts         map[string]int `json:"verdicts"`
	Categories       map[string]int `json:"categories"`
	PayloadTypes     map[string]int `json:"payload_types"`
	Difficulties     map[string]int `json:"difficulties"`
	TeacherModels    map[string]int `json:"teacher_models"`
	// RejectionReasonsBy splits rejection reasons by payload type,
	// category and difficulty of the sample.
	RejectionReasonsBy map[string]map[string]map[string]int `json:"rejection_reasons_by"`
	// Fallbacks counts the failures of models that fell back to the next
	// (by error code), over the answers that came in.
	Fallbacks  map[string]int  `json:"teacher_fallbacks"`
	ParseModes map[string]int  `json:"parse_modes"`
	Skipped    Skipped         `json:"skipped"`
	Tokens     Tokens          `json:"tokens"`
	CostUSD    *float64        `json:"cost_usd"`
	LatencyS   Latency         `json:"latency_s"`
	Cache      Cache           `json:"cache"`
	Teacher    json.RawMessage `json:"teacher_calls,omitempty"`
	// SecretsRedacted counts API keys the provider removed from answers (a
	// server that echoes the key back); 0 is omitted.
	SecretsRedacted int   `json:"secrets_redacted,omitempty"`
	InputProblems   []any `json:"input_problems,omitempty"`
	// DuplicateResponses: accepted records that repeat an earlier one's
	// response (nil: none).
	DuplicateResponses *Duplicates `json:"duplicate_responses,omitempty"`
}

// OrderedRates keeps gate_pass_rates in gates.yaml order.
type OrderedRates struct {
	Names []string
	Rates map[string]*GateRate
}

// MarshalJSON writes the gates in order.
func (o OrderedRates) MarshalJSON() ([]byte, error) {
	return ordered.Marshal(len(o.Names), func(i int) (string, any) { return o.Names[i], o.Rates[o.Names[i]] })
}

// Report builds the stats document.
func (c *Collector) Report() Stats {
	s := Stats{
		Summary: Summary{
			TotalInputs: c.total, Accepted: c.accepted, Rejected: c.rejected,
			AcceptanceRate: ratio(c.accepted, c.total), Processed: c.total - c.resumed, Resumed: c.resumed,
		},
		GatePassRates:    OrderedRates{Names: c.gateOrder, Rates: c.gates},
		RejectionReasons: c.reasons, WarningReasons: c.warnings, AuditReasons: c.audits,
		Verdicts: c.verdicts, Categories: c.categories, PayloadTypes: c.payloadTypes,
		Difficulties: c.difficulties, TeacherModels: c.models, ParseModes: c.parseModes,
		RejectionReasonsBy: c.reasonsBy, Fallbacks: c.fallbacks,
		Skipped:         Skipped{Resume: c.resumed},
		Tokens:          c.tokens,
		LatencyS:        latency(c.latencies),
		SecretsRedacted: c.secretsRedacted,
	}
	for _, r := range c.gates {
		r.PassRate = ratio(r.Passed, r.Evaluated)
	}
	if c.costReported > 0 {
		cost := round(c.cost, 8)
		s.CostUSD = &cost
	}
	return s
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return round(float64(a)/float64(b), 4)
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

func latency(xs []float64) Latency {
	if len(xs) == 0 {
		return Latency{}
	}
	// Sorted in place: the order the latencies came in means nothing, and
	// a copy would be another 8 MB at a million samples.
	s := xs
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	// Nearest-rank percentiles: a value that was actually observed.
	pct := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		if i < 0 {
			i = 0
		}
		return round(s[i], 3)
	}
	l := Latency{Count: len(s), Mean: round(sum/float64(len(s)), 3), P50: pct(50), P90: pct(90), P99: pct(99), Max: round(s[len(s)-1], 3)}
	i := 0
	for _, b := range latencyBounds {
		n := 0
		for i < len(s) && s[i] <= b {
			i++
			n++
		}
		l.Histogram = append(l.Histogram, Bucket{LE: &b, Count: n})
	}
	l.Histogram = append(l.Histogram, Bucket{Count: len(s) - i})
	return l
}
