package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/rules/ruletest"
)

func newTestRulesCmd() *cobra.Command {
	var runRE, junit string
	var verbose, coverage bool
	var coverageMin float64
	cmd := &cobra.Command{
		Use:   "test-rules [paths...]",
		Short: "Run the YAML test cases of gates.yaml (default: testdata/rules)",
		Long: `Runs rule test cases: each gives the sample fields, the teacher's raw text
or a response object, the gating mode and the expected outcome. Output is in
the style of go test. Exit 1 when a case fails, 2 when the rules or a case
file do not load (with file:line:col).`,
		RunE: func(cmd *cobra.Command, args []string) error {
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
				return usageErr(err)
			}
			files, err := ruletest.Collect(args)
			if err != nil {
				return usageErr(err)
			}
			var cases []ruletest.Case
			for _, f := range files {
				cs, err := ruletest.LoadFile(f)
				if err != nil {
					return usageErr(err)
				}
				cases = append(cases, cs...)
			}
			out := cmd.OutOrStdout()
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
			if junit != "" {
				if err := writeJUnit(junit, results, time.Since(start)); err != nil {
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
	f.StringVar(&junit, "junit", "", "write a JUnit XML report to this file")
	f.BoolVar(&coverage, "coverage", false, "report which gate outcomes and list entries the cases exercised")
	f.Float64Var(&coverageMin, "coverage-min", 0, "fail when coverage is below this percentage")
	return cmd
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(path string, results []ruletest.Result, took time.Duration) error {
	s := junitSuite{Name: "pgrules test-rules", Tests: len(results), Time: fmt.Sprintf("%.3f", took.Seconds())}
	for _, r := range results {
		jc := junitCase{Name: r.Case.Name, Classname: r.Case.File}
		if !r.Passed() {
			s.Failures++
			text := ""
			for _, f := range r.Failures {
				text += f + "\n"
			}
			jc.Failure = &junitFailure{Message: fmt.Sprintf("%s:%d", r.Case.File, r.Case.Line), Text: text}
		}
		s.Cases = append(s.Cases, jc)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--junit %s: %w", path, err)
	}
	defer f.Close()
	io.WriteString(f, xml.Header)
	enc := xml.NewEncoder(f)
	enc.Indent("", "  ")
	return enc.Encode(s)
}
