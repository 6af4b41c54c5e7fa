package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/rules/ruletest"
)

func newTestRulesCmd() *cobra.Command {
	var runRE, junit, format string
	var verbose, coverage bool
	var coverageMin float64
	cmd := &cobra.Command{
		Use:   "test-rules [paths...]",
		Short: "Run the YAML test cases of gates.yaml (default: testdata/rules)",
		Long: `Runs rule test cases: each gives the sample fields, the teacher's raw text
or a response object, the gating mode and the expected outcome. Output is in
the style of go test, or --format json|junit|sarif|github (a failed case is
reported at its file:line; load errors come out in the same format). Exit 1
when a case fails, 2 when the rules or a case file do not load (with
file:line:col).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return usageErr(err)
			}
			text := format == "text"
			// A machine format owns stdout: load errors come out in it too.
			loadFailed := func(err error) error {
				if text {
					return usageErr(err)
				}
				if werr := writeDiagnostics(cmd.OutOrStdout(), format, "test-rules", loadDiagnostics(err), testRuleDocs, map[string]any{"loaded": false}); werr != nil {
					return werr
				}
				return &exitError{code: exitUsage, err: errQuiet}
			}
			if len(args) == 0 {
				args = []string{"testdata/rules"}
			}
			var filter *regexp.Regexp
			if runRE != "" {
				var err error
				if filter, err = regexp.Compile(runRE); err != nil {
					return usageErr(fmt.Errorf("--run %q: %w", runRE, err))
				}
			}
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			rs, err := loadRules(l.cfg.Rules)
			if err != nil {
				return loadFailed(err)
			}
			files, err := ruletest.Collect(args)
			if err != nil {
				return usageErr(err)
			}
			var cases []ruletest.Case
			for _, f := range files {
				cs, err := ruletest.LoadFile(f)
				if err != nil {
					return loadFailed(err)
				}
				cases = append(cases, cs...)
			}
			out := cmd.OutOrStdout()
			if !text {
				out = io.Discard // the report below replaces the go test-style lines
			}
			cov := ruletest.NewCoverage(rs)
			var results []ruletest.Result
			failed := 0
			start := time.Now()
			for _, c := range cases {
				if filter != nil && !filter.MatchString(c.Name) {
					continue
				}
				t0 := time.Now()
				r := ruletest.Run(rs, c)
				cov.Add(r.Decision)
				results = append(results, r)
				took := time.Since(t0).Seconds()
				if verbose {
					fmt.Fprintf(out, "=== RUN   %s\n", c.Name)
				}
				if r.Passed() {
					if verbose {
						fmt.Fprintf(out, "--- PASS: %s (%.3fs)\n", c.Name, took)
					}
					continue
				}
				failed++
				fmt.Fprintf(out, "--- FAIL: %s (%.3fs)\n    %s:%d\n", c.Name, took, c.File, c.Line)
				for _, f := range r.Failures {
					fmt.Fprintf(out, "    %s\n", f)
				}
			}
			diags := caseDiagnostics(results)
			if junit != "" {
				f, err := os.Create(junit)
				if err != nil {
					return usageErr(fmt.Errorf("--junit %s: %w", junit, err))
				}
				err = writeDiagJUnit(f, "test-rules", diags)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
			}
			if !text {
				summary := map[string]any{"rules": rs.Path(), "cases": len(results), "failed": failed, "coverage_percent": cov.Percent()}
				if err := writeDiagnostics(cmd.OutOrStdout(), format, "test-rules", diags, testRuleDocs, summary); err != nil {
					return err
				}
			}
			if coverage || cmd.Flags().Changed("coverage-min") {
				cov.Report(out)
			}
			status := "ok"
			if failed > 0 {
				status = "FAIL"
			}
			fmt.Fprintf(out, "%s\t%s\t%d cases, %d failed (%.3fs)\n", status, rs.Path(), len(results), failed, time.Since(start).Seconds())
			fmt.Fprintf(out, "%d passed, %d failed\n", len(results)-failed, failed)
			if failed > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d rule cases failed", failed, len(results))}
			}
			if len(results) == 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("no rule cases ran (files: %v, --run %q)", files, runRE)}
			}
			if p := cov.Percent(); cmd.Flags().Changed("coverage-min") && p < coverageMin {
				return &exitError{code: exitFailed, err: fmt.Errorf("coverage %s%% is below --coverage-min %v%%", ruletest.Floor1(p), coverageMin)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("rules", "gates.yaml", "the gates file under test (default: rules of the config)")
	f.StringVar(&runRE, "run", "", "run only cases whose name matches this regular expression")
	f.BoolVarP(&verbose, "verbose", "v", false, "print every case, not only failures")
	f.StringVar(&junit, "junit", "", "also write a JUnit XML report to this file")
	f.StringVar(&format, "format", "text", "text (go test style), json, junit, sarif or github")
	f.BoolVar(&coverage, "coverage", false, "report which gate outcomes and list entries the cases exercised")
	f.Float64Var(&coverageMin, "coverage-min", 0, "fail when coverage is below this percentage")
	return cmd
}

var testRuleDocs = map[string]string{
	"case":       "a rule test case: an error when its expectation does not hold",
	"load-error": "gates.yaml or a case file does not load",
}

// caseDiagnostics: one per case, failed ones at the case's file:line.
func caseDiagnostics(results []ruletest.Result) []diagnostic {
	var out []diagnostic
	for _, r := range results {
		d := diagnostic{Rule: "case", Severity: "error", File: r.Case.File, Line: r.Case.Line, Name: r.Case.Name, Passed: r.Passed()}
		if d.Passed {
			d.Severity, d.Message = "info", "passed"
		} else {
			d.Message = strings.Join(r.Failures, "; ")
		}
		out = append(out, d)
	}
	return out
}
