// Command pgrules turns LLM drafts into a fine-tuning dataset: it refines
// each draft with a teacher model, checks the answer against declarative
// CEL gates and writes accepted and rejected records with reasons.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pgrules/pgrules/internal/suggest"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build), which works only on a variable without a computed initializer;
// when it is not, init takes what go build recorded (see buildVersion).
var version string

func init() {
	if version == "" {
		version = buildVersion("dev")
	}
}

// buildVersion is the module version `go install` recorded, else the git
// commit `go build` in a checkout recorded ("-dirty" with local changes),
// else def. The manifest records it, and a rerun names a change of it: a
// plain "dev" would hide every upgrade.
func buildVersion(def string) string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(bi, def)
}

func versionOf(bi *debug.BuildInfo, def string) string {
	if bi == nil {
		return def
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return def
	}
	rev = rev[:min(7, len(rev))]
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// Exit codes: scripts and CI tell a bad dataset run from bad input.
const (
	exitOK          = 0
	exitFailed      = 1 // the run or a test failed
	exitUsage       = 2 // bad flags, config, rules or template: nothing ran
	exitInterrupted = 130
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "pgrules",
		Short: "Refine LLM drafts into a fine-tuning dataset through declarative CEL quality gates",
		Long: `pgrules joins a prompt plan, drafts and critiques by id, asks a teacher LLM
(a go-plugin provider: openrouter, local or dryrun) to rewrite each draft,
checks the answer against JSON Schemas and the CEL gates in gates.yaml, and
writes dataset_v1.jsonl, dataset_v1_rejected.jsonl, stats and a manifest.

Edit gates.yaml and rerun: answers come from the response cache, so
re-gating costs no teacher call.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetGlobalNormalizationFunc(snakeToKebab)
	root.PersistentFlags().String("config", "", "config file (default ./pgrules.yaml when present); every command reads it, then PGRULES_* variables, then flags")
	root.SetFlagErrorFunc(flagError)
	for _, c := range subcommands() {
		root.AddCommand(c)
	}
	return root
}

func subcommands() []*cobra.Command {
	return []*cobra.Command{newRunCmd(), newTestRulesCmd(), newExplainCmd(), newLintCmd(), newProvidersCmd(), newCacheCmd(), newDiffCmd(), newReportCmd(), newPluginCmd(), newExportCmd(), newEvalCmd(), newMergeCmd()}
}

func main() {
	tuneGC()
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// tuneGC trades memory the run can spare for time: a re-gate allocates
// per sample and keeps little, so the default GOGC=100 spent a third of
// the CPU collecting. A soft limit keeps the heap bounded all the same
// (a run raises it above the per-id tables it must hold: see
// engine.Options.RoomAboveLiveHeap). The tables hold no pointers, so a
// collection costs a few milliseconds however many ids there are, and a
// small room is cheap: at a million ids, 64 MiB above 164 MB of tables
// collected ~13 times a second for 2 % of the CPU (gctrace). GOGC and GOMEMLIMIT,
// when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
		limitIsOurs = true
	}
}

const softMemoryLimit = 192 << 20

// limitIsOurs: the soft memory limit is tuneGC's, not the user's.
var limitIsOurs bool

// roomAboveLiveHeap is what a run keeps free above its per-id tables when
// the memory limit is pgrules' own (0: the user's limit stands).
func roomAboveLiveHeap() int64 {
	if !limitIsOurs {
		return 0
	}
	return softMemoryLimit / 3
}

func execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := notifyInterrupt(stderr)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) || ee.err != errQuiet {
		fmt.Fprintln(stderr, "pgrules:", err)
	}
	if errors.As(err, &ee) {
		return ee.code
	}
	// Flag parsing errors come from cobra untyped.
	if isFlagError(err) {
		return exitUsage
	}
	return exitFailed
}

// flagError adds a did-you-mean to an unknown flag.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		var names []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		if s := suggest.Closest(name, names); s != "" {
			return usageErr(fmt.Errorf("%s; did you mean --%s? (see pgrules %s --help)", msg, s, cmd.Name()))
		}
	}
	return usageErr(fmt.Errorf("%s (see pgrules %s --help)", msg, cmd.Name()))
}

// loadFor loads the layered config for a command: defaults < the config
// file < PGRULES_* < the flags the user set on this command.
func loadFor(cmd *cobra.Command) (*loaded, error) {
	f := cmd.Flags().Lookup("config")
	path, explicit := "", false
	if f != nil && f.Changed {
		path, explicit = f.Value.String(), true
	}
	return load(cmd.Flags(), path, explicit)
}

// loadForOutDir is loadFor for a command that reads an out dir: the
// OUT_DIR argument when given, else the configuration's out_dir.
func loadForOutDir(cmd *cobra.Command, args []string) (*loaded, string, error) {
	l, err := loadFor(cmd)
	if err != nil {
		return nil, "", err
	}
	if len(args) == 1 {
		return l, args[0], nil
	}
	return l, l.cfg.OutDir, nil
}

func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "unknown command", "accepts ", "requires "} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
