package rules

import (
	"encoding/json"
	"math/rand/v2"
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

// TestStreamedSchemaAgreesWithTheValidator checks objects against random
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

// The shipped schemas: each reference answer, and every one-step change
// of it, is checked while parsed against the streamed schema of its
// payload type and of every other type; it may be said valid only where
// the validator finds both the envelope and that type's payload valid and
// payload_type is that type. Every reference answer as it is, is told.
func TestStreamedShippedSchemas(t *testing.T) {
	r := shipped(t)
	s := r.schemas
	for pt := range s.payloads {
		if s.streamed[pt] == nil {
			t.Fatalf("the shipped %s payload schema gets no streamed schema", pt)
		}
	}
	_, texts := referenceAnswers(t)
	told, compared := 0, 0
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		doc := a.doc
		original, _ := doc["payload_type"].(string)
		other := ""
		for pt := range s.streamed {
			if pt != original {
				other = pt
				break
			}
		}
		first := true
		eachChange(doc, func() {
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			envOK := s.envelope.Validate(doc) == nil
			m := doc
			for pt, st := range s.streamed {
				if pt != original && pt != other {
					continue // one other type than the answer's is enough
				}
				want := envOK && m != nil && m["payload_type"] == pt && s.payloads[pt].Validate(m["payload"]) == nil
				got, err := parseFastChecked(b, map[string]bool{}, false, st)
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
			first = false
		})
	}
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
	_, texts := referenceAnswers(t)
	n := 0
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		doc := a.doc
		own, _ := doc["payload_type"].(string)
		other := map[string]string{"itinerary": "checklist", "checklist": "procedure", "procedure": "decision_tree", "decision_tree": "itinerary"}[own]
		change := 0
		eachChange(doc, func() {
			// Every third change, as the answer's payload type and one
			// other: the schema tests above take every change.
			if change++; change%3 != 1 {
				return
			}
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
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
	}
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
