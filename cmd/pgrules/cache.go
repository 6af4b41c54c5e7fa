package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine/cache"
)

func newCacheCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect or empty the response cache (what makes re-gating free)",
	}
	cmd.PersistentFlags().String("out-dir", "out", "the run's out dir; the cache is <out-dir>/cache.db (default: out_dir of the config)")
	cmd.PersistentFlags().String("cache-path", "", "the cache file, when it is not in the out dir (default: cache.path of the config)")
	resolve := func(cmd *cobra.Command) (string, error) {
		l, err := loadFor(cmd)
		if err != nil {
			return "", usageErr(err)
		}
		if l.cfg.Cache.Path != "" {
			return l.cfg.Cache.Path, nil
		}
		return filepath.Join(l.cfg.OutDir, "cache.db"), nil
	}
	var asJSON bool
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Entries, size, providers and models, and the tokens and cost a re-gate saves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := resolve(cmd)
			if err != nil {
				return err
			}
			c, err := cache.Open(path, cache.Options{ReadOnly: true, Timeout: 5 * time.Second})
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := c.Stats()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			fmt.Fprintf(out, "cache:    %s (%.1f MB)\nentries:  %d\n", s.Path, float64(s.Bytes)/1e6, s.Entries)
			for _, k := range sortedKeys(s.ByProvider) {
				fmt.Fprintf(out, "provider: %-12s %d\n", k, s.ByProvider[k])
			}
			models := sortedKeys(s.ByModel)
			sort.Strings(models)
			for _, k := range models {
				fmt.Fprintf(out, "model:    %-32s %d\n", k, s.ByModel[k])
			}
			fmt.Fprintf(out, "a rerun from this cache saves %d tokens, $%.4f and %.0fs of teacher time\n", s.Tokens, s.CostUSD, s.LatencyTotal)
			return nil
		},
	}
	stats.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	clear := &cobra.Command{
		Use:   "clear",
		Short: "Remove every cached answer (the next run pays for every call again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := resolve(cmd)
			if err != nil {
				return err
			}
			c, err := cache.Open(path, cache.Options{ReadOnly: false, Timeout: 5 * time.Second})
			if err != nil {
				return err
			}
			defer c.Close()
			n, err := c.Clear()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d cached answers from %s\n", n, c.Path())
			return nil
		},
	}
	cmd.AddCommand(stats, clear)
	return cmd
}
