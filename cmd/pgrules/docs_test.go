package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/pgrules/pgrules/engine/judge"
	"github.com/pgrules/pgrules/rules"
)

// The README promises that every reason code a record can carry is in its
// "Reason codes" table: the codes pgrules decides itself, and those of
// the default gates.yaml (a literal reason, or a string a
// reasonExpression can return). A code added in either place without a
// row fails here.
func TestEveryReasonCodeIsDocumented(t *testing.T) {
	readme := string(must(os.ReadFile("../../README.md")))
	start := strings.Index(readme, "### Reason codes")
	if start < 0 {
		t.Fatal(`README.md has no "### Reason codes" section`)
	}
	table := readme[start:]
	if end := strings.Index(table[1:], "\n## "); end >= 0 {
		table = table[:end+1]
	}

	codes := []string{judge.ReasonMissingInputs, judge.ReasonInvalidInput, judge.ReasonCritiqueReject,
		judge.ReasonTeacherError, judge.ReasonNoCachedAnswer, rules.ReasonGateError}
	var gates struct {
		Gates []struct {
			Name             string `yaml:"name"`
			Reason           string `yaml:"reason"`
			ReasonExpression string `yaml:"reasonExpression"`
		} `yaml:"gates"`
	}
	if err := yaml.Unmarshal(must(os.ReadFile("../../gates.yaml")), &gates); err != nil {
		t.Fatal(err)
	}
	literal := regexp.MustCompile(`"([a-z_]+)"`)
	for _, g := range gates.Gates {
		if g.Reason != "" {
			codes = append(codes, g.Reason)
		}
		for _, m := range literal.FindAllStringSubmatch(g.ReasonExpression, -1) {
			codes = append(codes, m[1])
		}
		if g.Reason == "" && g.ReasonExpression == "" {
			t.Errorf("gate %s has no reason: its failures would carry a code nobody wrote down", g.Name)
		}
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d codes (%v): the gates.yaml layout changed under this test", len(codes), codes)
	}
	for _, c := range codes {
		if !strings.Contains(table, "| `"+c+"` |") {
			t.Errorf("reason code %q has no row in README.md's Reason codes table", c)
		}
	}
	if !strings.Contains(table, rules.ReasonNotEvaluated) {
		t.Errorf("%q (a skipped gate's code) is not explained under Reason codes", rules.ReasonNotEvaluated)
	}
}

// Every flag of `pgrules run` is in the README's flags table (or named in
// its text): a flag added without a word for users fails here.
func TestEveryRunFlagIsDocumented(t *testing.T) {
	readme := string(must(os.ReadFile("../../README.md")))
	n := 0
	newRunCmd().Flags().VisitAll(func(f *pflag.Flag) {
		n++
		if f.Hidden || f.Name == "help" {
			return
		}
		if !strings.Contains(readme, "`--"+f.Name) {
			t.Errorf("--%s is not in README.md", f.Name)
		}
	})
	if n < 20 {
		t.Fatalf("only %d flags seen: the run command changed under this test", n)
	}
}

// Every command and subcommand is named in the README: a command added
// without a word for users fails here.
func TestEveryCommandIsDocumented(t *testing.T) {
	readme := string(must(os.ReadFile("../../README.md")))
	n := 0
	var walk func(c *cobra.Command, path string)
	walk = func(c *cobra.Command, path string) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			p := path + " " + sub.Name()
			n++
			if !strings.Contains(readme, p) {
				t.Errorf("%q is not in README.md", p)
			}
			walk(sub, p)
		}
	}
	walk(newRootCmd(io.Discard, io.Discard), "pgrules")
	if n < 15 {
		t.Fatalf("only %d commands seen: the command tree changed under this test", n)
	}
}

// Every lint rule id a finding can carry is named in the README.
func TestEveryLintRuleIsDocumented(t *testing.T) {
	readme := string(must(os.ReadFile("../../README.md")))
	for id := range rules.LintRules {
		if !strings.Contains(readme, "`"+id+"`") {
			t.Errorf("lint rule %q is not in README.md", id)
		}
	}
}
