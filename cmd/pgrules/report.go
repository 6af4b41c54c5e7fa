package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine/report"
	"github.com/pgrules/pgrules/rules"
)

// ReportFile is the page `run --report` writes into the out dir.
const ReportFile = "report.html"

func newReportCmd() *cobra.Command {
	var compare, outPath string
	var maxSamples int
	cmd := &cobra.Command{
		Use:   "report [OUT_DIR]",
		Short: "Write one self-contained HTML page of a run: funnel, gates, reasons, teacher, changes and a sample browser",
		Long: `Reads the committed outputs of OUT_DIR (default: out_dir of the config) and
writes one HTML file that works offline: every script and style is inside
it and it makes no request. It holds the funnel from input ids to accepted
samples with each loss labelled by its reason, gate pass rates, rejection
reasons by payload type, category and difficulty, shadow gates, the
teacher's calls and latency, input problems, the changes since the previous
run (or against --compare), and a browser of samples: a capped set, the
first few of each decision, reason and category, each with its answer,
gates and keyword hits (the current rules', as pgrules explain shows them).`,
		Example: `  pgrules report                       # out/report.html from out/
  pgrules report preview --compare out -o preview.html
  pgrules run --report                 # the same, after each committed run`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, outDir, err := loadForOutDir(cmd, args)
			if err != nil {
				return usageErr(err)
			}
			if outPath == "" {
				outPath = filepath.Join(outDir, ReportFile)
			}
			rs, err := loadRules(l.cfg.Rules)
			if err != nil {
				return usageErr(err)
			}
			opt := report.Options{Rules: rs, Mode: rules.Mode(l.cfg.GatingMode), Compare: compare, MaxSamples: maxSamples}
			switch err := writeReport(cmd.Context(), outDir, outPath, opt); {
			case errors.Is(err, context.Canceled):
				return &exitError{code: exitInterrupted, err: fmt.Errorf("report interrupted: %s was not written", outPath)}
			case err != nil:
				return usageErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", outPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&compare, "compare", "", "another out dir to compare with (default: the changes since the previous run, from the manifest)")
	f.StringVarP(&outPath, "output", "o", "", "where to write the page (default: OUT_DIR/report.html)")
	f.IntVar(&maxSamples, "max-samples", 400, "records embedded in the sample browser (the rest are counted)")
	f.String("out-dir", "out", "the run's out dir when OUT_DIR is not given (default: out_dir of the config)")
	f.String("rules", "gates.yaml", "the gates file whose word lists find the keyword hits (default: rules of the config)")
	f.String("gating-mode", "lenient", "strict or lenient, to re-read the answers (default: gating_mode of the config)")
	return cmd
}

// writeReport builds the page and writes it, unless Ctrl-C came first.
func writeReport(ctx context.Context, outDir, path string, opt report.Options) error {
	d, err := report.Build(outDir, opt)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return report.WriteFile(path, d)
}
