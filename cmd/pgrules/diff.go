package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine/changes"
)

func newDiffCmd() *cobra.Command {
	var format string
	var limit int
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare the outputs of two out dirs: ids that moved and why, gate pass rates, reasons, and what differs in inputs, rules, template and plugin",
		Long: `Compares the committed outputs of out dirs A and B — typically a run and a
preview of an edited gates.yaml (pgrules run --offline --rules new.yaml
--out-dir preview). Exit 0 when they are the same (the same decisions from
the same inputs, rules, template and plugin), 1 when they differ, as diff
does; 2 when one cannot be read.`,
		Example: `  pgrules run --offline --rules new-gates.yaml --out-dir preview
  pgrules diff out preview
  pgrules diff out preview --format json | jq '.changes.newly_rejected'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageErr(fmt.Errorf("--format %q: use text or json", format))
			}
			r, err := changes.CompareDirs(args[0], args[1])
			if err != nil {
				return usageErr(err)
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				if err := writeJSON(out, r); err != nil {
					return err
				}
			} else {
				printDiff(out, r, limit)
			}
			if r.Different {
				return &exitError{code: exitFailed, err: errQuiet}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, or json (every id of every group)")
	cmd.Flags().IntVar(&limit, "limit", 10, "ids shown per group in text (json shows all)")
	return cmd
}

// errQuiet ends a command with its exit code and nothing more to say: the
// output said it.
var errQuiet = errors.New("")

func printDiff(w io.Writer, r *changes.Report, limit int) {
	c := r.Changes
	fmt.Fprintf(w, "%s → %s\n", r.A, r.B)
	printChanges(w, c, limit)
	if len(r.Gates) > 0 {
		fmt.Fprintln(w, "\ngate pass rates:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  gate\t%s\t%s\tchange\n", r.A, r.B)
		for _, g := range r.Gates {
			fmt.Fprintf(tw, "  %s\t%.2f%%\t%.2f%%\t%+.2f pt\n", g.Gate, 100*g.A, 100*g.B, 100*g.Delta)
		}
		tw.Flush()
	}
	if len(r.Reasons) > 0 {
		fmt.Fprintln(w, "\nrejection reasons:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  reason\t%s\t%s\tchange\n", r.A, r.B)
		for _, x := range r.Reasons {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%+d\n", x.Reason, x.A, x.B, x.B-x.A)
		}
		tw.Flush()
	}
	if r.Different {
		fmt.Fprintln(w, "\ndifferent")
	} else {
		fmt.Fprintln(w, "\nthe same decisions from the same inputs, rules, template and plugin")
	}
}

// printChanges is the comparison in words: what moved by reason with the
// ids, other reason changes, ids that came or went, files that differ.
// limit caps the ids shown per group (0: all).
func printChanges(w io.Writer, c changes.Changes, limit int) {
	fmt.Fprintf(w, "%d moved, %d rejected for other reasons, %d unchanged, %d new, %d gone\n", c.Moved(), len(c.ReasonChanged), c.Unchanged, len(c.New), len(c.Gone))
	group := func(title string, m map[string][]string) {
		for _, reason := range sortedKeys(m) {
			fmt.Fprintf(w, "  %s %-36s %5d  %s\n", title, reason, len(m[reason]), idList(m[reason], limit))
		}
	}
	group("now rejected:", c.NewlyRejected)
	group("now accepted, was", c.NewlyAccepted)
	if len(c.ReasonChanged) > 0 {
		var lines []string
		for _, rc := range c.ReasonChanged {
			lines = append(lines, fmt.Sprintf("%s (%s → %s)", rc.ID, strings.Join(rc.Before, ","), strings.Join(rc.After, ",")))
		}
		fmt.Fprintf(w, "  rejected for other reasons: %s\n", idList(lines, limit))
	}
	if len(c.New) > 0 {
		fmt.Fprintf(w, "  new: %s\n", idList(c.New, limit))
	}
	if len(c.Gone) > 0 {
		fmt.Fprintf(w, "  gone: %s\n", idList(c.Gone, limit))
	}
	for _, f := range c.FilesChanged {
		switch {
		case f.Kind == "gating_mode" || f.Kind == "pgrules":
			fmt.Fprintf(w, "  changed: %s (%s → %s)\n", f.Name, f.Before, f.After)
		case f.Before == "":
			fmt.Fprintf(w, "  changed: %s %s (new)\n", f.Kind, f.Name)
		case f.After == "":
			fmt.Fprintf(w, "  changed: %s %s (gone)\n", f.Kind, f.Name)
		default:
			fmt.Fprintf(w, "  changed: %s %s (sha256 %.12s… → %.12s…)\n", f.Kind, f.Name, f.Before, f.After)
		}
	}
}

func idList(ids []string, limit int) string {
	shown := ids
	if limit > 0 && len(shown) > limit {
		shown = shown[:limit]
	}
	s := strings.Join(shown, " ")
	if len(ids) > len(shown) {
		s += fmt.Sprintf(" (+%d more)", len(ids)-len(shown))
	}
	return s
}
