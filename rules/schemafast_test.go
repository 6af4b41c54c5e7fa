package rules

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fastVerdicts compares fastSchema with the validator on one schema and
// instance: a fastSchema may only be missing (unknown keywords), never
// wrong.
type fastVerdicts struct {
	compiled, skipped, valid, invalid int
}

func (fv *fastVerdicts) compare(t *testing.T, what string, sch *jsonschema.Schema, f *fastSchema, inst any) {
	t.Helper()
	want := sch.Validate(inst) == nil
	if f == nil {
		fv.skipped++
		return
	}
	fv.compiled++
	got := f.valid(inst)
	if got != want {
		b, _ := json.Marshal(inst)
		t.Fatalf("%s\ninstance %s: fastSchema says valid=%v, the validator %v", what, b, got, want)
	}
	if want {
		fv.valid++
	} else {
		fv.invalid++
	}
}

func compileSchemaDoc(t *testing.T, doc string) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem:///s.json", v); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("mem:///s.json")
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return sch
}

// fastSchema and the validator agree on random schemas made of the
// keywords fastSchema knows (and now and then one it does not), in three
// drafts, on random values built from the schemas' own names and bounds.
func TestFastSchemaAgreesWithTheValidator(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var fv fastVerdicts
	schemas := 0
	for range 3000 {
		doc := randomSchema(rng)
		sch := compileSchemaDoc(t, doc)
		f, ok := compileFast(sch)
		if !ok {
			f = nil
		}
		schemas++
		for range 30 {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(randomValue(rng, 3)))
			if err != nil {
				t.Fatal(err)
			}
			fv.compare(t, "schema "+doc, sch, f, inst)
		}
	}
	t.Logf("%d schemas; %d verdicts compared (%d valid, %d invalid); %d with unknown keywords not compared", schemas, fv.compiled, fv.valid, fv.invalid, fv.skipped)
	// The comparison means something only if both verdicts are common
	// and most schemas get a fastSchema.
	if fv.valid < fv.compiled/10 || fv.invalid < fv.compiled/10 || fv.skipped > fv.compiled {
		t.Fatalf("the random cases are lopsided: %+v", fv)
	}
}

// The shipped schemas all get a fastSchema, and it agrees with the
// validator on the reference answers and on every one-step change of them
// (a member removed, a value replaced by one of another type or empty, a
// member added).
func TestFastSchemaOnTheShippedSchemas(t *testing.T) {
	r := shipped(t)
	s := r.schemas
	if s.fastEnvelope == nil {
		t.Fatal("the shipped envelope schema gets no fastSchema")
	}
	for pt := range s.payloads {
		if s.fastPayloads[pt] == nil {
			t.Fatalf("the shipped %s payload schema gets no fastSchema", pt)
		}
	}
	_, texts := referenceAnswers(t)
	var fv fastVerdicts
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		doc := a.doc
		eachChange(doc, func() {
			fv.compare(t, "envelope", s.envelope, s.fastEnvelope, doc)
			pt, _ := doc["payload_type"].(string)
			if sch := s.payloads[pt]; sch != nil {
				fv.compare(t, pt+" payload", sch, s.fastPayloads[pt], doc["payload"])
			}
		})
	}
	t.Logf("%d verdicts compared (%d valid, %d invalid)", fv.compiled, fv.valid, fv.invalid)
	if fv.valid < 40 || fv.invalid < 1000 {
		t.Fatalf("too few cases: %+v", fv)
	}
}

// eachChange calls f with v as it is and then with each one-step change
// of it, made in place and undone after f.
func eachChange(v any, f func()) {
	f()
	replacements := []any{nil, "", "x", json.Number("0"), json.Number("-1.5"), true, []any{}, map[string]any{}}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, old := range v {
				delete(v, k)
				f()
				for _, r := range replacements {
					v[k] = r
					f()
				}
				v[k] = old
				walk(old)
			}
			v["zz_extra"] = "x"
			f()
			delete(v, "zz_extra")
		case []any:
			for i, old := range v {
				for _, r := range replacements {
					v[i] = r
					f()
				}
				v[i] = old
				walk(old)
			}
		}
	}
	walk(v)
}

// Keywords fastSchema does not carry out leave the schema to the
// validator, wherever they are.
func TestFastSchemaLeavesUnknownKeywordsToTheValidator(t *testing.T) {
	for _, kw := range []string{
		`"not": {"type": "string"}`,
		`"oneOf": [{"type": "string"}, {"minLength": 1}]`,
		`"if": {"type": "string"}, "then": {"minLength": 2}`,
		`"const": "a"`,
		`"enum": ["a", 1]`,
		`"uniqueItems": true`,
		`"contains": {"type": "string"}`,
		`"prefixItems": [{"type": "string"}]`,
		`"patternProperties": {"^a": {"type": "string"}}`,
		`"propertyNames": {"maxLength": 3}`,
		`"dependentRequired": {"a": ["b"]}`,
		`"unevaluatedProperties": false`,
		`"$dynamicRef": "#"`,
	} {
		for _, doc := range []string{
			`{` + kw + `}`,
			`{"type": "object", "properties": {"a": {"type": "array", "items": {` + kw + `}}}}`,
			`{"$defs": {"d": {` + kw + `}}, "allOf": [{"$ref": "#/$defs/d"}]}`,
		} {
			if _, ok := compileFast(compileSchemaDoc(t, doc)); ok {
				t.Errorf("%s: got a fastSchema", doc)
			}
		}
	}
	if _, ok := compileFast(compileSchemaDoc(t, `{"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#"}}}`)); !ok {
		t.Error("a schema that refers to itself gets no fastSchema")
	}
}

// A $ref cycle that consumes no input is reported by the validator; the
// fastSchema does not loop forever on it.
func TestFastSchemaStopsOnARefCycle(t *testing.T) {
	sch := compileSchemaDoc(t, `{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}`)
	f, ok := compileFast(sch)
	if !ok {
		t.Fatal("no fastSchema")
	}
	if f.valid("x") {
		t.Fatal("valid under a $ref cycle")
	}
	if sch.Validate("x") == nil {
		t.Fatal("the validator took a $ref cycle")
	}
}

var (
	schemaNames   = []string{"a", "b", "c"}
	schemaStrings = []string{"", "a", "ab", "é", "abc", "b"}
	schemaNumbers = []string{"0", "1", "-1", "1.5", "2", "1.0", "1e2", "3", "10", "0.5"}
	schemaTypes   = []string{"null", "boolean", "number", "integer", "string", "array", "object"}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// randomSchema is a schema of the keywords fastSchema knows, in one of
// three drafts, with now and then one it does not know.
func randomSchema(rng *rand.Rand) string {
	draft := pick(rng, []string{"", "http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-04/schema#"})
	body := randomSubschema(rng, 3, draft)
	head := `"$defs": {"d": ` + randomSubschema(rng, 1, draft) + `}`
	if draft != "" {
		head += `, "$schema": "` + draft + `"`
	}
	if body = strings.TrimSuffix(strings.TrimPrefix(body, "{"), "}"); body == "true" || body == "false" || body == "" {
		return "{" + head + "}"
	}
	return "{" + head + ", " + body + "}"
}

func randomSubschema(rng *rand.Rand, depth int, draft string) string {
	if rng.IntN(20) == 0 && !strings.Contains(draft, "draft-04") { // boolean schemas came with draft 6
		return pick(rng, []string{"true", "false"})
	}
	var kws []string
	add := func(format string, args ...any) { kws = append(kws, fmt.Sprintf(format, args...)) }
	sub := func() string {
		if depth == 0 {
			return `{"type": "` + pick(rng, schemaTypes) + `"}`
		}
		return randomSubschema(rng, depth-1, draft)
	}
	for range 1 + rng.IntN(4) {
		switch rng.IntN(20) {
		case 0, 1:
			add(`"type": "%s"`, pick(rng, schemaTypes))
		case 2:
			p := rng.Perm(len(schemaTypes))
			add(`"type": ["%s", "%s"]`, schemaTypes[p[0]], schemaTypes[p[1]])
		case 3:
			p := rng.Perm(len(schemaStrings)) // draft 4 wants the values distinct
			add(`"enum": ["%s", "%s"]`, schemaStrings[p[0]], schemaStrings[p[1]])
		case 4:
			add(`"required": ["%s"]`, pick(rng, schemaNames))
		case 5, 6:
			add(`"properties": {"%s": %s, "%s": %s}`, pick(rng, schemaNames), sub(), pick(rng, schemaNames)+"x", sub())
		case 7:
			add(`"additionalProperties": %s`, pick(rng, []string{"false", "true", sub()}))
		case 8:
			add(`"%s": %d`, pick(rng, []string{"minProperties", "maxProperties", "minItems", "maxItems", "minLength", "maxLength"}), rng.IntN(3))
		case 9:
			add(`"items": %s`, sub())
		case 10:
			add(`"pattern": "%s"`, pick(rng, []string{"^a", "b$", "é"}))
		case 11:
			kw := pick(rng, []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
			if strings.HasPrefix(kw, "exclusive") && strings.Contains(draft, "draft-04") {
				kw = "minimum"
			}
			n := pick(rng, schemaNumbers)
			if kw == "multipleOf" {
				n = pick(rng, []string{"1", "0.5", "2"})
			}
			add(`"%s": %s`, kw, n)
		case 12:
			add(`"allOf": [%s, %s]`, sub(), sub())
		case 13:
			add(`"anyOf": [%s, %s]`, sub(), sub())
		case 14:
			add(`"$ref": "#/$defs/d"`)
		case 15:
			add(`"$ref": "#"`)
		case 16:
			add(`"title": "t", "description": "d", "default": 1, "examples": [1]`)
		case 17:
			if rng.IntN(4) == 0 {
				add(`%s`, pick(rng, []string{`"not": {"type": "string"}`, `"uniqueItems": true`, `"const": "a"`, `"oneOf": [{"type": "string"}, {"type": "null"}]`}))
			}
		default:
			add(`"type": "object", "properties": {"%s": %s}`, pick(rng, schemaNames), sub())
		}
	}
	// A keyword given twice is one JSON member: the last counts, in both.
	return "{" + strings.Join(kws, ", ") + "}"
}

// randomValue is a JSON value of the names, strings and numbers the
// random schemas use.
func randomValue(rng *rand.Rand, depth int) string {
	k := rng.IntN(8)
	if depth == 0 {
		k = rng.IntN(4)
	}
	switch k {
	case 0:
		return pick(rng, []string{"null", "true", "false"})
	case 1:
		return pick(rng, schemaNumbers)
	case 2, 3:
		b, _ := json.Marshal(pick(rng, schemaStrings))
		return string(b)
	case 4, 5:
		var items []string
		for range rng.IntN(4) {
			items = append(items, randomValue(rng, depth-1))
		}
		return "[" + strings.Join(items, ", ") + "]"
	default:
		var members []string
		seen := map[string]bool{}
		for range rng.IntN(4) {
			name := pick(rng, append(schemaNames, "ax", "d"))
			if !seen[name] {
				seen[name] = true
				members = append(members, `"`+name+`": `+randomValue(rng, depth-1))
			}
		}
		return "{" + strings.Join(members, ", ") + "}"
	}
}

// BenchmarkSchemaCheck checks the reference answers against the shipped
// schemas as a first run does: with the validator alone, and with the
// fastSchema first.
func BenchmarkSchemaCheck(b *testing.B) {
	r := shipped(b)
	samples, texts := referenceAnswers(b)
	var docs []map[string]any
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, a.doc)
	}
	for _, bc := range []struct {
		name string
		fast bool
	}{{"validator", false}, {"fast", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := *r.schemas
			if !bc.fast {
				s.fastEnvelope, s.fastPayloads = nil, nil
			}
			b.ReportAllocs()
			for b.Loop() {
				for i, doc := range docs {
					var c Contract
					s.check(doc, samples[i].PayloadType, &c)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(docs)), "ns/answer")
		})
	}
}

// FuzzFastSchema holds fastSchema to the validator's verdict on any
// answer, against the shipped schemas, and on random schemas from the
// fuzzer's seeds.
func FuzzFastSchema(f *testing.F) {
	_, texts := referenceAnswers(f)
	for i, text := range texts {
		f.Add(text, uint64(i))
	}
	r := shipped(f)
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		s := r.schemas
		var fv fastVerdicts
		if a, _, _, err := parseAnswer(text, ModeStrict, nil, false); err == nil && a.doc != nil {
			fv.compare(t, "envelope", s.envelope, s.fastEnvelope, a.doc)
			envOK := s.envelope.Validate(a.doc) == nil
			for pt, sch := range s.payloads {
				fv.compare(t, pt+" payload", sch, s.fastPayloads[pt], a.doc["payload"])
				// Checked while parsed, it may only be valid where the
				// validator finds it valid as that payload type.
				streamed, _, _, err := parseAnswerChecked(text, ModeStrict, map[string]bool{}, false, s.streamed[pt])
				if err == nil && streamed.schemaOK && !(envOK && a.doc["payload_type"] == pt && sch.Validate(a.doc["payload"]) == nil) {
					t.Fatalf("%s: streamed valid, the validator not: %s", pt, text)
				}
			}
		}
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		doc := randomSchema(rng)
		sch := compileSchemaDoc(t, doc)
		fs, _ := compileFast(sch)
		for range 10 {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(randomValue(rng, 3)))
			if err != nil {
				t.Fatal(err)
			}
			fv.compare(t, "schema "+doc, sch, fs, inst)
			if fs != nil {
				var sv streamVerdicts
				sv.compare(t, "schema "+doc, sch, fs, randomValue(rng, 3))
			}
		}
	})
}
