package rules

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// streamVerdicts compares the check made while parsing with the
// validator: it may say it cannot tell (false) where the validator finds
// a value valid, never valid where the validator does not.
type streamVerdicts struct {
	valid, told, invalid int
}

func (sv *streamVerdicts) compare(t *testing.T, what string, sch *jsonschema.Schema, f *fastSchema, text string) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := sch.Validate(inst) == nil
	ok, err := streamCheck([]byte(text), f)
	if err != nil {
		return // one the parser refuses
	}
	if ok && !want {
		t.Fatalf("%s\ninstance %s: the streamed check says valid, the validator does not", what, text)
	}
	if !want {
		sv.invalid++
		return
	}
	sv.valid++
	if ok {
		sv.told++
	}
}

// streamCheck reads any JSON value as parseFastChecked reads an object,
// checking it against f.
func streamCheck(data []byte, f *fastSchema) (bool, error) {
	p := &fastParser{data: data, want: map[string]bool{}, valid: true}
	p.keys = p.keyBuf[:0]
	if _, err := p.value(-1, false, f); err != nil {
		return false, err
	}
	if p.skipSpace(); p.i != len(data) {
		return false, errFast{}
	}
	return p.valid, nil
}

// TestStreamedSchemaAgreesWithTheValidator checks values against random
// schemas as the parser reads them: never valid where the validator says
// invalid, and it tells most valid ones (it gives up on allOf, and on
// $ref or anyOf beside other keywords).
func TestStreamedSchemaAgreesWithTheValidator(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var sv streamVerdicts
	for range 3000 {
		doc := randomSchema(rng)
		sch := compileSchemaDoc(t, doc)
		f, ok := compileFast(sch)
		if !ok {
			continue
		}
		for range 30 {
			sv.compare(t, "schema "+doc, sch, f, randomValue(rng, 3))
		}
	}
	t.Logf("%+v", sv)
	if sv.valid < 1000 || sv.invalid < 1000 || sv.told < sv.valid/2 {
		t.Fatalf("the random cases are lopsided, or the streamed check tells too few: %+v", sv)
	}
}

// Where what a $ref, anyOf or allOf applies is not all a value must
// meet, or anyOf branches are not told apart by the value's first byte,
// the streamed check cannot follow one schema and says it cannot tell
// (most values here fail what it would have skipped). Where one schema
// is all (a $ref alone, anyOf branches of distinct types), it tells the
// valid value.
func TestStreamedSchemaGivesUpWhereOneSchemaIsNotEnough(t *testing.T) {
	const defs = `"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {"s": {"type": "string"}}, `
	for _, c := range []struct {
		schema, value string
		told          bool
	}{
		{`{` + defs + `"$ref": "#/$defs/s", "minLength": 3}`, `"ab"`, false},
		{`{` + defs + `"$ref": "#/$defs/s", "enum": ["x"]}`, `"ab"`, false},
		{`{` + defs + `"anyOf": [{"type": "string"}, {"type": "object"}], "maxLength": 1}`, `"ab"`, false},
		{`{` + defs + `"anyOf": [{"type": "string"}, {"type": "string", "maxLength": 1}]}`, `"ab"`, false},
		{`{` + defs + `"allOf": [{"type": "string"}, {"maxLength": 1}]}`, `"ab"`, false},
		{`{` + defs + `"allOf": [{"maxLength": 1}], "anyOf": [{"type": "string"}, {"type": "object"}]}`, `"ab"`, false},
		{`{` + defs + `"allOf": [{"maxLength": 1}], "$ref": "#/$defs/s"}`, `"ab"`, false},
		{`{` + defs + `"$ref": "#/$defs/s"}`, `"ab"`, true},
		{`{` + defs + `"anyOf": [{"$ref": "#/$defs/s"}, {"type": "object"}]}`, `"ab"`, false},
		{`{` + defs + `"anyOf": [{"type": "string", "minLength": 1}, {"type": "object"}]}`, `"ab"`, true},
	} {
		sch := compileSchemaDoc(t, c.schema)
		f, ok := compileFast(sch)
		if !ok {
			t.Fatalf("%s gets no fastSchema", c.schema)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(c.value))
		if err != nil {
			t.Fatal(err)
		}
		valid := sch.Validate(inst) == nil
		got, err := streamCheck([]byte(c.value), f)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.told || got && !valid {
			t.Errorf("%s, %s: streamed valid=%v (validator %v), want %v", c.schema, c.value, got, valid, c.told)
		}
	}
}

// eachReferenceChange calls fn with each reference answer, and then with
// every one-step change of it (see eachChange; only every nth change when
// every is n > 1), as JSON, with the answer's own payload type and the
// next of types after it: one other type is enough to find a check that
// ignores which type a sample asked for.
func eachReferenceChange(t *testing.T, types []string, every int, fn func(doc map[string]any, text []byte, own, other string, first bool)) {
	t.Helper()
	types = slices.Sorted(slices.Values(types))
	_, texts := referenceAnswers(t)
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		doc := a.doc
		own, _ := doc["payload_type"].(string)
		other := types[(slices.Index(types, own)+1)%len(types)]
		change := 0
		eachChange(doc, func() {
			change++
			if every > 1 && change%every != 1 {
				return
			}
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			fn(doc, b, own, other, change == 1)
		})
	}
}

// The shipped schemas: each reference answer, and every one-step change
// of it, is checked while parsed against the streamed schema of its
// payload type and of another type; it may be said valid only where the
// validator finds both the envelope and that type's payload valid and
// payload_type is that type. Every reference answer as it is, is told.
func TestStreamedShippedSchemas(t *testing.T) {
	s := shipped(t).schemas
	for pt := range s.payloads {
		if s.streamed[pt] == nil {
			t.Fatalf("the shipped %s payload schema gets no streamed schema", pt)
		}
	}
	told, compared := 0, 0
	eachReferenceChange(t, slices.Collect(maps.Keys(s.payloads)), 1, func(doc map[string]any, b []byte, own, other string, first bool) {
		envOK := s.envelope.Validate(doc) == nil
		for _, pt := range []string{own, other} {
			want := envOK && doc["payload_type"] == pt && s.payloads[pt].Validate(doc["payload"]) == nil
			got, err := parseFastChecked(b, map[string]bool{}, false, s.streamed[pt])
			if err != nil {
				t.Fatal(err)
			}
			compared++
			if got.schemaOK && !want {
				t.Fatalf("%s answer %s: streamed valid, the validator not", pt, b)
			}
			if first && want && !got.schemaOK {
				t.Fatalf("%s reference answer %s: valid, the streamed check cannot tell", pt, b)
			}
			if got.schemaOK {
				told++
			}
		}
	})
	t.Logf("%d verdicts compared, %d told valid", compared, told)
	if told < 40 || compared < 4000 {
		t.Fatalf("too few cases: %d told of %d", told, compared)
	}
}

// TestStreamedJudgesAlike judges the reference answers, and one-step
// changes of them, as their payload type's sample and another's, with the
// schemas checked while parsing and with the whole tree built for them:
// the decisions are the same, gate details and hits included.
func TestStreamedJudgesAlike(t *testing.T) {
	r := shipped(t)
	whole := *r
	schemas := *r.schemas
	schemas.streamed = nil
	whole.schemas = &schemas
	n := 0
	// Every third change: the schema tests above take every one.
	eachReferenceChange(t, r.PayloadTypes(), 3, func(_ map[string]any, b []byte, own, other string, _ bool) {
		for _, pt := range []string{own, other} {
			s := Sample{ID: "s", PayloadType: pt, Category: "transport", Difficulty: "easy"}
			got, want := r.Evaluate(s, string(b), ModeLenient), whole.Evaluate(s, string(b), ModeLenient)
			if g, w := decisionText(t, got), decisionText(t, want); g != w {
				i := 0
				for i < len(g) && i < len(w) && g[i] == w[i] {
					i++
				}
				from := max(i-80, 0)
				t.Fatalf("as a %s sample, answer %s: the decisions differ at byte %d:\nstreamed …%s…\nwhole    …%s…", pt, head(string(b), 120), i, g[from:min(i+120, len(g))], w[from:min(i+120, len(w))])
			}
			n++
		}
	})
	t.Logf("%d decisions compared", n)
}

// decisionText is what a record shows of a decision.
func decisionText(t *testing.T, d *Decision) string {
	t.Helper()
	b, err := json.Marshal(struct {
		OK                        bool
		Reasons, Warnings, Audits []string
		Contract                  Contract
		Response                  string
		Gates                     []GateResult
		Hits                      []Hit
	}{d.OverallOK, d.ReasonCodes, d.Warnings, d.Audits, d.Contract, string(d.Response), d.Gates, d.Hits()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
