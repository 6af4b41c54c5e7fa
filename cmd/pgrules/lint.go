package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/rules"
)

func newLintCmd() *cobra.Command {
	var strict bool
	var format string
	cmd := &cobra.Command{
		Use:   "lint [GATES_FILE]",
		Short: "Compile and type-check every gate; warn on unknown fields, unused and shadowed entries; show CEL costs",
		Long: `Compiles gates.yaml, or GATES_FILE (the same as --rules), with every error
at file:line:col, and reports what compiles
but is likely a mistake: unused variables and lists, duplicate entries,
entries an exception cancels, phrases a shorter entry shadows. Exit 0 when
it compiles (1 with --strict and a warning), 2 when it does not.

--format text|json|junit|sarif|github: json for scripts, junit for CI test
reports, sarif for code scanning, github for workflow annotations
(::error file=gates.yaml,line=12,col=5::...). Compile errors come out in the
same format.`,
		Example: `  pgrules lint --strict
  pgrules lint experiments/gates.yaml
  pgrules lint --format github          # in a GitHub Actions step
  pgrules lint --format sarif > lint.sarif`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return usageErr(err)
			}
			if len(args) == 1 && cmd.Flags().Changed("rules") {
				return usageErr(fmt.Errorf("the gates file is given twice (%s and --rules): give one", args[0]))
			}
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			if len(args) == 1 {
				l.cfg.Rules = args[0]
			}
			out := cmd.OutOrStdout()
			rs, err := loadRules(l.cfg.Rules)
			if err != nil {
				if format == "text" {
					return usageErr(err)
				}
				diags := loadDiagnostics(err)
				if werr := writeDiagnostics(out, format, "lint", diags, map[string]string{"load-error": "gates.yaml does not load: YAML, schema, or CEL compile error"},
					map[string]any{"rules": l.cfg.Rules, "compiled": false, "errors": len(diags)}); werr != nil {
					return werr
				}
				return &exitError{code: exitUsage, err: errQuiet}
			}
			findings, costs := rs.Lint()
			warnings := 0
			var diags []diagnostic
			for _, f := range findings {
				if f.Severity == "warning" {
					warnings++
				}
				diags = append(diags, diagnostic{Severity: f.Severity, Rule: f.Rule, File: f.Pos.File, Line: f.Pos.Line, Col: f.Pos.Col, Message: f.Msg})
			}
			if format != "text" {
				type cost struct {
					Gate string `json:"gate"`
					Min  uint64 `json:"min"`
					Max  uint64 `json:"max"`
				}
				var cs []cost
				for _, c := range costs {
					cs = append(cs, cost{c.Gate, c.Min, c.Max})
				}
				if err := writeDiagnostics(out, format, "lint", diags, rules.LintRules,
					map[string]any{"rules": rs.Path(), "compiled": true, "gates": len(costs), "warnings": warnings, "cel_cost": cs}); err != nil {
					return err
				}
			} else {
				for _, f := range findings {
					fmt.Fprintln(out, f)
				}
				fmt.Fprintln(out, "estimated CEL cost per gate (when + expression; runtime limit per expression is 1000000):")
				for _, c := range costs {
					fmt.Fprintf(out, "  %-28s %d..%d\n", c.Gate, c.Min, c.Max)
				}
				fmt.Fprintf(out, "%s: %d gates compiled, %d warning(s)\n", rs.Path(), len(costs), warnings)
			}
			if strict && warnings > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d lint warning(s)", warnings)}
			}
			return nil
		},
	}
	cmd.Flags().String("rules", "gates.yaml", "the gates file to check (default: rules of the config)")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 when there are warnings")
	cmd.Flags().StringVar(&format, "format", "text", "text, json, junit, sarif or github")
	return cmd
}
