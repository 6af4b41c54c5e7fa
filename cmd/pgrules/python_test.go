package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	} else if !strings.Contains(out, `"transport":"unary"`) {
		t.Errorf("the Python template has no GenerateStream, yet the run does not say it called it unary:\n%s", out)
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

// pluginChild finds the process pgrules (pid) started for a plugin: a
// descendant whose command line contains marker (a wrapper that forks
// instead of exec'ing makes it a grandchild).
func pluginChild(t *testing.T, pid int, marker string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		parent := map[int]int{}
		var found []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...: comm may hold spaces; ppid follows ")".
			fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(fields) < 2 {
				continue
			}
			parent[p], _ = strconv.Atoi(fields[1])
			if cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); bytes.Contains(cmdline, []byte(marker)) {
				found = append(found, p)
			}
		}
		for _, p := range found {
			for a := parent[p]; a > 1; a = parent[a] {
				if a == pid {
					return p
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pgrules (pid %d) started no process with %q", pid, marker)
	return 0
}

func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// A zombie has died; it waits only for its parent to read its status.
	return err == nil && !strings.Contains(string(stat[bytes.LastIndexByte(stat, ')'):]), ") Z ")
}

// kill -9 of pgrules while a plugin runs leaves no plugin behind: the Go
// plugins and the Python template both ask the kernel to end them with
// their parent.
func TestPluginsDieWithPgrules(t *testing.T) {
	bin := buildPgrules(t)
	py := pythonPlugin(t)
	for _, c := range []struct{ provider, pluginDir, marker string }{
		{"example", filepath.Dir(bin), "pgrules-provider-example"},
		{"python-example", py, "provider.py"},
	} {
		t.Run(c.provider, func(t *testing.T) {
			work := t.TempDir()
			// The critiques are a pipe nobody writes: pgrules starts the
			// plugin, then waits on its inputs.
			fifo := filepath.Join(work, "critiques.fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, sampleArgs(t, filepath.Join(work, "out"), "--provider", c.provider, "--plugin-dir", c.pluginDir, "--critiques", fifo)...)
			cmd.Dir = work
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			plugin := pluginChild(t, cmd.Process.Pid, c.marker)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			deadline := time.Now().Add(5 * time.Second)
			for alive(plugin) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(plugin) {
				syscall.Kill(plugin, syscall.SIGKILL)
				t.Fatalf("plugin %s (pid %d) outlived pgrules", c.provider, plugin)
			}
		})
	}
}
