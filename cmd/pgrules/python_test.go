package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonPlugin copies plugins/python-example to a fresh directory (a
// plugin runs from wherever it is installed) and checks its Python can.
func pythonPlugin(t *testing.T) string {
	t.Helper()
	src, _ := filepath.Abs("../../plugins/python-example")
	dir := filepath.Join(t.TempDir(), "py")
	if out, err := exec.Command("cp", "-r", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	probe := exec.Command("sh", "-c", `for py in "${PGRULES_PYTHON:-}" /usr/bin/python3 python3; do [ -n "$py" ] && "$py" -c 'import grpc, grpc_tools, cryptography' 2>/dev/null && exit 0; done; exit 1`)
	if probe.Run() != nil {
		t.Fatal("no Python with grpcio, grpcio-tools and cryptography: run scripts/test-deps.sh (apt-get install python3-grpcio python3-grpc-tools python3-cryptography) or set PGRULES_PYTHON")
	}
	return dir
}

// The Python teacher, end to end: pgrules lists it, runs the sample
// through it (handshake, mutual TLS, health, Configure, Generate), and
// its decisions are those of the Go template, which answers the same way.
func TestPythonPluginRunsTheSample(t *testing.T) {
	bin := buildPgrules(t)
	py := pythonPlugin(t)
	work := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("providers", "--plugin-dir", py)
	if err != nil || !strings.Contains(out, "python-example  0.1.0") {
		t.Fatalf("pgrules providers: %v\n%s", err, out)
	}
	repo, _ := filepath.Abs("../..")
	crit := filepath.Join(repo, "testdata/sample/critiques_v1.jsonl")
	if out, err := run(sampleArgs(t, filepath.Join(work, "py-out"), "--provider", "python-example", "--plugin-dir", py, "--critiques", crit)...); err != nil {
		t.Fatalf("run through the Python plugin: %v\n%s", err, out)
	}
	// The Go template (plugins/example) also answers with the draft.
	if out, err := run(sampleArgs(t, filepath.Join(work, "go-out"), "--provider", "example", "--critiques", crit)...); err != nil {
		t.Fatalf("run through the Go template: %v\n%s", err, out)
	}
	decisions := func(dir string) string {
		var ids []string
		for _, f := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl"} {
			for _, l := range strings.Split(string(must(os.ReadFile(filepath.Join(work, dir, f)))), "\n") {
				if l != "" {
					ids = append(ids, f[:12]+" "+l[:strings.Index(l, ",")])
				}
			}
		}
		return strings.Join(ids, "\n")
	}
	if a, b := decisions("py-out"), decisions("go-out"); a != b || strings.Count(a, "dataset_v1.j") < 20 {
		t.Errorf("Python and Go templates decide differently:\n%s\n---\n%s", a, b)
	}
	rec := must(os.ReadFile(filepath.Join(work, "py-out", "dataset_v1.jsonl")))
	if !bytes.Contains(rec, []byte(`"provider": "python-example", "selected_model": "python-draft-echo"`)) {
		t.Errorf("records do not name the Python teacher:\n%.400s", rec)
	}

	// A misspelt setting is refused by the Python plugin and reported at
	// its place in the config file.
	if err := os.WriteFile(filepath.Join(work, "pgrules.yaml"), []byte("providers:\n  python-example:\n    modle: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(sampleArgs(t, filepath.Join(work, "bad-out"), "--provider", "python-example", "--plugin-dir", py)...)
	if err == nil || !strings.Contains(out, "pgrules.yaml:3:5: providers.python-example.modle: unknown key (known: model)") {
		t.Errorf("misspelt setting: %v\n%s", err, out)
	}
}

// The plugin's copy of the protocol is the protocol.
func TestPythonPluginProtoIsTheProvidersProto(t *testing.T) {
	a := must(os.ReadFile("../../providers/proto/provider.proto"))
	b := must(os.ReadFile("../../plugins/python-example/proto/provider.proto"))
	if !bytes.Equal(a, b) {
		t.Error("plugins/python-example/proto/provider.proto differs from providers/proto/provider.proto: run `make proto`")
	}
}
