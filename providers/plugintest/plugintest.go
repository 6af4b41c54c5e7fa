// Package plugintest builds the real provider plugin binaries for tests,
// so every test runs against real subprocesses on a clean clone with
// nothing prebuilt.
package plugintest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]error{}
)

// Build compiles ./plugins/<name> for each name into one directory shared
// by the test process and returns it. Each binary is built once per
// process; the go build cache makes later processes cheap.
func Build(tb testing.TB, names ...string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "pgrules-plugins-")
		if err != nil {
			tb.Fatal(err)
		}
		dir = d
	}
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range names {
		err, done := built[n]
		if !done {
			out := filepath.Join(dir, "pgrules-provider-"+n)
			cmd := exec.Command("go", "build", "-o", out, "./plugins/"+n)
			cmd.Dir = root
			if b, cerr := cmd.CombinedOutput(); cerr != nil {
				err = &buildError{name: n, out: string(b), err: cerr}
			}
			built[n] = err
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// Main runs the tests of a package whose tests call Build, then removes
// what Build wrote (a package's plugins weigh over 100 MB, and test runs
// are many): func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	Cleanup()
	return code
}

// Cleanup removes the directory Build wrote the plugins in; for a
// TestMain that cannot use Main.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir, built = "", map[string]error{}
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

type buildError struct {
	name, out string
	err       error
}

func (e *buildError) Error() string {
	return "building plugin " + e.name + ": " + e.err.Error() + "\n" + e.out
}
