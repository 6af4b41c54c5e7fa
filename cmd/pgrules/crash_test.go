package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgrules/pgrules/providers/plugintest"
)

// buildPgrules builds the real pgrules binary next to the plugins, so it
// finds them the way an installed pgrules does.
func buildPgrules(t *testing.T) string {
	t.Helper()
	dir := plugintest.Build(t, "local", "dryrun", "example")
	bin := filepath.Join(dir, "pgrules")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build pgrules: %v\n%s", err, out)
	}
	return bin
}

// localRun prepares a `pgrules run` against the loopback teacher.
func localRun(t *testing.T, bin, work, outDir string, srv *teacherServer, extra ...string) *exec.Cmd {
	cfg := filepath.Join(work, "pgrules.yaml")
	if _, err := os.Stat(cfg); err != nil {
		yaml := fmt.Sprintf("providers:\n  local:\n    base_url: %s/v1\n    models: [test-model]\n", srv.URL)
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sample, _ := filepath.Abs("../../testdata/sample")
	args := append([]string{"run", "--config", cfg, "--provider", "local",
		"--plan", filepath.Join(sample, "prompt_plan_v1.jsonl"),
		"--drafts", filepath.Join(sample, "drafts_v1.jsonl"),
		"--critiques", filepath.Join(sample, "critiques_v1.jsonl"),
		"--out-dir", outDir, "--concurrency", "3", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1769849398", "XDG_CACHE_HOME="+filepath.Join(work, ".cache"))
	return cmd
}

// normalized reads an output file, dropping the teacher's measured latency:
// the one field that honestly differs between two real calls.
func normalized(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: torn or invalid line %q: %v", path, line, err)
		}
		if tb, ok := rec["teacher"].(map[string]any); ok {
			delete(tb, "timing")
		}
		n, _ := json.Marshal(rec)
		out = append(out, string(n))
	}
	return out
}

// checkIntact asserts what a kill -9 must never leave behind: a torn line
// or an id twice.
func checkIntact(t *testing.T, outDir string) {
	t.Helper()
	seen := map[string]string{}
	for _, name := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl"} {
		f, err := os.Open(filepath.Join(outDir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var rec struct{ ID string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.ID == "" {
				t.Errorf("%s: torn line after kill -9: %.80q", name, sc.Text())
			}
			if prev, dup := seen[rec.ID]; dup {
				t.Errorf("id %s in %s and %s after kill -9", rec.ID, prev, name)
			}
			seen[rec.ID] = name
		}
		f.Close()
	}
}

func TestKill9LosesAtMostInFlightCalls(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 150*time.Millisecond)
	work := t.TempDir()

	ref := filepath.Join(work, "ref")
	// The reference run has a cache of its own: the killed runs must pay.
	if out, err := localRun(t, bin, work, ref, srv, "--cache-path", filepath.Join(work, "ref-cache.db")).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	samples, _ := srv.counts()
	srv.reset()

	out := filepath.Join(work, "out")
	const kills = 8
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range kills {
		cmd := localRun(t, bin, work, out, srv)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(1200)) * time.Millisecond)
		t0 := time.Now()
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		t.Logf("kill %d: the killed run was reaped in %s", i+1, time.Since(t0).Round(time.Millisecond))
		checkIntact(t, out)
		calls, _ := srv.counts()
		t.Logf("kill %d: server has seen %d calls", i+1, calls)
	}
	// Alternate plain rerun and --resume: both must finish for free.
	if b, err := localRun(t, bin, work, out, srv, "--resume").CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, b)
	}
	calls, maxPer := srv.counts()
	// Every prompt was paid once, plus at most the calls in flight at each
	// kill (concurrency 3).
	if calls > samples+kills*3 {
		t.Errorf("teacher saw %d calls for %d samples over %d kills; want at most %d", calls, samples, kills, samples+kills*3)
	}
	if maxPer > 1+kills {
		t.Errorf("one prompt was sent %d times", maxPer)
	}
	for _, name := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl"} {
		want, got := normalized(t, filepath.Join(ref, name)), normalized(t, filepath.Join(out, name))
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("%s after kills and a rerun differs from an uninterrupted run (%d vs %d records)", name, len(got), len(want))
		}
	}

	// And once more with the cache warm: not a single call.
	srv.reset()
	if b, err := localRun(t, bin, work, out, srv).CombinedOutput(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, b)
	}
	if calls, _ := srv.counts(); calls != 0 {
		t.Errorf("a rerun with every answer cached made %d teacher calls", calls)
	}
}

func TestInterruptCommitsNothingAndRerunPaysOnlyForTheRest(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 200*time.Millisecond)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	if b, err := localRun(t, bin, work, out, srv, "--limit", "4").CombinedOutput(); err != nil {
		t.Fatalf("first run: %v\n%s", err, b)
	}
	before := sums(t, out)

	cmd := localRun(t, bin, work, out, srv, "--concurrency", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the rerun is paying for new answers.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if calls, _ := srv.counts(); calls >= 4+3 {
			break
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit = %v, want %d\n%s", err, exitInterrupted, stderr.String())
	}
	for _, frag := range []string{"stopping: no new sample starts, and the teacher calls in flight, if any, finish", "nothing was committed", "unchanged", "rerun the same command"} {
		if !strings.Contains(stderr.String(), frag) {
			t.Errorf("interrupt message does not say %q:\n%s", frag, stderr.String())
		}
	}
	if after := sums(t, out); !maps.Equal(before, after) {
		t.Errorf("an interrupted rerun changed the committed outputs:\nbefore %v\nafter  %v", before, after)
	}

	// A plain rerun pays only for what was not answered: the call in
	// flight at the Ctrl-C finished and was cached, so no prompt is paid
	// twice.
	answeredBefore, _ := srv.counts()
	if b, err := localRun(t, bin, work, out, srv).CombinedOutput(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, b)
	}
	calls, maxPer := srv.counts()
	srv.mu.Lock()
	distinct := len(srv.seen)
	srv.mu.Unlock()
	if calls != distinct || maxPer != 1 {
		t.Errorf("%d calls for %d prompts (max %d per prompt): a call paid before the interrupt was paid again", calls, distinct, maxPer)
	}
	if calls <= answeredBefore {
		t.Errorf("the rerun made no call, but the interrupted run left samples unanswered")
	}
}

// A second Ctrl-C abandons the calls in flight: the run ends at once, not
// when a slow teacher answers.
func TestASecondInterruptAbandonsTheCallsInFlight(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 20*time.Second)
	work := t.TempDir()
	cmd := localRun(t, bin, work, filepath.Join(work, "out"), srv, "--concurrency", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if calls, _ := srv.counts(); calls >= 1 {
			break
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !strings.Contains(stderr.String(), "Press Ctrl-C again"); time.Sleep(20 * time.Millisecond) {
	}
	start := time.Now()
	_ = cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit = %v, want %d\n%s", err, exitInterrupted, stderr.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the second Ctrl-C took %s to end the run: the call in flight was waited for", took)
	}
	if !strings.Contains(stderr.String(), "nothing was committed") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

// sums is the sha256 of each of the four output files.
func sums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl", "dataset_v1_stats.json", "dataset_v1_manifest.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		out[name] = hex.EncodeToString(sum[:])
	}
	return out
}

// TestKillDuringCommitLeavesOneWholeSet kills the real pgrules at every
// step of the commit of a re-gate that moves samples between the files,
// then checks what the next reader sees: the four files of one run.
func TestKillDuringCommitLeavesOneWholeSet(t *testing.T) {
	bin := buildPgrules(t)
	repo, _ := filepath.Abs("../..")
	edited := filepath.Join(t.TempDir(), "gates.yaml")
	src := must(os.ReadFile(filepath.Join(repo, "gates.yaml")))
	os.WriteFile(edited, bytes.Replace(src, []byte("variables.verification_steps_count > 0"), []byte("variables.verification_steps_count >= 3"), 1), 0o644)
	run := func(out string, env []string, extra ...string) ([]byte, error) {
		sample := filepath.Join(repo, "testdata", "sample")
		args := append([]string{"run", "--provider", "dryrun", "--out-dir", out, "--log-format", "json",
			"--plan", filepath.Join(sample, "prompt_plan_v1.jsonl"), "--drafts", filepath.Join(sample, "drafts_v1.jsonl"),
			"--critiques", filepath.Join(sample, "critiques_v1.jsonl"), "--cache-path", filepath.Join(filepath.Dir(out), "cache.db")}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append(os.Environ(), "SOURCE_DATE_EPOCH=1769849398"), env...)
		return cmd.CombinedOutput()
	}
	for _, point := range []string{"staged", "spared", "journaled", "renamed:dataset_v1_rejected.jsonl", "renamed:dataset_v1.jsonl", "renamed:dataset_v1_stats.json", "committed"} {
		t.Run(point, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if b, err := run(out, nil); err != nil {
				t.Fatalf("first run: %v\n%s", err, b)
			}
			old := sums(t, out)
			b, err := run(out, []string{"PGRULES_TEST_KILL_AT=" + point}, "--rules", edited)
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("pgrules was not killed at %s: %v\n%s", point, err, b)
			}
			// The next reader: explain of a sample the edit moves.
			ex := exec.Command(bin, "explain", "v1_decision_tree_transport_0002", "--out-dir", out, "--rules", edited)
			exOut, err := ex.CombinedOutput()
			if err != nil {
				t.Fatalf("explain after the kill: %v\n%s", err, exOut)
			}
			now := sums(t, out)
			var man struct {
				Outputs map[string]struct {
					SHA256 string `json:"sha256"`
				} `json:"outputs"`
			}
			if err := json.Unmarshal(must(os.ReadFile(filepath.Join(out, "dataset_v1_manifest.json"))), &man); err != nil {
				t.Fatal(err)
			}
			if man.Outputs["dataset"].SHA256 != now["dataset_v1.jsonl"] || man.Outputs["rejected"].SHA256 != now["dataset_v1_rejected.jsonl"] {
				t.Errorf("after a kill at %s the manifest describes other record files than those in place", point)
			}
			checkIntact(t, out)
			beforeCommit := point == "staged" || point == "spared"
			if beforeCommit && !maps.Equal(old, now) {
				t.Errorf("a kill before the commit point changed the outputs")
			}
			if !beforeCommit && maps.Equal(old, now) {
				t.Errorf("a kill after the commit point lost the new run")
			}
		})
	}
}
