package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newLintCmd() *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "lint",
		Short: "Compile and type-check every gate; warn on unknown fields, unused and shadowed entries; show CEL costs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadFor(cmd)
			if err != nil {
				return usageErr(err)
			}
			rs, err := loadRules(l.cfg.Rules)
			if err != nil {
				return usageErr(err)
			}
			out := cmd.OutOrStdout()
			findings, costs := rs.Lint()
			warnings := 0
			for _, f := range findings {
				if f.Severity == "warning" {
					warnings++
				}
				fmt.Fprintln(out, f)
			}
			fmt.Fprintln(out, "estimated CEL cost per gate (when + expression; runtime limit per expression is 1000000):")
			for _, c := range costs {
				fmt.Fprintf(out, "  %-28s %d..%d\n", c.Gate, c.Min, c.Max)
			}
			fmt.Fprintf(out, "%s: %d gates compiled, %d warning(s)\n", rs.Path(), len(costs), warnings)
			if strict && warnings > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d lint warning(s)", warnings)}
			}
			return nil
		},
	}
	cmd.Flags().String("rules", "gates.yaml", "the gates file to check (default: rules of the config)")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 when there are warnings")
	return cmd
}
