package yamlmsg

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestExplain(t *testing.T) {
	type doc struct {
		Codes  []string `yaml:"reason_codes"`
		Passed *bool    `yaml:"passed"`
		Tags   []string `yaml:"region_tags"`
		N      int      `yaml:"n"`
		Sub    struct {
			A string `yaml:"a"`
		} `yaml:"sub"`
		Items []struct {
			A int `yaml:"a"`
		} `yaml:"items"`
	}
	src := "reason_codes: parse_failed_because_of_a_long_reason\npassed: maybe\nregion_tags: {a: 1}\nn: [1]\nsub: [x]\nitems:\n  - {a: [1]}\n"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	var d doc
	ps, ok := Explain(&root, "", root.Decode(&d))
	want := []Problem{
		{1, 15, `reason_codes: expected a list ([a, b] or one "- item" a line), got the text "parse_failed_because_of_a_long_reason"`},
		{2, 9, `passed: expected true or false, got the text "maybe"`},
		{3, 14, `region_tags: expected a list ([a, b] or one "- item" a line), got a mapping`},
		{4, 4, `n: expected a whole number, got a list`},
		{5, 6, `sub: expected a mapping (key: value), got a list`},
		{7, 9, `items[0].a: expected a whole number, got a list`},
	}
	if !ok || len(ps) != len(want) {
		t.Fatalf("Explain = %+v, %v", ps, ok)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("problem %d = %+v\nwant %+v", i, ps[i], want[i])
		}
	}
	if _, ok := Explain(&root, "", yaml.Unmarshal([]byte("a: [\n"), &d)); ok {
		t.Error("a syntax error explained as a value of the wrong kind")
	}
}
