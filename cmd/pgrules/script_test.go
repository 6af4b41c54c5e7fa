package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pgrules/pgrules/providers/plugintest"
)

func TestMain(m *testing.M) {
	var cache string
	// No test may touch the user's real shared cache.
	if os.Getenv("PGRULES_TEST_ISOLATED") == "" {
		// The go command's build cache also lives in the user cache dir:
		// keep it where it is, or every `go build` of a test starts cold.
		if os.Getenv("GOCACHE") == "" {
			if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
				os.Setenv("GOCACHE", strings.TrimSpace(string(out)))
			}
		}
		dir, err := os.MkdirTemp("", "pgrules-test-cache-")
		if err == nil {
			os.Setenv("XDG_CACHE_HOME", dir)
			os.Setenv("PGRULES_TEST_ISOLATED", "1") // children keep what they are given
			cache = dir
		}
	}
	// The test binary doubles as the pgrules command inside scripts.
	testscript.Main(cleaningM{m, func() {
		if cache != "" {
			os.RemoveAll(cache)
		}
		plugintest.Cleanup()
	}}, map[string]func(){
		"pgrules": func() { os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// cleaningM cleans up after the tests have run. testscript.Main exits
// when they end, and runs them only in the test binary's own process, not
// when a script runs it as pgrules: only the process that made the
// temporary directories removes them.
type cleaningM struct {
	m       *testing.M
	cleanup func()
}

func (c cleaningM) Run() int {
	code := c.m.Run()
	c.cleanup()
	return code
}

// TestScripts runs the CLI end to end: real plugin subprocesses, real files.
// Each testdata/script/*.txtar is one user story.
func TestScripts(t *testing.T) {
	plugins := plugintest.Build(t, "dryrun", "local")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// replace OLD NEW FILE: the "edit gates.yaml" step of a user story.
			"replace": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 3 {
					ts.Fatalf("usage: replace OLD NEW FILE")
				}
				file := ts.MkAbs(args[2])
				data := ts.ReadFile(args[2])
				if !strings.Contains(data, args[0]) {
					ts.Fatalf("replace: %q not found in %s", args[0], args[2])
				}
				ts.Check(os.WriteFile(file, []byte(strings.Replace(data, args[0], args[1], 1)), 0o644))
			},
		},
		Setup: func(e *testscript.Env) error {
			e.Setenv("PGRULES_PLUGIN_DIR", plugins)
			e.Setenv("REPO", repo)
			e.Setenv("SAMPLE", filepath.Join(repo, "testdata", "sample"))
			e.Setenv("SOURCE_DATE_EPOCH", "1769849398")
			// Each script has its own shared cache: $WORK/.cache/pgrules/cache.db.
			e.Setenv("XDG_CACHE_HOME", filepath.Join(e.WorkDir, ".cache"))
			e.Setenv("PGRULES_TEST_ISOLATED", "1")
			return nil
		},
	})
}
