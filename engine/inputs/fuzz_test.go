package inputs

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// fastDraft and fastCritique decode a whole line, prompt and critique
// object included: what the fuzz tests hold the fast decoders to. A run
// loads with fastDraftText and fastCritiqueMode(line, false), and the
// index checks with checkCritique.
func fastDraft(line []byte) (d Draft, ok bool) { return fastDraftMode(line, true, true) }

func fastCritique(line []byte) (rec *CritiqueRecord, ok bool) { return fastCritiqueMode(line, true) }

// FuzzFastDecodersAgreeWithEncodingJSON: whenever a fast decoder says it
// is sure, encoding/json accepts the line too and decodes the same values;
// whenever encoding/json refuses a line, the fast decoder is not sure.
func FuzzFastDecodersAgreeWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"id": "a", "payload_type": "checklist", "category": "safety", "difficulty": "easy", "region_tags": ["EU", null], "template_version": "t", "template_name": "n", "prompt": "P\u00e9", "location": {"country": "PT", "city": "Lisbon"}, "created_by": "x", "seed": 7}`,
		`{"id": "a", "region_tags": "EU"}`, `{"ID": "a"}`, `{"id": "a", "seed": 1.5}`, `{"id": "a", "location": null, "seed": null}`,
		`{"id": "d", "output_text": null, "prompt": "p", "prompt_plan": {"x": [1, 2]}, "teacher": {}, "contract": null}`,
		`{"id": "d", "output_text": "{\"summary\": \"x\"}"}`, `{"id": "d", "output_text": 5}`, `{"":""}`,
		`{"id": "d", "output_text": "a", "output_text": null}`, `{"id": "d", "output_text": null, "output_text": "b"}`,
		`{"id": "c", "draft_id": "c", "critique": {"verdict": "revise", "issues": [{"type": "t", "severity": "s", "message": "m"}, null], "scores": {"a": 1}, "rewrite_instructions": ["x", null]}}`,
		`{"id": "c", "critique": null}`, `{"draft_id": "c", "critique": {"verdict": 3}}`, `{"id": "c", "verdict": "pass"}`, `{"id": 7, "draft_id": "x", "critique": {}}`,
		`{"id": "a\ud800"}`, `{"id": "x\ud83d\ude00y\ud800\u0041\n\"q\"\\", "output_text": "\ud83d\ude00"}`, `{"id": "a", "id": "b"}`, `{"id": "a", "id": null, "prompt": "x", "prompt": null}`,
		`{"id": "a", "prompt": "x\n", "Prompt": null}`, `{"id": "a", "Prompt": "y", "prompt": "x"}`, `{"id": "a", "prompt": "x", "PROMPT": "z"}`, `{"id": "a", "prompt": "x", "prompt": 1}`, `{"id": "c", "id": null, "critique": {"verdict": "pass", "verdict": null}}`,
		`{"id": "c", "critique": {"Verdict": "reject", "verdict": "pass"}}`, `{"id": "c", "critique": {"verdict": "revise", "issues": [{"Type": "t"}], "rewrite_instructions": null}}`,
		`{"id": "c", "critique": {"verdict": "pass", "verdict": null, "issues": [null, {"type": null, "extra": 1}], "rewrite_instructions": ["a", null]}}`,
		`{"id": "c", "critique": {"verdict": "pass", "issues": [{"message": 3}]}}`, `{"id": "c", "critique": {"verdict": "pass", "issues": [[]]}}`,
		`{"id": "c", "critique": {"verdict": "pass", "rewrite_instructions": [1]}}`, `{"id": "c", "critique": {"verdict": "pass", "rewrite_instructions": "x"}}`,
		`{"id": "c", "critique": {"verdict": "pass", "issues": {}}}`, `{"id": "c", "critique": {"verdict": 1}}`, `{"id": "c", "critique": []}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if !utf8.ValidString(line) {
			return
		}
		b := []byte(line)
		// Indexing checks without decoding: it must be sure exactly when
		// decoding is, and find the same id.
		if p, ok := fastPlanMode(b, false); ok {
			if q, ok2 := fastPlan(b); !ok2 || q.ID != p.ID {
				t.Fatalf("plan %q: check-only ok, decoding ok=%v", line, ok2)
			}
		}
		if d, ok := fastDraftMode(b, false, false); ok {
			if e, ok2 := fastDraft(b); !ok2 || e.ID != d.ID || (e.OutputText == nil) != (d.OutputText == nil) {
				t.Fatalf("draft %q: check-only ok, decoding ok=%v", line, ok2)
			}
		}
		if p, ok := fastPlan(b); ok {
			var want Plan
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("plan %q: fast sure, encoding/json: %v", line, err)
			}
			want.Seed = nil // not used by a run: the fast path only checks its type
			if !reflect.DeepEqual(p, want) {
				t.Fatalf("plan %q: fast %#v, want %#v", line, p, want)
			}
		}
		if d, ok := fastDraft(b); ok {
			var want Draft
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("draft %q: fast sure, encoding/json: %v", line, err)
			}
			if d.ID != want.ID || d.Prompt != want.Prompt || (d.OutputText == nil) != (want.OutputText == nil) || d.OutputText != nil && *d.OutputText != *want.OutputText {
				t.Fatalf("draft %q: fast %+v, want %+v", line, d, want)
			}
		}
		// The fast decoder leaves a verdict that is none of pass, revise,
		// reject to the index (critiqueKind), which hands such a line to
		// decodeCritique to say what is wrong.
		if c, ok := fastCritique(b); ok && c.Verdict() != "unknown" {
			want, err := decodeCritique(b)
			if err != nil {
				t.Fatalf("critique %q: fast sure, decodeCritique: %v", line, err)
			}
			if c.ID != want.ID || c.DraftID != want.DraftID || !reflect.DeepEqual(c.Body(), want.Body()) || string(c.Raw) != string(want.Raw) {
				t.Fatalf("critique %q: fast %+v %+v, want %+v %+v", line, c, c.Body(), want, want.Body())
			}
		}
		// The index checks what the decoder checks, building nothing: the
		// same verdict on the line, the same ids and critique verdict.
		c, ok := fastCritique(b)
		k, kok := checkCritique(b)
		if ok != kok || ok && (c.ID != k.ID || c.DraftID != k.DraftID || c.Verdict() != k.Verdict()) {
			t.Fatalf("critique %q: checked %v %+v, decoded %v %+v", line, kok, k, ok, c)
		}
		// Loading a line the index accepted may leave the object undecoded:
		// its verdict now, and its object when asked, are the whole decode's.
		if want, err := decodeCritique(b); err == nil {
			if c, ok := fastCritiqueMode(b, false); ok {
				if c.Verdict() != want.Verdict() || string(c.Raw) != string(want.Raw) || c.ID != want.ID || c.DraftID != want.DraftID {
					t.Fatalf("critique %q: loaded verdict %q raw %s, want %q %s", line, c.Verdict(), c.Raw, want.Verdict(), want.Raw)
				}
				if !reflect.DeepEqual(c.Body(), want.Body()) {
					t.Fatalf("critique %q: loaded object %+v, want %+v", line, c.Body(), want.Body())
				}
			}
		}
	})
}

// fastDraftText is fastDraft without the prompt's value: the same
// verdict on every line, the same text.
func FuzzDraftTextIsDraftWithoutPrompt(f *testing.F) {
	f.Add([]byte(`{"id":"a","output_text":"x\n","prompt":"p\u00e9"}`))
	f.Add([]byte(`{"id":"a","output_text":null,"prompt":7}`))
	f.Add([]byte(`{"id":"a","prompt":"p","output_text":"t","prompt":"q"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		want, wok := fastDraft(line)
		got, gok := fastDraftText(line)
		if wok != gok {
			t.Fatalf("%q: ok %v, fastDraft %v", line, gok, wok)
		}
		if !wok {
			return
		}
		if got.Prompt != "" || got.ID != want.ID || (got.OutputText == nil) != (want.OutputText == nil) || got.OutputText != nil && *got.OutputText != *want.OutputText {
			t.Fatalf("%q: %+v, fastDraft %+v", line, got, want)
		}
	})
}

// FuzzRewriteInstructionsAreTheBodys: decoding the rewrite instructions
// alone gives what decoding the whole critique object gives, whatever the
// object holds (duplicate keys, keys in other cases, wrong types, bad
// JSON).
func FuzzRewriteInstructionsAreTheBodys(f *testing.F) {
	for _, s := range []string{
		`{"verdict":"revise","issues":[{"type":"accuracy","severity":"high","message":"m"}],"rewrite_instructions":["a","b"]}`,
		`{"rewrite_instructions":["a"],"REWRITE_INSTRUCTIONS":["b"]}`,
		`{"rewrite_instructions":["a"],"issues":"not a list"}`,
		`{"rewrite_instructions":null}`, `{"rewrite_instructions":[]}`, `{"rewrite_instructions":[null,"x"]}`,
		`{"rewrite_instructions":[1]}`, `{"Rewrite_Instructions":["\u00e9\n"]}`, `{}`, `[]`, `{"a":`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if raw == nil {
			raw = []byte{}
		}
		alone := &CritiqueRecord{Raw: raw}
		whole := &CritiqueRecord{Raw: raw}
		got, want := alone.RewriteInstructions(), whole.Body().RewriteInstructions
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: rewrite instructions %#v alone, %#v from the whole object", raw, got, want)
		}
		if alone.body != nil && !reflect.DeepEqual(alone.Body(), whole.Body()) {
			t.Fatalf("%q: the body decoded after them differs", raw)
		}
	})
}
