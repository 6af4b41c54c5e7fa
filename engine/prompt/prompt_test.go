package prompt

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgrules/pgrules"
)

func TestShippedTemplateRenders(t *testing.T) {
	tmpl, err := Load(pgrules.Defaults, "prompts/refine.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := tmpl.Render(Fields{
		Prompt: "PROMPT {payload_type}", DraftOutput: "DRAFT", PayloadType: "itinerary",
		CritiqueJSON:        json.RawMessage(`{"verdict":"revise","issues":[]}`),
		RewriteInstructions: []string{"Add verification", " ", "Cite sources"},
	})
	for _, want := range []string{"PROMPT {payload_type}", "DRAFT", "\"verdict\": \"revise\"", "1. Add verification\n2. Cite sources", `"payload_type": "itinerary"`} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered prompt lacks %q", want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	all := "{prompt}{draft_output}{critique_json}{rewrite_instructions}{payload_type}"
	if _, err := Parse("t.txt", all+` {"json": "example"}`); err != nil {
		t.Errorf("JSON braces are not placeholders: %v", err)
	}
	_, err := Parse("t.txt", all+"\nline two {draft}")
	if err == nil || !strings.Contains(err.Error(), "t.txt:2:10: unknown placeholder {draft} (known: {prompt}, {draft_output},") {
		t.Errorf("err = %v", err)
	}
	_, err = Parse("t.txt", all+"\n{draft_ouput}")
	if err == nil || !strings.Contains(err.Error(), "t.txt:2:1: unknown placeholder {draft_ouput}; did you mean {draft_output}?") {
		t.Errorf("err = %v", err)
	}
	_, err = Parse("t.txt", "{prompt}")
	if err == nil || !strings.Contains(err.Error(), "{draft_output} is never used") {
		t.Errorf("err = %v", err)
	}
}
