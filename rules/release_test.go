package rules

import (
	"reflect"
	"sync"
	"testing"
)

// Decisions released as soon as they are read, on eight goroutines at
// once, read exactly what decisions never released read: a buffer handed
// to a parse while another answer still held it would show here (and the
// released one is overwritten, so a read after Release shows too).
func TestReleasedParseBuffersNeverShowInAnotherAnswer(t *testing.T) {
	r := shipped(t)
	samples, texts := referenceAnswers(t)
	type seen struct {
		response string
		gates    string
		hits     []Hit
	}
	want := make([]seen, len(texts))
	for i, text := range texts {
		d := r.Evaluate(samples[i], text, ModeLenient)
		want[i] = seen{string(d.Response), string(d.GatesJSON()), d.Hits()}
		if len(d.Response) == 0 {
			t.Fatalf("%s: no response", samples[i].ID)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 200 {
				i := (g*7 + n) % len(texts)
				d := r.EvaluateKnown(samples[i], texts[i], ModeLenient, Known{})
				got := seen{string(d.Response), string(d.GatesJSON()), d.Hits()}
				d.Release()
				if got.response != want[i].response || got.gates != want[i].gates || !reflect.DeepEqual(got.hits, want[i].hits) {
					t.Errorf("%s: with decisions released, read response %q…, %d hits; want %q…, %d hits",
						samples[i].ID, head(got.response, 60), len(got.hits), head(want[i].response, 60), len(want[i].hits))
					return
				}
				if d.Response != nil || d.Hits() != nil {
					t.Errorf("%s: a released decision still gives its response or hits", samples[i].ID)
					return
				}
			}
		}()
	}
	wg.Wait()
}
