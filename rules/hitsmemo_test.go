package rules

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"reflect"
	"slices"
	"testing"

	"github.com/pgrules/pgrules"
)

// referenceAnswers are the 20 reference records' responses, and one with
// text to normalise (curly quotes, a decomposed é) where lists hit.
func referenceAnswers(t testing.TB) (samples []Sample, texts []string) {
	t.Helper()
	eachReferenceRecord(t, func(line []byte) {
		var rec struct {
			ID          string          `json:"id"`
			PayloadType string          `json:"payload_type"`
			Response    json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, Sample{ID: rec.ID, PayloadType: rec.PayloadType})
		texts = append(texts, string(rec.Response))
	})
	samples = append(samples, Sample{ID: "unicode", PayloadType: "procedure"})
	texts = append(texts, `{"summary":"Visa fees — it’s DEFINITELY  €60 at the Cafe\u0301","assumptions":[],"uncertainty_notes":"Prices change.","next_steps":["Café visa check: don’t need to verify"],"verification_steps":["Check the consulate"],"payload_type":"procedure","payload":{"title":"Visa","steps":[{"step":1,"instruction":"Apply; the visa is guaranteed"}]}}`)
	return samples, texts
}

// Remembered hits come back as they were found — term, path, snippet and
// order — and decide the same; a memo cut short, extended or naming what
// the answer lacks is not trusted: the hits are found again.
func TestHitsMemoRoundTrip(t *testing.T) {
	r := shipped(t)
	samples, texts := referenceAnswers(t)
	total := 0
	for i, text := range texts {
		found := r.Evaluate(samples[i], text, ModeLenient)
		m := found.HitsMemo()
		if m == nil || found.HitsKnown {
			t.Fatalf("%s: memo %v, HitsKnown %v", samples[i].ID, m, found.HitsKnown)
		}
		total += len(found.Hits())
		again := r.EvaluateKnown(samples[i], text, ModeLenient, Known{Hits: m})
		if !again.HitsKnown || !reflect.DeepEqual(again.Hits(), found.Hits()) || string(again.GatesJSON()) != string(found.GatesJSON()) {
			t.Errorf("%s: from the memo, known %v, hits %v\nwant %v", samples[i].ID, again.HitsKnown, again.Hits(), found.Hits())
		}
		bad := [][]byte{append(slices.Clone(m), 0)}
		for n := range len(m) {
			bad = append(bad, m[:n])
		}
		// A hit in a string value the answer does not have, and in a list
		// the rules do not have.
		bad = append(bad, sealed(append(binary.AppendUvarint([]byte{1, 0}, 10000), 0, 1)), sealed([]byte{1, 9, 0, 0, 1}))
		// A memo not sealed by HitsMemo.
		bad = append(bad, m[:len(m)-4], append(slices.Clone(m[:len(m)-1]), m[len(m)-1]^1))
		for _, b := range bad {
			d := r.EvaluateKnown(samples[i], text, ModeLenient, Known{Hits: b})
			if d.HitsKnown || !reflect.DeepEqual(d.Hits(), found.Hits()) {
				t.Errorf("%s: memo %v trusted (%v) or hits %v", samples[i].ID, b, d.HitsKnown, d.Hits())
			}
		}
	}
	if total < 40 {
		t.Errorf("only %d hits in the reference answers: the round trip proves little", total)
	}
}

// sealed is a hand-made memo as HitsMemo seals it.
func sealed(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// A sealed span that runs past its string is cut to it when the hit is
// built, never a panic.
func TestHitsMemoSpanPastItsString(t *testing.T) {
	r := shipped(t)
	samples, texts := referenceAnswers(t)
	d := r.EvaluateKnown(samples[0], texts[0], ModeStrict, Known{Hits: sealed([]byte{1, 0, 0, 2, 0xff, 0x7f})})
	hits := d.Hits()
	if !d.HitsKnown || len(hits) != 1 || hits[0].Term == "" || len(hits[0].Term) > len(d.answer.leaves[0].value) {
		t.Errorf("hits %q", hits)
	}
}

// Remembered hits are what the gates see: the lists are not run again, so
// a hit the lists would not find decides.
func TestKnownHitsAreWhatTheGatesSee(t *testing.T) {
	r := shipped(t)
	samples, texts := referenceAnswers(t)
	found := r.Evaluate(samples[0], texts[0], ModeStrict)
	if !found.OverallOK || len(found.Hits()) == 0 {
		t.Fatalf("the reference answer: accepted %v, %d hits; want accepted, time-sensitive", found.OverallOK, len(found.Hits()))
	}
	list := map[string]byte{}
	for i, l := range r.Lists() {
		list[l.Name] = byte(i)
	}
	// Two hits, each in the first string value's first four bytes: one
	// of the time-sensitive list, one of the overconfidence list.
	planted := sealed([]byte{2, list["time_sensitive"], 0, 0, 4, list["overconfidence"], 0, 0, 4})
	d := r.EvaluateKnown(samples[0], texts[0], ModeStrict, Known{Hits: planted})
	if !d.HitsKnown || len(d.Hits()) != 2 || d.Hits()[1].List != "overconfidence" || !slices.Equal(d.ReasonCodes, []string{"overconfident_time_sensitive"}) {
		t.Errorf("with a planted hit known: hits %v, reasons %v", d.Hits(), d.ReasonCodes)
	}
}

// The lists' digest changes with any term, exception or name.
func TestListsDigest(t *testing.T) {
	base := func() []*WordList {
		return []*WordList{{Name: "a", Terms: []Term{{Text: "x"}, {Text: "y"}}}, {Name: "b", Exceptions: []Term{{Text: "z"}}}}
	}
	d0 := listsDigest(base())
	edits := map[string]func([]*WordList){
		"term":           func(l []*WordList) { l[0].Terms[1].Text = "yy" },
		"term moved":     func(l []*WordList) { l[0].Terms = l[0].Terms[:1]; l[1].Terms = []Term{{Text: "y"}} },
		"exception":      func(l []*WordList) { l[1].Exceptions = nil },
		"term→exception": func(l []*WordList) { l[1].Terms, l[1].Exceptions = l[1].Exceptions, nil },
		"name":           func(l []*WordList) { l[1].Name = "c" },
	}
	for name, edit := range edits {
		l := base()
		edit(l)
		if string(listsDigest(l)) == string(d0) {
			t.Errorf("%s: digest unchanged", name)
		}
	}
	if string(listsDigest(base())) != string(d0) {
		t.Error("the digest of the same lists changed")
	}
}

// Hits built as expressions reach them are the hits: every way CEL can
// look at a list gives what Decision.Hits holds.
func TestHitsAsCELSeesThem(t *testing.T) {
	r := shipped(t)
	samples, texts := referenceAnswers(t)
	s, text := samples[len(samples)-1], texts[len(texts)-1]
	var over []Hit
	for _, h := range r.Evaluate(s, text, ModeStrict).Hits() {
		if h.List == "overconfidence" {
			over = append(over, h)
		}
	}
	if len(over) < 3 {
		t.Fatalf("want three overconfidence hits in the unicode answer, got %v", over)
	}
	for expr, want := range map[string]any{
		`size(hits.overconfidence)`:                             int64(len(over)),
		`hits.overconfidence[1].term`:                           over[1].Term,
		`hits.overconfidence[0].path`:                           over[0].Path,
		`hits.overconfidence[2].text`:                           over[2].Text,
		`hits.overconfidence.map(h, h.term)`:                    []any{over[0].Term, over[1].Term, over[2].Term},
		`hits.overconfidence.exists(h, h.term == "definitely")`: true,
		`size(hits.overconfidence + hits.time_sensitive) == size(hits.overconfidence) + size(hits.time_sensitive)`: true,
		`hits.overconfidence == hits.overconfidence`:                                                               true,
	} {
		v, err := r.EvalExpr(expr, s, text, ModeStrict)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if !reflect.DeepEqual(v.Value, want) {
			t.Errorf("%s = %#v, want %#v", expr, v.Value, want)
		}
	}
	in := fmt.Sprintf(`{"term": %q, "path": %q, "text": %q} in hits.overconfidence`, over[0].Term, over[0].Path, over[0].Text)
	if v, err := r.EvalExpr(in, s, text, ModeStrict); err != nil || v.Value != true {
		t.Errorf("%s = %v, %v", in, v, err)
	}
}

// A gate that only counts hits builds none of their strings; one that
// reaches a hit builds it.
func TestHitsAreBuiltOnlyWhenReached(t *testing.T) {
	samples, texts := referenceAnswers(t)
	for _, tc := range []struct {
		expr  string
		built bool
	}{
		{`size(hits.time_sensitive) > 0`, false},
		{`hits.time_sensitive[0].term != ""`, true},
	} {
		body := "lists:\n  time_sensitive: {file: keywords/time_sensitive.txt}\ngates:\n  - name: g\n    reason: r\n    expression: '" + tc.expr + "'\n"
		r, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults})
		if err != nil {
			t.Fatal(err)
		}
		d, act := r.prepare(samples[0], texts[0], ModeStrict, Known{})
		r.judge(d, act)
		if !d.OverallOK || len(d.hits[0]) == 0 {
			t.Fatalf("%s: accepted %v with %d hits; want accepted, with hits", tc.expr, d.OverallOK, len(d.hits[0]))
		}
		if act.norms.ok != tc.built {
			t.Errorf("%s: hit strings built: %v, want %v", tc.expr, act.norms.ok, tc.built)
		}
	}
}
