package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine/export"
)

func newExportCmd() *cobra.Command {
	var dest, format, split, license, name, system string
	var seed int64
	var dropRepeats bool
	cmd := &cobra.Command{
		Use:   "export [OUT_DIR] -o DIR",
		Short: "Write the accepted records for training: Parquet, JSONL or chat messages, split by id hash, and a Hugging Face dataset card",
		Long: `Reads the committed accepted records of OUT_DIR (default: out_dir of the
config) and writes DIR/data/<split>-00000-of-00001.parquet (or .jsonl) for
each split, and DIR/README.md, a Hugging Face dataset card: YAML front
matter (configs and data_files per split, license, task_categories,
size_categories, the features) and the run's provenance from its manifest
(inputs', rules' and template's sha256, teacher plugin and models, gate
pass rates, rejections).

A record's split is a hash of --seed and its id, so an id stays in its
split in every export with that seed. Parquet keeps nested fields typed
(region_tags a list, teacher a struct with usage and fallbacks); response
and the gates' verdicts are JSON text. JSONL keeps the records' bytes.
Messages writes what chat fine-tuning reads (OpenAI's fine-tuning files,
Hugging Face TRL's conversational datasets): a line a record,
{"messages": [{"role": "user", "content": PROMPT}, {"role": "assistant",
"content": RESPONSE}]}, the response as the JSON text the dataset holds,
opened by --system-message when given.

--drop-repeats leaves out each record whose response repeats an earlier
one's byte for byte (what the run's stats list as duplicate_responses),
keeping the first in the dataset's order; the card says how many.

DIR is replaced whole (written beside it, then swapped in) when it is
empty or an earlier export; anything else is refused. The dataset must
match the sha256 in its manifest, or the card would not be true of it.`,
		Example: `  pgrules export -o hf/travel-guide
  pgrules export out -o hf/travel-guide --split train=0.9,validation=0.1 --seed 7 --license cc-by-4.0
  pgrules export out -o jsonl-splits --format jsonl --split train=0.8,validation=0.1,test=0.1
  pgrules export out -o sft --format messages --split train=0.95,validation=0.05`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, outDir, err := loadForOutDir(cmd, args)
			if err != nil {
				return usageErr(err)
			}
			if dest == "" {
				return usageErr(fmt.Errorf("-o DIR is required: where to write the export"))
			}
			if system != "" && format != "messages" {
				return usageErr(fmt.Errorf("--system-message opens the conversations of --format messages; with --format %s there are none", format))
			}
			splits, err := export.ParseSplits(split)
			if err != nil {
				return usageErr(exportHint(err))
			}
			res, err := export.Run(cmd.Context(), export.Options{OutDir: outDir, Dest: dest, Format: format, SystemMessage: system, DropRepeats: dropRepeats, Splits: splits, Seed: seed, License: license, Name: name, Version: version})
			switch {
			case errors.Is(err, context.Canceled):
				return &exitError{code: exitInterrupted, err: fmt.Errorf("export interrupted: nothing was written, %s is as it was", dest)}
			case err != nil:
				return usageErr(exportHint(err))
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "exported %d accepted records from %s to %s:\n", res.Total, outDir, dest)
			for i, s := range splits {
				fmt.Fprintf(w, "  %-12s %6d  %s\n", s.Name, res.Counts[s.Name], res.Files[i])
			}
			if dropRepeats {
				fmt.Fprintf(w, "  left out %d record(s) whose response repeats an earlier one's (--drop-repeats)\n", res.Dropped)
			}
			fmt.Fprintf(w, "  dataset card: %s/README.md\n", dest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&dest, "output", "o", "", "directory to write (required)")
	f.StringVar(&format, "format", "parquet", "parquet, jsonl (the records' lines) or messages (chat fine-tuning: {\"messages\": [user: prompt, assistant: response]})")
	f.StringVar(&system, "system-message", "", "with --format messages: a system turn to open every conversation")
	f.BoolVar(&dropRepeats, "drop-repeats", false, "leave out each record whose response repeats an earlier one's byte for byte (the run's duplicate_responses), keeping the first")
	f.StringVar(&split, "split", "train=1", "splits and their shares, e.g. train=0.9,validation=0.1")
	f.Int64Var(&seed, "seed", 0, "seed of the split hash")
	f.StringVar(&license, "license", "unknown", "license id for the dataset card (Hugging Face's list, e.g. cc-by-4.0)")
	f.StringVar(&name, "name", "", "title of the dataset card")
	f.String("out-dir", "out", "the run's out dir when OUT_DIR is not given (default: out_dir of the config)")
	return cmd
}

// exportHint words the export's errors in terms of this command's flags.
func exportHint(err error) error {
	var (
		se *export.SplitsError
		fe *export.FormatError
		ne *export.NotAnExportError
		no *export.NoOutputsError
	)
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("--split %q: %s", se.Spec, se.Msg)
	case errors.As(err, &fe):
		return fmt.Errorf("--format %q: use parquet, jsonl or messages", fe.Format)
	case errors.As(err, &ne):
		return fmt.Errorf("%w: pick another -o, or empty it", err)
	case errors.As(err, &no):
		return fmt.Errorf("%w: run pgrules run first, or name the out dir that holds them", err)
	}
	return err
}
