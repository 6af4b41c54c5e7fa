package rules

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pgrules/pgrules"
)

// The fields an expression reads are found through has(), indexes by a
// literal, nesting, lists, maps and comprehensions; any other use of
// response means every field, and a comprehension variable named
// response is not the answer.
func TestResponseFields(t *testing.T) {
	for expr, want := range map[string]string{
		`response.summary != ""`: "payload_type summary",
		`(has(response.verification_steps) ? size(response.verification_steps) : 0) > 0`: "payload_type verification_steps",
		`response["next_steps"].size() > 0`:                                              "next_steps payload_type",
		`response.payload.title != ""`:                                                   "payload payload_type",
		`[1].all(x, response.summary != "")`:                                             "payload_type summary",
		`{"a": response.summary}.a != ""`:                                                "payload_type summary",
		`[1].map(response, response + 1) == [2]`:                                         "payload_type",
		`[1].map(response, response + 1) == [size(response.assumptions)]`:                "assumptions payload_type",
		`response.next_steps.exists(s, s.contains(response.summary))`:                    "next_steps payload_type summary",
		`size(response) > 3`:                                                             "all",
		`response.exists(k, k == "summary")`:                                             "all",
		`response[sample.id] == 1`:                                                       "all",
		`"summary" in response`:                                                          "all",
		`[response].size() == 1`:                                                         "all",
		`[1].map(x, response).size() == 1`:                                               "all",
		`response == {}`:                                                                 "all",
	} {
		body := "gates:\n  - name: g\n    reason: r\n    expression: '" + strings.ReplaceAll(expr, "'", "''") + "'\n"
		r, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults})
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		got := "all"
		if r.responseFields != nil {
			got = strings.Join(slices.Sorted(maps.Keys(r.responseFields)), " ")
		}
		if got != want {
			t.Errorf("%s reads %q, want %q", expr, got, want)
		}
	}
	if got := slices.Sorted(maps.Keys(shipped(t).responseFields)); fmt.Sprint(got) != "[payload_type uncertainty_notes verification_steps]" {
		t.Errorf("the shipped gates read %v", got)
	}
}

// An answer whose schema verdict is known is judged as one whose is not,
// whichever fields the gates read: only the fields they read are built.
func TestKnownSchemaJudgesAlike(t *testing.T) {
	body := `lists:
  time_sensitive: {file: keywords/time_sensitive.txt}
variables:
  - name: steps
    expression: 'has(response.payload.steps) ? size(response.payload.steps) : -1'
gates:
  - name: contract_ok
    expression: contract.overall_ok
    reason: contract
  - name: payload
    expression: variables.steps != 0 && response.summary.size() > 10
    reason: payload
    details:
      steps: variables.steps
      kind: response["payload_type"]
      hits: size(hits.time_sensitive)
`
	r, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(r.responseFields)); fmt.Sprint(got) != "[payload payload_type summary]" {
		t.Fatalf("reads %v", got)
	}
	samples, texts := referenceAnswers(t)
	for i, text := range texts {
		full := r.Evaluate(samples[i], text, ModeStrict)
		known := r.EvaluateKnown(samples[i], text, ModeStrict, Known{SchemaOK: true})
		if string(known.GatesJSON()) != string(full.GatesJSON()) || known.Contract.PayloadType != full.Contract.PayloadType || string(known.Response) != string(full.Response) {
			t.Errorf("%s: known schema verdict gives %s, want %s", samples[i].ID, known.GatesJSON(), full.GatesJSON())
		}
		if len(known.answer.doc) != 3 && len(known.answer.doc) != 2 {
			t.Errorf("%s: %d fields built, want the 3 read", samples[i].ID, len(known.answer.doc))
		}
		// The hits known as well: the strings are not even listed, and the
		// same record comes out, hits and string values included.
		lean := r.EvaluateKnown(samples[i], text, ModeStrict, Known{SchemaOK: true, Hits: full.HitsMemo()})
		if !lean.HitsKnown || len(lean.answer.leaves) != 0 {
			t.Fatalf("%s: hits known %v, %d strings listed before anything asked for them", samples[i].ID, lean.HitsKnown, len(lean.answer.leaves))
		}
		if string(lean.GatesJSON()) != string(full.GatesJSON()) || string(lean.Response) != string(full.Response) ||
			!reflect.DeepEqual(lean.Hits(), full.Hits()) || !reflect.DeepEqual(lean.Leaves(), full.Leaves()) {
			t.Errorf("%s: known schema and hits give %s, want %s", samples[i].ID, lean.GatesJSON(), full.GatesJSON())
		}
	}
}
