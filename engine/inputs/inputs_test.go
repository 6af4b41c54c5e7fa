package inputs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenJoinsByIDAndReportsBadLines(t *testing.T) {
	dir := t.TempDir()
	paths := Paths{
		Plan: write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","category":"safety","prompt":"P-a","region_tags":["EU"]}
{"id":"b","payload_type":"itinerary","prompt":"P-b"}

{"id":"c","payload_type":"procedure","region_tags":"EU"}
{"id":"a","payload_type":"checklist"}
  {"id": 7}
`),
		Drafts: write(t, dir, "drafts.jsonl", `{"id":"b","output_text":"draft b"}
{"id":"a","output_text":"draft a"}
{"id":"d","output_text":null}
{"id":"e","output_text":"orphan"
`),
		Critiques: write(t, dir, "crit.jsonl", `{"id":"a","draft_id":"a","critique":{"verdict":"revise","issues":[],"rewrite_instructions":["fix it"]}}
{"id":"b","verdict":"reject","issues":[{"type":"safety","severity":"high","message":"unsafe"}],"rewrite_instructions":[]}
{"id":"d","critique":null,"raw_critique_text":"oops"}
`),
	}
	s, err := Open(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(s.IDs, want) {
		t.Errorf("IDs = %v, want %v (plan order, then ids only in other files)", s.IDs, want)
	}
	var probs []string
	for _, p := range s.Problems() {
		probs = append(probs, p.Error())
	}
	joined := strings.Join(probs, "\n")
	for _, want := range []string{
		`plan.jsonl:4: field "region_tags": expected an array of strings, got JSON string`,
		`plan.jsonl:5: duplicate id "a" (first seen on line 1)`,
		`plan.jsonl:6: "id" must be a non-empty string, got 7`,
		`drafts.jsonl:4:`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q; got:\n%s", want, joined)
		}
	}

	a, _ := s.Load("a")
	if a.Plan == nil || a.Plan.Prompt != "P-a" || *a.Draft.OutputText != "draft a" || a.Critique.Verdict() != "revise" {
		t.Errorf("sample a joined wrongly: %+v", a)
	}
	if got := a.Critique.Critique.RewriteInstructions; !reflect.DeepEqual(got, []string{"fix it"}) {
		t.Errorf("nested critique instructions = %v", got)
	}
	b, _ := s.Load("b")
	if b.Critique.Verdict() != "reject" || strings.Contains(string(b.Critique.Raw), `"id"`) {
		t.Errorf("flat critique: verdict %q raw %s", b.Critique.Verdict(), b.Critique.Raw)
	}
	c, _ := s.Load("c")
	if len(c.Invalid) != 1 || !strings.Contains(c.Invalid[0], "plan.jsonl:4") {
		t.Errorf("sample c Invalid = %v", c.Invalid)
	}
	d, _ := s.Load("d")
	if len(d.Missing) != 2 || !strings.Contains(d.Missing[1], "output_text null") || d.Critique.Verdict() != "failed" {
		t.Errorf("sample d: missing %v verdict %q", d.Missing, d.Critique.Verdict())
	}
	var none *CritiqueRecord
	if none.Verdict() != "missing" {
		t.Error("a sample with no critique must count as missing")
	}
}

func TestOpenUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(Paths{Plan: filepath.Join(dir, "nope.jsonl"), Drafts: dir})
	if err == nil || !strings.Contains(err.Error(), "nope.jsonl") || !strings.Contains(err.Error(), "check the path") {
		t.Fatalf("err = %v", err)
	}
	plan := write(t, dir, "p.jsonl", "")
	_, err = Open(Paths{Plan: plan, Drafts: dir})
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("err = %v", err)
	}
}
