package rules

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParseAnswer: whatever the teacher sends, parsing never panics, what
// it returns is one valid JSON object, and strict success implies lenient
// success. Run longer with `go test -fuzz FuzzParseAnswer ./rules`.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"a": 1}`, "```json\n{\"a\": [1, {\"b\": \"}\"}]}\n```", `prose {"a": "x"} more`, `{"a": `, `{{{`, `"}{"`, ``, `[1]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		obj, mode, strictOK, err := parseAnswer(raw, ModeLenient)
		if err != nil {
			if strictOK || obj != nil {
				t.Fatalf("failed parse returned an object or strict ok")
			}
			return
		}
		var v map[string]any
		if json.Unmarshal(obj, &v) != nil {
			t.Fatalf("parsed %q is not a JSON object", obj)
		}
		if _, _, sok, serr := parseAnswer(raw, ModeStrict); serr == nil && (!sok || mode != "strict") {
			t.Fatalf("strict success but lenient reported mode %q", mode)
		}
	})
}

// FuzzKeywordSpans: hits lie inside the text, never overlap, sit on word
// boundaries, and are terms of the list.
func FuzzKeywordSpans(f *testing.F) {
	terms := []Term{{Text: "now"}, {Text: "fee"}, {Text: "fees"}, {Text: "entry requirement"}, {Text: "entry requirements"}, {Text: "100%"}, {Text: "don't need to verify"}}
	m := compileTerms(terms)
	for _, s := range []string{"I know the fees now", "entry requirements; fee", "100%100%", "nownow now"} {
		f.Add(s)
	}
	known := map[string]bool{}
	for _, t := range terms {
		known[t.Text] = true
	}
	f.Fuzz(func(t *testing.T, text string) {
		s := normalize(text)
		if !utf8.ValidString(text) {
			return
		}
		end := 0
		for _, sp := range spans(m, s) {
			if sp[0] < end || sp[1] > len(s) || sp[0] >= sp[1] {
				t.Fatalf("bad span %v in %q", sp, s)
			}
			if !known[s[sp[0]:sp[1]]] || !boundaryBefore(s, sp[0]) || !boundaryAfter(s, sp[1]) {
				t.Fatalf("span %q in %q is not a whole-word term", s[sp[0]:sp[1]], s)
			}
			end = sp[1]
		}
	})
}
