package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/rules"
)

func newEvalCmd() *cobra.Command {
	var rawPath, id, payloadType string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval EXPRESSION (--raw ANSWER | --id ID)",
		Short: "Evaluate one CEL expression on one answer, in the gates' environment; print its value and type",
		Long: `Compiles EXPRESSION exactly as a gate of --rules is compiled — the same
variables (response, sample, contract, hits, variables.*), functions,
schema field checks and cost limit — and evaluates it on one teacher
answer: a file (--raw) or a sample of a run (--id, from --out-dir). It
prints the value as JSON and its type, like opa eval: the quickest way to
try a gate before it goes into gates.yaml.

A compile error is reported at <expression>:1:COL with the expression and a
caret (exit 2); an evaluation error exits 1.`,
		Example: `  pgrules eval 'size(hits.overconfidence)' --raw answer.json --payload-type checklist
  pgrules eval 'hits.time_sensitive.map(h, h.term)' --id v1_checklist_safety_0001
  pgrules eval 'response.verification_steps.exists(s, s.contains("embassy"))' --id v1_checklist_safety_0001 --out-dir out`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			expr := args[0]
			if (rawPath == "") == (id == "") {
				return usageErr(errors.New("give the answer to evaluate on: --raw FILE, or --id ID (a sample of the run in --out-dir)"))
			}
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			rs, err := loadRules(l.cfg.Rules)
			if err != nil {
				return usageErr(err)
			}
			raw, where, sample, err := findAnswer(id, l.cfg.OutDir, rawPath)
			if err != nil {
				return usageErr(err)
			}
			if payloadType != "" {
				sample.PayloadType = payloadType
			}
			v, err := rs.EvalExpr(expr, sample, raw, rules.Mode(l.cfg.GatingMode))
			var le *rules.LoadError
			if errors.As(err, &le) {
				return usageErr(errors.New(withCaret(expr, le, names(rs))))
			}
			if err != nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("evaluation error on the answer from %s: %w", where, err)}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, map[string]any{"expression": expr, "source": where, "value": v.Value, "type": v.Type, "runtime_type": v.RuntimeType})
			}
			b, err := json.Marshal(v.Value)
			if err != nil {
				return err
			}
			if len(b) > 100 {
				var ind bytes.Buffer
				_ = json.Indent(&ind, b, "", "  ")
				b = ind.Bytes()
			}
			t := v.Type
			if v.RuntimeType != "" && !strings.HasPrefix(t, v.RuntimeType) {
				t += " (value: " + v.RuntimeType + ")"
			}
			fmt.Fprintf(out, "%s\n: %s\n", b, t)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rawPath, "raw", "", "the teacher's answer, from this file")
	f.StringVar(&id, "id", "", "the answer of this sample in --out-dir")
	f.StringVar(&payloadType, "payload-type", "", "the payload type the plan asked for (default: the sample's)")
	f.BoolVar(&asJSON, "json", false, "print JSON: expression, source, value, type")
	f.String("out-dir", "out", "the run's out dir for --id (default: out_dir of the config)")
	f.String("rules", "gates.yaml", "the gates file whose environment to use (default: rules of the config)")
	f.String("gating-mode", "lenient", "strict or lenient (default: gating_mode of the config)")
	return cmd
}

// withCaret shows each compile error under the expression, as CEL does.
func withCaret(expr string, le *rules.LoadError, known []string) string {
	var b strings.Builder
	lines := strings.Split(expr, "\n")
	for i, p := range le.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s: %s", p.Pos, p.Msg)
		if p.Pos.Line >= 1 && p.Pos.Line <= len(lines) && p.Pos.Col >= 1 {
			fmt.Fprintf(&b, "\n  | %s\n  | %s^", lines[p.Pos.Line-1], strings.Repeat(".", p.Pos.Col-1))
		}
		if strings.Contains(p.Msg, "undeclared reference") {
			fmt.Fprintf(&b, "\n  the names a gate can use: %s", strings.Join(known, ", "))
		}
	}
	return b.String()
}

// names are the variables a gate can use with these rules.
func names(rs *rules.Rules) []string {
	var out []string
	for _, v := range rules.HostVariables() {
		out = append(out, v[0])
	}
	for _, l := range rs.Lists() {
		out = append(out, "hits."+l.Name)
	}
	for _, v := range rs.VariableNames() {
		out = append(out, "variables."+v)
	}
	return out
}
