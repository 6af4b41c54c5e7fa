package rules

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/pgrules/pgrules"
)

func shipped(t testing.TB) *Rules {
	t.Helper()
	r, err := Load("../gates.yaml", Options{Fallback: pgrules.Defaults})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestShippedGatesLoad(t *testing.T) {
	r := shipped(t)
	if got := r.GateNames(); len(got) != 3 {
		t.Fatalf("gates = %v", got)
	}
}

// eachReferenceRecord calls fn with each of the original pipeline's 20
// accepted records.
func eachReferenceRecord(t testing.TB, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open("../testdata/reference/sample_accepted_v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fn(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestReferenceRecordsAsAnswers(t *testing.T) {
	r := shipped(t)
	n := 0
	eachReferenceRecord(t, func(line []byte) {
		var rec struct {
			ID          string          `json:"id"`
			PayloadType string          `json:"payload_type"`
			Response    json.RawMessage `json:"response"`
			Quality     struct {
				Gates map[string]struct {
					Details map[string]any `json:"details"`
				} `json:"gates"`
			} `json:"quality"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		n++
		d := r.Evaluate(Sample{ID: rec.ID, PayloadType: rec.PayloadType}, string(rec.Response), ModeStrict)
		if !d.OverallOK {
			t.Errorf("%s: the original accepted it, pgrules rejects it: %v\n%s", rec.ID, d.ReasonCodes, d.GatesJSON())
			return
		}
		// Same detail values as the original for what both compute.
		orig := rec.Quality.Gates["verification_when_needed"].Details
		got := d.Gates[1].Details
		if c, _ := got.Get("verification_steps_count"); fmt.Sprint(c) != fmt.Sprint(orig["verification_steps_count"]) {
			t.Errorf("%s: verification_steps_count %v, original %v", rec.ID, c, orig["verification_steps_count"])
		}
		if l, _ := got.Get("uncertainty_notes_length"); fmt.Sprint(l) != fmt.Sprint(orig["uncertainty_notes_length"]) {
			t.Errorf("%s: uncertainty_notes_length %v, original %v", rec.ID, l, orig["uncertainty_notes_length"])
		}
	})
	if n != 20 {
		t.Fatalf("read %d records", n)
	}
}
