package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A plugin written by `pgrules plugin new` passes its own tests, builds,
// is listed by `pgrules providers` and runs the sample end to end; it
// reports no latency, so the records carry the host's measurement.
func TestPluginNewWritesAWorkingPlugin(t *testing.T) {
	bin := buildPgrules(t)
	repo, _ := filepath.Abs("../..")
	work := t.TempDir()
	dir := filepath.Join(work, "acme")
	pgrules := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgrules %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	pgrules("plugin", "new", "acme", dir, "--pgrules-src", repo)
	goCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in the new plugin: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	goCmd("vet", "./...")
	goCmd("test", "-count=1", "./...")
	plugins := filepath.Join(work, "plugins")
	goCmd("build", "-o", filepath.Join(plugins, "pgrules-provider-acme"), ".")

	if out := pgrules("providers", "--plugin-dir", plugins); !strings.Contains(out, "acme") || !strings.Contains(out, "0.1.0") {
		t.Errorf("pgrules providers does not list acme 0.1.0:\n%s", out)
	}
	out := filepath.Join(work, "out")
	pgrules(sampleArgs(t, out, "--provider", "acme", "--plugin-dir", plugins, "--critiques", filepath.Join(repo, "testdata/sample/critiques_v1.jsonl"))...)
	data, err := os.ReadFile(filepath.Join(out, "dataset_v1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 5 {
		t.Fatalf("the drafts gated as they are: %d accepted, want most", len(lines))
	}
	for _, l := range lines {
		var rec struct {
			Teacher struct {
				Provider string `json:"provider"`
				Model    string `json:"chosen_model"`
				Timing   struct {
					Latency float64 `json:"latency_s"`
				} `json:"timing"`
			} `json:"teacher"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Teacher.Provider != "acme" || rec.Teacher.Model != "draft-echo" || rec.Teacher.Timing.Latency <= 0 {
			t.Errorf("teacher block %+v: want acme, draft-echo and the host-measured latency", rec.Teacher)
		}
	}

	// Mistakes are caught before anything is written.
	for _, c := range []struct{ args, want string }{
		{"plugin new Acme!", "use lowercase letters"},
		{"plugin new acme " + dir, "exists and is not empty"},
		{"plugin new acme2 --pgrules-src " + work, "not a pgrules source checkout"},
	} {
		cmd := exec.Command(bin, strings.Fields(c.args)...)
		cmd.Dir = work
		b, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), c.want) {
			t.Errorf("pgrules %s: %v %s, want an error saying %q", c.args, err, b, c.want)
		}
	}
}
