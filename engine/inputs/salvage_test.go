package inputs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSalvageIDReadsTheTopLevelIDWhereverItIs(t *testing.T) {
	for _, c := range []struct {
		line, want string
	}{
		{`{"id":"e","output_text":"orphan"`, "e"},
		{`{"id": "a\"b\u00e9", "x": }`, "a\"bé"},
		// Keys sorted, as Python's json.dumps(sort_keys=True) writes them.
		{`{"created_at":"t","critique" broken:{"verdict":"reject","issues":[{"id":"inner"}]},"draft_id":"d1","id":"c1"}`, "c1"},
		{`{"critique":{"note":"a \"quoted\" } brace","id":"inner"},"id":"c2",}`, "c2"},
		{`{"x":[1,2,{"id":"deep"}],"id":"c3" "verdict":"pass"}`, "c3"},
		{"{\"bad\":\"\xff\",\"id\":\"c4\"}", "c4"},
		{`{"id":"c5","again":{}, "id":"c5"`, "c5"},
		// No guess: two different ids, an id only nested, brackets that no
		// longer say which level is the top, an id that is no string.
		{`{"id":"a","id":"b"`, ""},
		{`{"critique":{"id":"inner"`, ""},
		{`{"x":{"y":1,"id":"c6"`, ""},
		{`{"x":}}},"id":"c7"}`, ""},
		{`{"id":7,"x":`, ""},
		{`{"id":"  ","x":`, ""},
		{`{"note":"id","x":1`, ""},
		{`{"x":"unterminated , "id":"c8"}`, ""},
	} {
		got, ok := salvageID([]byte(c.line))
		if got != c.want || ok != (c.want != "") {
			t.Errorf("salvageID(%s) = %q, %v; want %q", c.line, got, ok, c.want)
		}
	}
}

// On a line that decodes, salvaging finds what encoding/json's tokenizer
// finds: the one non-blank string among the top-level "id" members.
// (Escapes are left out — "\u0069d" is "id" to a decoder, not to
// salvaging — and so is invalid UTF-8, which salvaging never takes for
// an id.)
func FuzzSalvageIDAgreesOnGoodLines(f *testing.F) {
	for _, s := range []string{
		`{"id":"a"}`, `{"created_at":"t","critique":{"id":"x"},"id":"b"}`, `{"x":[{"id":"n"}],"id":"c d"}`,
		`{"id":7}`, `[{"id":"a"}]`, `{"id":"a","id":"b"}`, `{"id":" ","id":"a"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, `\`) || !utf8.ValidString(line) || !json.Valid([]byte(line)) {
			return
		}
		ids := map[string]bool{}
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, _ := dec.Token(); tok != json.Delim('{') {
			return
		}
		for dec.More() {
			key, _ := dec.Token()
			var v json.RawMessage
			if dec.Decode(&v) != nil {
				t.Fatalf("%s: valid JSON that does not decode", line)
			}
			var id string
			if key == "id" && json.Unmarshal(v, &id) == nil && strings.TrimSpace(id) != "" {
				ids[id] = true
			}
		}
		want := ""
		if len(ids) == 1 {
			for id := range ids {
				want = id
			}
		}
		if got, _ := salvageID([]byte(line)); got != want {
			t.Fatalf("salvageID(%s) = %q, want %q", line, got, want)
		}
	})
}

// A broken critique line whose id is not its first key still rejects its
// sample invalid_input: skipping it would leave the sample without a
// critique, which counts as verdict pass.
func TestABrokenCritiqueWithSortedKeysRejectsItsSample(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Paths{
		Plan:   write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","prompt":"P-a"}`+"\n"+`{"id":"b","payload_type":"checklist","prompt":"P-b"}`+"\n"),
		Drafts: write(t, dir, "drafts.jsonl", `{"id":"a","output_text":"draft a"}`+"\n"+`{"id":"b","output_text":"draft b"}`+"\n"),
		Critiques: write(t, dir, "crit.jsonl", `{"critique":{"verdict":"pass"},"draft_id":"a","id":"a"}`+"\n"+
			`{"created_at":"t","critique" {"verdict":"reject"},"draft_id":"b","id":"b"}`+"\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, _ := loadID(t, s, "b")
	if len(b.Invalid) != 1 || !strings.Contains(b.Invalid[0], "crit.jsonl:2:") {
		t.Fatalf("sample b: invalid %v, critique verdict %q; want it rejected for crit.jsonl:2", b.Invalid, b.Critique.Verdict())
	}
	if a, _ := loadID(t, s, "a"); len(a.Invalid) != 0 || a.Critique.Verdict() != "pass" {
		t.Fatalf("sample a: invalid %v, verdict %q", a.Invalid, a.Critique.Verdict())
	}
}
