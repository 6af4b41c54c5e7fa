package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine/cache"
)

// cachePath is the cache a command uses: cache.path from the layered
// config, else the user's shared cache.
func cachePath(l *loaded) (string, error) {
	if l.cfg.Cache.Path != "" {
		return l.cfg.Cache.Path, nil
	}
	return cache.DefaultPath()
}

// openCache opens the configured cache, wording the errors a user can act
// on; forRun: for a run, which can also do without it (--no-cache).
func openCache(path string, opt cache.Options, forRun bool) (*cache.Cache, error) {
	c, err := cache.Open(path, opt)
	orNoCache := ""
	if forRun {
		orNoCache = ", or --no-cache"
	}
	switch {
	case errors.Is(err, cache.ErrNotCache):
		return nil, fmt.Errorf("%w\n  if it is the cache of an older pgrules, import its answers with `pgrules cache merge %s NEW.db` and use NEW.db (or the default, shared cache)", err, path)
	case errors.Is(err, cache.ErrDamaged):
		if !forRun {
			return nil, fmt.Errorf("%w\n  move it aside (mv %s %s.damaged): the next run starts a new cache there and asks again for the answers it held", err, path, path)
		}
		return nil, fmt.Errorf("%w\n  move it aside (mv %s %s.damaged) and rerun: the answers it held are asked for again; or run with --no-cache", err, path, path)
	case err != nil && isDir(path):
		// SQLite words it "unable to open database file" or, opening
		// read-only, "disk I/O error".
		return nil, fmt.Errorf("%w\n  %s is a directory: pass --cache-path (cache.path) with a file in it%s", err, path, orNoCache)
	case err != nil && strings.Contains(err.Error(), "unable to open database file"):
		return nil, fmt.Errorf("%w\n  check that %s is a directory you can write to, or pass --cache-path (cache.path) with another file%s", err, filepath.Dir(path), orNoCache)
	}
	return c, err
}

// confirm asks on a terminal whether to remove what; elsewhere it refuses
// without --yes. false with a nil error: the user said no.
func confirm(cmd *cobra.Command, command, what string) (bool, error) {
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !isatty.IsTerminal(in.Fd()) {
		return false, usageErr(fmt.Errorf("%s would remove %s: pass --yes to confirm", command, what))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "remove %s? [y/N] ", what)
	answer, _ := bufio.NewReader(in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		fmt.Fprintln(cmd.ErrOrStderr(), "nothing removed")
		return false, nil
	}
	return true, nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func newCacheCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect, prune, merge or empty the response cache (what makes re-gating free)",
		Long: `Teacher answers are kept in one cache per user, shared by every out dir:
<user cache dir>/pgrules/cache.db (~/.cache/pgrules/cache.db on Linux), or
cache.path / --cache-path / PGRULES_CACHE__PATH.`,
	}
	cmd.PersistentFlags().String("cache-path", "", "the cache file (default: cache.path of the config, else the shared cache in the user's cache dir)")
	// openFor opens the cache the command's flags and config name.
	openFor := func(cmd *cobra.Command, opt cache.Options) (*cache.Cache, error) {
		l, err := loadFor(cmd)
		if err != nil {
			return nil, usageErr(err)
		}
		path, err := cachePath(l)
		if err != nil {
			return nil, err
		}
		return openCache(path, opt, false)
	}
	var asJSON bool
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Entries, size, providers and models, and the tokens and cost a re-gate saves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openFor(cmd, cache.Options{ReadOnly: true})
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
				return writeJSON(out, s)
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
			if s.Oldest != nil {
				fmt.Fprintf(out, "stored:   %s .. %s\n", s.Oldest.Format(time.DateOnly), s.Newest.Format(time.DateOnly))
			}
			if s.Memos > 0 {
				fmt.Fprintf(out, "memos:    %d (%.1f MB: input indexes and prompt keys that speed up reruns)\n", s.Memos, float64(s.MemoBytes)/1e6)
			}
			// "$0.0000" for answers whose cost no one reported would read
			// as free; the run's own line says "not reported" too.
			switch {
			case s.CostReported == 0:
				fmt.Fprintf(out, "a rerun from this cache saves %d tokens and %.0fs of teacher time; their cost was not reported\n", s.Tokens, s.LatencyTotal)
			case s.CostReported < s.Entries:
				fmt.Fprintf(out, "a rerun from this cache saves %d tokens, $%.4f (the cost of the %d of %d answers that report one) and %.0fs of teacher time\n", s.Tokens, s.CostUSD, s.CostReported, s.Entries, s.LatencyTotal)
			default:
				fmt.Fprintf(out, "a rerun from this cache saves %d tokens, $%.4f and %.0fs of teacher time\n", s.Tokens, s.CostUSD, s.LatencyTotal)
			}
			return nil
		},
	}
	stats.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var yes bool
	clear := &cobra.Command{
		Use:   "clear",
		Short: "Remove every cached answer (the next run pays for every call again)",
		Long: `Remove every cached answer. The cache is shared by every out dir and
its answers were paid for, so clear asks first on a terminal, and
elsewhere (a script, CI) wants --yes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openFor(cmd, cache.Options{})
			if err != nil {
				return err
			}
			defer c.Close()
			if !yes {
				st, err := c.Stats()
				if err != nil {
					return err
				}
				what := fmt.Sprintf("%d cached answer(s) from %s, which every out dir shares (%d tokens, $%.4f and %.0fs of teacher time to ask again)", st.Entries, c.Path(), st.Tokens, st.CostUSD, st.LatencyTotal)
				if st.Entries > 0 {
					if ok, err := confirm(cmd, "cache clear", what); !ok {
						return err
					}
				}
			}
			n, err := c.Clear()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d cached answers from %s\n", n, c.Path())
			return nil
		},
	}
	clear.Flags().BoolVar(&yes, "yes", false, "remove without asking")
	var olderThan string
	prune := &cobra.Command{
		Use:   "prune --older-than AGE",
		Short: "Remove the answers stored longer ago than AGE (e.g. 30d, 2w, 36h)",
		Long: `Remove the answers stored longer ago than AGE (e.g. 30d, 2w, 36h). When
that is more than half the cache, prune asks first on a terminal, and
elsewhere wants --yes, as clear does: a slip of the age (0d for 90d)
would remove answers every out dir shares and that were paid for.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			age, err := parseAge(olderThan)
			if err != nil {
				return usageErr(fmt.Errorf("--older-than %q: %w", olderThan, err))
			}
			c, err := openFor(cmd, cache.Options{})
			if err != nil {
				return err
			}
			defer c.Close()
			before := time.Now().Add(-age)
			if !yes {
				// A slip of the age (0d for 90d) would remove answers every
				// out dir shares and that were paid for: most of the cache
				// is asked about, as clear is.
				st, err := c.Stats()
				if err != nil {
					return err
				}
				n, err := c.StoredBefore(before)
				if err != nil {
					return err
				}
				if n > 0 && 2*n > st.Entries {
					what := fmt.Sprintf("%d of the %d cached answer(s) from %s, which every out dir shares", n, st.Entries, c.Path())
					if ok, err := confirm(cmd, "cache prune --older-than "+olderThan, what); !ok {
						return err
					}
				}
			}
			n, err := c.Prune(before)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d answers stored more than %s ago from %s\n", n, olderThan, c.Path())
			return nil
		},
	}
	prune.Flags().StringVar(&olderThan, "older-than", "", "age of the answers to remove: a number with d (days), w (weeks) or a Go duration (36h)")
	prune.Flags().BoolVar(&yes, "yes", false, "remove without asking, even when that is most of the cache")
	_ = prune.MarkFlagRequired("older-than")
	merge := &cobra.Command{
		Use:   "merge SRC... DST",
		Short: "Copy the answers of other caches (shard caches, an older pgrules' per-out-dir cache.db) into DST",
		Long: `Copies every answer of each SRC that DST does not have yet into DST (created
if needed); answers DST has are kept. A SRC may be the per-out-dir bbolt
cache of an older pgrules. Use it to gather the caches of sharded runs so
that a later unsharded re-gate is free.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcs, dst := args[:len(args)-1], args[len(args)-1]
			c, err := openCache(dst, cache.Options{}, false)
			if err != nil {
				return err
			}
			defer c.Close()
			total := 0
			for _, src := range srcs {
				m, err := c.Merge(cmd.Context(), src)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d new answer(s)\n", src, m.Added)
				if m.Damaged > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d answer(s) left out: their bytes do not match their checksum (the file is damaged there); a run asks the teacher for them again\n", src, m.Damaged)
				}
				total += m.Added
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %d answer(s) into %s\n", total, dst)
			return nil
		},
	}
	var verifyJSON bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every cached answer against its checksum, and the file's structure",
		Long: `Reads every answer and checks it against the CRC-32C stored with it,
and has SQLite check the file's structure (PRAGMA quick_check). A run never
uses an answer that fails its checksum: it asks the teacher again (and
pays) and stores the new answer over it. verify tells beforehand how many
that would be. Exit 0 when nothing is damaged, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openFor(cmd, cache.Options{ReadOnly: true})
			if err != nil {
				return err
			}
			defer c.Close()
			v, err := c.Verify(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if verifyJSON {
				if err := writeJSON(out, v); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "%s: %d answer(s) read, %d damaged, %d without a checksum (stored by a pgrules before them); structure: %s\n", c.Path(), v.Answers, len(v.Damaged), v.Unchecked, v.Integrity)
				for _, k := range v.Damaged {
					fmt.Fprintf(out, "damaged: %s (a run asks the teacher for it again)\n", k)
				}
			}
			if len(v.Damaged) > 0 || v.Integrity != "ok" {
				return &exitError{code: exitFailed, err: errQuiet}
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&verifyJSON, "json", false, "print JSON")
	cmd.AddCommand(stats, clear, prune, merge, verify)
	return cmd
}

// parseAge reads 30d, 2w or a Go duration.
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, errors.New("want a number of days (30d), weeks (2w) or a duration (36h)")
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("want a number of days (30d), weeks (2w) or a duration (36h)")
	}
	return d, nil
}
