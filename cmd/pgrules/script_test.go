package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pgrules/pgrules/providers/plugintest"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the pgrules command inside scripts.
	testscript.Main(m, map[string]func(){
		"pgrules": func() { os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI end to end: real plugin subprocesses, real files.
// Each testdata/script/*.txtar is one user story.
func TestScripts(t *testing.T) {
	plugins := plugintest.Build(t, "dryrun")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: false,
		Setup: func(e *testscript.Env) error {
			e.Setenv("PGRULES_PLUGIN_DIR", plugins)
			e.Setenv("REPO", repo)
			e.Setenv("SAMPLE", filepath.Join(repo, "testdata", "sample"))
			e.Setenv("SOURCE_DATE_EPOCH", "1769849398")
			return nil
		},
	})
}
