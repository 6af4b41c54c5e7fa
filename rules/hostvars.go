package rules

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Sample is what the rules know of the sample being judged: the prompt
// plan's fields under the plan's own names, so the engine decodes it from
// the plan, explain from a record and test-rules from a case's `sample:`.
type Sample struct {
	ID          string   `json:"id" yaml:"id"`
	Category    string   `json:"category" yaml:"category"`
	Difficulty  string   `json:"difficulty" yaml:"difficulty"`
	PayloadType string   `json:"payload_type" yaml:"payload_type"`
	RegionTags  []string `json:"region_tags" yaml:"region_tags"`
}

// facts is everything a gate may look at for one answer.
type facts struct {
	sample   *Sample
	contract *Contract
	parsed   bool
	mode     Mode
	response map[string]any
}

// hostVar is one CEL variable pgrules provides: its name, its type, and
// how its value is obtained. This table is the only place a variable is
// declared and bound: the CEL environment, every evaluation (run,
// test-rules, explain) and the documentation are built from it. Adding a
// variable is one entry. (hits.<list> and variables.<name> are families
// named by gates.yaml itself.)
type hostVar struct {
	name string
	typ  *cel.Type
	get  func(f *facts) any
	doc  string
}

var hostVars = []hostVar{
	{"response", cel.MapType(cel.StringType, cel.DynType), func(f *facts) any { return f.response }, "the parsed answer ({} when it did not parse)"},
	{"mode", cel.StringType, func(f *facts) any { return string(f.mode) }, `"strict" or "lenient"`},
	{"contract.overall_ok", cel.BoolType, func(f *facts) any { return f.contract.OverallOK }, "parsed, envelope and payload valid"},
	{"contract.parsed", cel.BoolType, func(f *facts) any { return f.parsed }, "an answer object was found"},
	{"contract.parse_mode", cel.StringType, func(f *facts) any { return f.contract.ParseMode }, `"strict", "lenient" or ""`},
	{"contract.payload_type", cel.StringType, func(f *facts) any { return f.contract.PayloadType }, "the answer's payload_type (else the plan's)"},
	{"contract.strict_json_ok", cel.BoolType, func(f *facts) any { return f.contract.StrictJSONOK }, "the answer is exactly one JSON object"},
	{"contract.envelope_ok", cel.BoolType, func(f *facts) any { return f.contract.EnvelopeOK }, "the envelope schema holds"},
	{"contract.payload_ok", cel.BoolType, func(f *facts) any { return f.contract.PayloadOK }, "the payload schema holds"},
	{"contract.errors", cel.ListType(cel.StringType), func(f *facts) any { return nonNilStrings(f.contract.Errors) }, "parse and schema errors"},
	{"sample.id", cel.StringType, func(f *facts) any { return f.sample.ID }, "the sample id"},
	{"sample.category", cel.StringType, func(f *facts) any { return f.sample.Category }, "the plan's category"},
	{"sample.difficulty", cel.StringType, func(f *facts) any { return f.sample.Difficulty }, "the plan's difficulty"},
	{"sample.payload_type", cel.StringType, func(f *facts) any { return f.sample.PayloadType }, "the payload type the plan asked for"},
	{"sample.region_tags", cel.ListType(cel.StringType), func(f *facts) any { return nonNilStrings(f.sample.RegionTags) }, "the plan's region tags"},
}

var hostVarIndex = func() map[string]int {
	m := make(map[string]int, len(hostVars))
	for i, v := range hostVars {
		m[v.name] = i
	}
	return m
}()

// HostVariables lists the names and descriptions of the variables every
// gate can use, for documentation and `explain`.
func HostVariables() [][2]string {
	out := make([][2]string, len(hostVars))
	for i, v := range hostVars {
		out[i] = [2]string{v.name, v.doc}
	}
	return out
}

func hostVarDecls() []cel.EnvOption {
	out := make([]cel.EnvOption, len(hostVars))
	for i, v := range hostVars {
		out[i] = cel.Variable(v.name, v.typ)
	}
	return out
}

// activation resolves names for one evaluation on demand: a variable no
// evaluated expression uses is never computed, and nothing is copied into
// a map first. Variables of gates.yaml are memoised once computed.
type activation struct {
	r     *Rules
	f     *facts
	a     *answer    // nil: it did not parse
	hits  [][]hitRef // per list, in r.lists order
	norms normCache
	vars  []ref.Val
	done  []bool
	stack []bool // variables being computed, to report a cycle instead of recursing
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	if i, ok := hostVarIndex[name]; ok {
		return hostVars[i].get(a.f), true
	}
	if i, ok := a.r.listIndex[name]; ok {
		return types.NewDynamicList(hitAdapter{a, i}, a.hits[i]), true
	}
	if i, ok := a.r.varIndex[name]; ok {
		return a.variable(i), true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) variable(i int) ref.Val {
	if a.done[i] {
		return a.vars[i]
	}
	if a.stack[i] {
		return types.NewErr("variable %s refers to itself", a.r.variables[i].Name)
	}
	a.stack[i] = true
	out, _, err := a.r.variables[i].prg.Eval(a)
	a.stack[i] = false
	if err != nil {
		out = types.NewErr("variable %s: %v", a.r.variables[i].Name, err)
	}
	a.vars[i], a.done[i] = out, true
	return out
}

// hitAdapter turns a list's hits into what CEL sees, {term, path, text}
// maps, as an expression reaches each one: size(hits.x) builds none.
type hitAdapter struct {
	act  *activation
	list int
}

func (h hitAdapter) NativeToValue(v any) ref.Val {
	if ref, ok := v.(hitRef); ok {
		hit := h.act.norms.hit(h.act.a, h.act.r.lists[h.list].Name, ref)
		v = map[string]string{"term": hit.Term, "path": hit.Path, "text": hit.Text}
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}
