package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"go.yaml.in/yaml/v3"

	"github.com/pgrules/pgrules/internal/ordered"
)

// Reason codes of the parse and contract stage, and of gates that could
// not be evaluated.
const (
	ReasonOK           = "ok"
	ReasonNotEvaluated = "not_evaluated"
	ReasonGateError    = "gate_error"
)

// Reserved names the reason codes pgrules writes itself, with what each
// means: a gate may not give one. Stats, the health check and --resume
// read these codes as what they say (a record rejected teacher_error is
// asked again and counts as a failed call; one with gate_error makes the
// run unhealthy), so a gate's rejection under one of them would be
// miscounted. engine/judge's codes are checked to be here by its tests.
var Reserved = map[string]string{
	ReasonOK:           "a gate that passed",
	ReasonNotEvaluated: "a gate skipped because a gate it requires failed",
	ReasonGateError:    "a gate that failed to evaluate",
	"missing_inputs":   "a sample whose plan or draft is missing",
	"invalid_input":    "a sample whose input line is broken",
	"critique_reject":  "a draft its critique rejected",
	"teacher_error":    "a teacher call that failed",
	"no_cached_answer": "an --offline run without a cached answer",
}

// Decision is the verdict of the rules on one answer.
type Decision struct {
	OverallOK   bool
	ReasonCodes []string // failing reject-action gates, gate order, deduplicated
	Warnings    []string // failing warn-action gates
	Audits      []string // failing audit-action gates
	Contract    Contract
	// Response is the answer object as json.dumps writes it (", " and
	// ": ", ensure_ascii=False; internal/pyjson), with the teacher's key
	// order and number text; nil when no object could be parsed.
	Response json.RawMessage
	Gates    []GateResult
	// HitsKnown: the word-list hits are the ones Known gave, not found
	// again.
	HitsKnown bool
	// ByContract: no reject gate failed, and the answer is rejected
	// because the contract does not hold (see judge).
	ByContract bool
	// Variables are the evaluated variables, for explain.
	Variables []KV
	answer    *answer
	// hits are where the word-list hits are, per list (see Hits).
	hits  [][]hitRef
	lists []*WordList
}

// Release gives the parse's buffers back for the next answer's: d's
// Response and hits must not be read afterwards (tests overwrite them, so
// a use shows). A run releases a decision once its record is encoded;
// one never released is simply collected.
func (d *Decision) Release() {
	if d.answer != nil {
		d.answer.release()
	}
	d.answer, d.Response, d.hits = nil, nil, nil
}

// DetailError is the first details expression that failed at run time,
// with its position ("" when none did).
func (d *Decision) DetailError() string {
	for _, g := range d.Gates {
		if g.DetailError != "" {
			return g.DetailError
		}
	}
	return ""
}

// Hits are the word-list hits, list by list in the lists' order, each
// list's in document order. They are built on demand: a run that only
// needs to know whether a list hit never makes their strings.
func (d *Decision) Hits() []Hit {
	var out []Hit
	var n normCache
	for li, hs := range d.hits {
		for _, h := range hs {
			out = append(out, n.hit(d.answer, d.lists[li].Name, h))
		}
	}
	return out
}

// Leaves lists the answer's string values as [path, value], in document
// order (none when it did not parse).
func (d *Decision) Leaves() [][2]string {
	if d.answer == nil {
		return nil
	}
	d.answer.full()
	out := make([][2]string, len(d.answer.leaves))
	for i, l := range d.answer.leaves {
		out[i] = [2]string{pathOf(d.answer.nodes, l.node), l.value}
	}
	return out
}

// GateResult is one gate's verdict. Passed is nil when the gate was not
// evaluated because a gate it requires failed.
type GateResult struct {
	Name       string
	Action     string
	Passed     *bool
	ReasonCode string
	Details    Details
	// DetailError is the first details expression that failed at run
	// time, with its position: its value in Details reads "error: …".
	// The decision stands; the run says so (see Decision.DetailError).
	DetailError string
}

// KV is one named value.
type KV struct {
	Key   string
	Value any
}

// Details keep the order in which gates.yaml writes them.
type Details []KV

// MarshalJSON writes the details as an object in their written order.
func (d Details) MarshalJSON() ([]byte, error) {
	return ordered.Marshal(len(d), func(i int) (string, any) { return d[i].Key, d[i].Value })
}

// Get returns a detail by name.
func (d Details) Get(key string) (any, bool) {
	for _, kv := range d {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

type gateJSON struct {
	Passed     *bool   `json:"passed"`
	ReasonCode string  `json:"reason_code"`
	Details    Details `json:"details"`
}

// GatesJSON renders the gates as the records' `gates` object: gate order,
// {"passed", "reason_code", "details"} each, byte for byte what
// encoding/json writes for gateJSON. It appends directly: the reflective
// encoder, which also re-validated every MarshalJSON result, was 2.5 % of a
// re-gate's CPU. Anything but plain strings and integers still goes
// through encoding/json.
func (d *Decision) GatesJSON() json.RawMessage {
	b := make([]byte, 0, 128*len(d.Gates)+2)
	b = append(b, '{')
	for i, g := range d.Gates {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, g.Name)
		b = append(b, ':')
		b = appendGate(b, g)
	}
	return append(b, '}')
}

func appendGate(b []byte, g GateResult) []byte {
	start := len(b)
	b = append(b, `{"passed":`...)
	switch {
	case g.Passed == nil:
		b = append(b, "null"...)
	case *g.Passed:
		b = append(b, "true"...)
	default:
		b = append(b, "false"...)
	}
	b = append(b, `,"reason_code":`...)
	b = appendJSONString(b, g.ReasonCode)
	b = append(b, `,"details":{`...)
	for i, kv := range g.Details {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kv.Key)
		b = append(b, ':')
		switch v := kv.Value.(type) {
		case string:
			b = appendJSONString(b, v)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case uint64:
			b = strconv.AppendUint(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case nil:
			b = append(b, "null"...)
		default:
			j, err := json.Marshal(v)
			if err != nil {
				// The reflective encoder words the error the records carry.
				return append(b[:start], gateJSONReflect(g)...)
			}
			b = append(b, j...)
		}
	}
	return append(b, "}}"...)
}

// appendJSONString appends s quoted as encoding/json quotes it. Strings of
// printable ASCII without a character it escapes (quote, backslash, and
// <, >, & for HTML) are copied; any other goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// gateJSONReflect is one gate's value as encoding/json writes gateJSON.
func gateJSONReflect(g GateResult) []byte {
	det := g.Details
	if det == nil {
		det = Details{}
	}
	v, err := json.Marshal(gateJSON{Passed: g.Passed, ReasonCode: g.ReasonCode, Details: det})
	if err != nil {
		v, _ = json.Marshal(gateJSON{Passed: g.Passed, ReasonCode: ReasonGateError, Details: Details{{"error", err.Error()}}})
	}
	return v
}

// Evaluate judges one teacher answer. It never fails: a broken answer is a
// failing contract, a broken gate a gate_error.
func (r *Rules) Evaluate(s Sample, raw string, mode Mode) *Decision {
	return r.EvaluateKnown(s, raw, mode, Known{})
}

// EvaluateKnown is Evaluate for an answer the caller knows things about
// (see Known): the same text judged before under the same schemas or word
// lists. The answer is still parsed (the gates need it); what is known is
// not worked out again.
func (r *Rules) EvaluateKnown(s Sample, raw string, mode Mode, k Known) *Decision {
	d, act := r.prepare(s, raw, mode, k)
	r.judge(d, act)
	return d
}

// PayloadTypes names the payload types the schemas define.
func (r *Rules) PayloadTypes() []string { return r.schemas.payloadTypes() }

// HasPayloadType says whether a payload schema is named pt.
func (r *Rules) HasPayloadType(pt string) bool { return r.schemas.payloads[pt] != nil }

// SchemaDigest identifies the schemas by content and payload type name:
// a schema verdict remembered under another digest does not hold.
func (r *Rules) SchemaDigest() []byte { return r.schemas.digest }

// prepare parses and checks the answer and finds the word-list hits: the
// activation every gate and variable is evaluated in.
func (r *Rules) prepare(s Sample, raw string, mode Mode, k Known) (*Decision, *activation) {
	d := &Decision{}
	c := &d.Contract
	// An answer whose schema verdict is known needs only the fields the
	// expressions read. One whose verdict is not is checked as it is
	// read, against the schemas of the payload type the plan asked for,
	// and is built whole only if it may not meet them.
	var want map[string]bool
	streamed := r.schemas.streamed[s.PayloadType]
	switch {
	case k.SchemaOK:
		want, streamed = r.responseFields, nil
	case streamed != nil:
		want = r.responseFields
	}
	// With the hits known too, the strings need not be listed.
	lean := k.SchemaOK && k.Hits != nil && r.matcher != nil
	a, parseMode, strictOK, perr := parseAnswerChecked(raw, mode, want, lean, streamed)
	if perr == nil && streamed != nil && !a.schemaOK && want != nil {
		// The validator needs the whole tree, and its words.
		a.release()
		a, parseMode, strictOK, perr = parseAnswer(raw, mode, nil, lean)
	}
	c.ParseMode, c.StrictJSONOK = parseMode, strictOK
	var doc map[string]any
	if perr != nil {
		c.Errors = append(c.Errors, "parse: "+perr.Error())
	} else {
		d.Response = a.py
		d.answer = a
		doc = a.doc
		switch {
		case k.SchemaOK && doc != nil:
			c.EnvelopeOK, c.PayloadOK = true, true
			c.PayloadType, _ = doc["payload_type"].(string)
		case streamed != nil && a.schemaOK:
			c.EnvelopeOK, c.PayloadOK = true, true
			c.PayloadType = s.PayloadType
		default:
			r.schemas.check(doc, s.PayloadType, c)
		}
	}
	c.OverallOK = perr == nil && c.EnvelopeOK && c.PayloadOK
	if c.PayloadType == "" {
		c.PayloadType = s.PayloadType
	}

	act := &activation{r: r, a: a, f: &facts{sample: &s, contract: c, parsed: perr == nil, mode: mode, response: doc},
		hits: make([][]hitRef, len(r.lists)), vars: make([]ref.Val, len(r.variables)), done: make([]bool, len(r.variables)), stack: make([]bool, len(r.variables))}
	if act.f.response == nil {
		act.f.response = map[string]any{}
	}
	if a != nil && r.matcher != nil {
		d.HitsKnown = k.Hits != nil && r.knownHits(a, act, k.Hits)
		if !d.HitsKnown {
			r.findHits(a, act)
		}
	}
	d.hits, d.lists = act.hits, r.lists
	return d, act
}

// findHits scans the answer's strings for every word list.
func (r *Rules) findHits(a *answer, act *activation) {
	a.full()
	var buf matchBuf
	var scratch []byte
	for i, lf := range a.leaves {
		if !r.matcher.mayMatch(lf.value) {
			continue
		}
		var norm string
		norm, scratch = normalizeInto(scratch, lf.value)
		for li, sps := range r.matcher.listSpans(norm, &buf) {
			for _, sp := range sps {
				act.hits[li] = append(act.hits[li], hitRef{leaf: int32(i), start: int32(sp[0]), end: int32(sp[1])})
			}
		}
	}
}

// normCache keeps the normalised text of the last string value a hit was
// built from: a value's hits are built one after the other.
type normCache struct {
	leaf    int32
	norm    string
	scratch []byte
	ok      bool
}

// hit builds the hit h of list names in a's strings.
func (n *normCache) hit(a *answer, list string, h hitRef) Hit {
	a.full()
	if !n.ok || n.leaf != h.leaf {
		var norm string
		norm, n.scratch = normalizeInto(n.scratch, a.leaves[h.leaf].value)
		// A copy: norm may alias the scratch buffer, and hits keep it.
		n.leaf, n.norm, n.ok = h.leaf, strings.Clone(norm), true
	}
	// A span is cut to its string rather than trusted to fit (see
	// knownHits).
	end := min(int(h.end), len(n.norm))
	start := min(int(h.start), end)
	return Hit{List: list, Term: n.norm[start:end], Path: pathOf(a.nodes, a.leaves[h.leaf].node), Text: snippet(n.norm, start, end)}
}

// judge runs the gates in order and records the variables.
func (r *Rules) judge(d *Decision, act *activation) {
	passed := map[string]bool{}
	for _, g := range r.gates {
		res := r.evalGate(g, act, passed)
		d.Gates = append(d.Gates, res)
		if res.Passed == nil {
			continue
		}
		passed[g.Name] = *res.Passed
		if *res.Passed {
			continue
		}
		switch g.Action {
		case ActionWarn:
			d.Warnings = appendUnique(d.Warnings, res.ReasonCode)
		case ActionAudit:
			d.Audits = appendUnique(d.Audits, res.ReasonCode)
		default:
			d.ReasonCodes = appendUnique(d.ReasonCodes, res.ReasonCode)
		}
	}
	d.OverallOK = len(d.ReasonCodes) == 0
	if d.OverallOK && !d.Contract.OverallOK {
		// The contract is not the gates' to waive: an answer that breaks
		// it has no response the dataset's schemas take (none at all when
		// it did not parse). The shipped contract_ok gate says so first;
		// without it (deleted, or turned into a warn gate) an accepted
		// record held "response": null.
		d.ReasonCodes, d.OverallOK, d.ByContract = []string{d.Contract.Reason()}, false, true
	}
	for i, v := range r.variables {
		d.Variables = append(d.Variables, KV{v.Name, native(act.variable(i))})
	}
}

// ExprFile names an expression given on the command line in positions.
const ExprFile = "<expression>"

// Value is what EvalExpr computed.
type Value struct {
	// Value is the result as plain Go values (JSON-ready).
	Value any
	// Type is the expression's checked type; RuntimeType the value's.
	Type, RuntimeType string
}

// EvalExpr compiles expr in the gates' environment — the same variables,
// functions, schema field checks and cost limit — and evaluates it on one
// answer. A compile error is a *LoadError at <expression>:line:col; a
// runtime error is returned as it is.
func (r *Rules) EvalExpr(expr string, s Sample, raw string, mode Mode) (*Value, error) {
	el := &errList{}
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: expr, Line: 1, Column: 1}
	c := r.compile(ExprFile, n, nil, el)
	if err := el.err(); err != nil {
		return nil, err
	}
	// Variables are evaluated as the expression asks for them; the gates
	// are not needed.
	_, act := r.prepare(s, raw, mode, Known{})
	v, _, err := c.prg.Eval(act)
	if err != nil {
		return nil, err
	}
	return &Value{Value: native(v), Type: cel.FormatCELType(c.ast.OutputType()), RuntimeType: v.Type().TypeName()}, nil
}

func (r *Rules) evalGate(g *Gate, act interpreter.Activation, passed map[string]bool) GateResult {
	res := GateResult{Name: g.Name, Action: g.Action}
	for _, req := range g.Requires {
		if !passed[req] {
			res.ReasonCode = ReasonNotEvaluated
			res.Details = Details{{"requires", req}}
			return res
		}
	}
	failAt := func(pos Pos, err error) GateResult {
		f := false
		res.Passed, res.ReasonCode = &f, ReasonGateError
		res.Details = Details{{"error", fmt.Sprintf("%s: %v", pos, err)}}
		return res
	}
	fail := func(err error) GateResult { return failAt(g.Pos, err) }
	ok := true
	if g.when != nil {
		v, _, err := g.when.prg.Eval(act)
		if err != nil {
			return fail(err)
		}
		ok = v != types.True
		if v == types.True {
			out, _, err := g.expr.prg.Eval(act)
			if err != nil {
				return fail(err)
			}
			ok = out == types.True
		}
	} else {
		out, _, err := g.expr.prg.Eval(act)
		if err != nil {
			return fail(err)
		}
		ok = out == types.True
	}
	res.Passed = &ok
	res.ReasonCode = ReasonOK
	if !ok {
		res.ReasonCode = g.Reason
		if g.reasonExpr != nil {
			v, _, err := g.reasonExpr.prg.Eval(act)
			if err != nil {
				return fail(err)
			}
			code := fmt.Sprint(native(v))
			if !nameRE.MatchString(code) {
				// A reason is a code records are grouped and counted by,
				// as a literal reason must be: not text from the answer.
				return failAt(g.reasonExpr.pos, fmt.Errorf("reasonExpression gave %q, not a lower_snake_case reason code", clipReason(code)))
			}
			if what, ok := Reserved[code]; ok {
				return failAt(g.reasonExpr.pos, fmt.Errorf("reasonExpression gave %q, which pgrules writes for %s: give a code of the gate's own", code, what))
			}
			res.ReasonCode = code
		}
	}
	res.Details = evalDetails(g.details, act, &res.DetailError)
	if !ok {
		res.Details = append(res.Details, evalDetails(g.failDetails, act, &res.DetailError)...)
	}
	return res
}

// evalDetails evaluates the details; the first that fails is named in
// *failed (when empty).
func evalDetails(exprs []namedExpr, act interpreter.Activation, failed *string) Details {
	var out Details
	for _, e := range exprs {
		v, _, err := e.prg.Eval(act)
		if err != nil {
			out = append(out, KV{e.name, "error: " + err.Error()})
			if *failed == "" {
				*failed = fmt.Sprintf("%s: details %s: %v", e.pos, e.name, err)
			}
			continue
		}
		if v == types.NullValue {
			continue
		}
		out = append(out, KV{e.name, native(v)})
	}
	return out
}

// native turns a CEL value into plain JSON-able Go values; map keys are
// sorted so details are deterministic.
func native(v any) any {
	switch t := v.(type) {
	case nil:
		return nil
	case types.Bool:
		return bool(t)
	case types.Int:
		return int64(t)
	case types.Uint:
		return uint64(t)
	case types.Double:
		return float64(t)
	case types.String:
		return string(t)
	case types.Null:
		return nil
	case *types.Err:
		return "error: " + t.String()
	case traits.Lister:
		out := []any{}
		it := t.Iterator()
		for it.HasNext() == types.True {
			out = append(out, native(it.Next()))
		}
		return out
	case traits.Mapper:
		keys := []string{}
		it := t.Iterator()
		vals := map[string]any{}
		for it.HasNext() == types.True {
			k := it.Next()
			ks := fmt.Sprint(native(k))
			keys = append(keys, ks)
			vals[ks] = native(t.Get(k))
		}
		sort.Strings(keys)
		out := make(orderedMap, 0, len(keys))
		for _, k := range keys {
			out = append(out, KV{k, vals[k]})
		}
		return out
	case ref.Val:
		return t.Value()
	}
	return v
}

type orderedMap []KV

func (m orderedMap) MarshalJSON() ([]byte, error) { return Details(m).MarshalJSON() }

func appendUnique(xs []string, x string) []string {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GateNames lists the gates in file order.
func (r *Rules) GateNames() []string {
	out := make([]string, len(r.gates))
	for i, g := range r.gates {
		out[i] = g.Name
	}
	return out
}

// GateAction returns a gate's action (reject, warn, audit).
func (r *Rules) GateAction(name string) string {
	for _, g := range r.gates {
		if g.Name == name {
			return g.Action
		}
	}
	return ""
}

// Gates returns the compiled gates.
func (r *Rules) Gates() []*Gate { return r.gates }

// Lists returns the word lists.
func (r *Rules) Lists() []*WordList { return r.lists }

// VariableNames are the names of gates.yaml's variables, in order.
func (r *Rules) VariableNames() []string {
	out := make([]string, len(r.variables))
	for i, v := range r.variables {
		out[i] = v.Name
	}
	return out
}

// Files lists every file the rules were built from, with sha256s.
func (r *Rules) Files() []File { return r.files }

// Path is the gates file.
func (r *Rules) Path() string { return r.path }

// SchemaVersions names the envelope and payload schema versions in use.
func (r *Rules) SchemaVersions() map[string]string { return r.schemas.versions }

// EnvelopeFields are the top-level fields the envelope schema defines.
func (r *Rules) EnvelopeFields() []string {
	var out []string
	for k := range r.schemas.envelopeFields {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// clipReason cuts a would-be reason code for an error message.
func clipReason(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}
