package main

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// An outage never replaces a good dataset, and --resume finishes the job
// once the teacher is back, asking only for what failed.
func TestOutageKeepsTheDatasetAndResumeRetriesFailures(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 0)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	if b, err := localRun(t, bin, work, out, srv, "--limit", "10").CombinedOutput(); err != nil {
		t.Fatalf("good run: %v\n%s", err, b)
	}
	before := sums(t, out)

	srv.failWith(func(string) (int, map[string]string, string) {
		return 500, nil, `{"error": {"message": "internal error", "code": 500}}`
	})
	srv.reset()
	b, err := localRun(t, bin, work, out, srv, "--max-retries", "1", "--refresh").CombinedOutput()
	if exitCode(err) != 1 {
		t.Fatalf("run during an outage: exit %d, want 1\n%s", exitCode(err), b)
	}
	for _, frag := range []string{"NOT committed", "unhealthy", "recorded before the run stopped early;", "the first 5 teacher calls all failed with http_500 after their retries", "unchanged", ".pgrules/last-failed-run", "fix the teacher"} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("the message does not say %q:\n%s", frag, b)
		}
	}
	// It stopped after the first 5 failures (and what the other workers
	// had in flight), not after asking for every sample twice.
	if calls, _ := srv.counts(); calls > 2*(5+4) {
		t.Errorf("the outage run made %d calls: want at most 2 attempts × (5 + 4 in flight)", calls)
	}
	// A teacher that fails only some samples is not an outage: with the
	// early stop off, the failure rate decides.
	b, err = localRun(t, bin, work, out, srv, "--max-retries", "0", "--fatal-after", "0", "--refresh").CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(b), "teacher answers failed") || strings.Contains(string(b), "stopped early") {
		t.Errorf("run with --fatal-after 0 during an outage: exit %d, want 1 and the failure rate\n%s", exitCode(err), b)
	}
	if after := sums(t, out); !maps.Equal(before, after) {
		t.Fatalf("the outage changed the committed outputs")
	}

	// Commit a run with failures anyway, then --resume with the teacher back.
	srv.failWith(func(prompt string) (int, map[string]string, string) {
		if strings.Contains(prompt, "Lisbon") || strings.Contains(prompt, "Tokyo") || strings.Contains(prompt, "Paris") {
			return 500, nil, `{"error": {"message": "internal error"}}`
		}
		return 0, nil, ""
	})
	b, err = localRun(t, bin, work, out, srv, "--max-retries", "0", "--allow-unhealthy").CombinedOutput()
	if err != nil {
		t.Fatalf("--allow-unhealthy: %v\n%s", err, b)
	}
	failed := idsWithReason(t, filepath.Join(out, "dataset_v1_rejected.jsonl"), "teacher_error")
	if len(failed) == 0 {
		t.Fatalf("no teacher_error record to resume:\n%s", b)
	}
	srv.failWith(nil)
	srv.reset()
	if b, err := localRun(t, bin, work, out, srv, "--resume").CombinedOutput(); err != nil {
		t.Fatalf("--resume: %v\n%s", err, b)
	}
	if calls, _ := srv.counts(); calls != len(failed) {
		t.Errorf("--resume made %d calls, want %d (the teacher failures, nothing else)", calls, len(failed))
	}
	if left := idsWithReason(t, filepath.Join(out, "dataset_v1_rejected.jsonl"), "teacher_error"); len(left) != 0 {
		t.Errorf("teacher_error records left after --resume: %v", left)
	}
	accepted := string(must(os.ReadFile(filepath.Join(out, "dataset_v1.jsonl"))))
	for _, id := range failed {
		if !strings.Contains(accepted, `"id": "`+id+`"`) {
			t.Errorf("%s failed before and is not accepted after --resume", id)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func idsWithReason(t *testing.T, path, reason string) []string {
	t.Helper()
	var ids []string
	for _, line := range strings.Split(string(must(os.ReadFile(path))), "\n") {
		if strings.Contains(line, `"reason_codes": ["`+reason+`"]`) {
			id := strings.TrimPrefix(line, `{"id": "`)
			ids = append(ids, id[:strings.Index(id, `"`)])
		}
	}
	return ids
}

// A Retry-After of 27 hours does not hold the run: the wait is capped,
// the call fails, the run ends unhealthy within seconds and says why.
func TestRetryAfterLongerThanTheCapEndsTheRunQuickly(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 0)
	srv.failWith(func(string) (int, map[string]string, string) {
		return 429, map[string]string{"Retry-After": "100000"}, `{"error": {"message": "rate limited"}}`
	})
	work := t.TempDir()
	out := filepath.Join(work, "out")
	log, took := failedRun(t, localRun(t, bin, work, out, srv, "--max-retry-wait", "2s"))
	if took > 20*time.Second {
		t.Errorf("the run took %s; a 2s cap must end it within seconds", took)
	}
	if !strings.Contains(log, `"level":"warn"`) || !strings.Contains(log, "longer than max_retry_wait 2s") {
		t.Errorf("no warn line about the capped wait:\n%s", log)
	}
	if calls, _ := srv.counts(); calls > 6 {
		t.Errorf("%d calls: calls starting during the refused period must fail without asking again", calls)
	}
	noOutputs(t, out)
}

// A teacher that accepts the call and never answers (the local plugin's
// own timeout is 5 minutes; a plugin without one would wait forever) is
// given up after --call-timeout: the first calls all time out, the run
// stops early, commits nothing and says why.
func TestAHungTeacherIsGivenUpAfterTheCallTimeout(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, time.Hour)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	stderr, took := failedRun(t, localRun(t, bin, work, out, srv, "--call-timeout", "300ms", "--fatal-after", "3"))
	if took > 30*time.Second {
		t.Errorf("the run took %s; 300 ms a call must end it within seconds", took)
	}
	if want := "the first 3 teacher calls all failed with call_timeout after their retries: no answer from the provider plugin within 300ms (call_timeout)"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if calls, _ := srv.counts(); calls < 6 || calls > 12 {
		t.Errorf("%d calls reached the server: want each of the first 3 samples tried twice (a timeout is retried once), and few more", calls)
	}
	noOutputs(t, out)
}

// An input still being written (the stage before still appending to it)
// is read as it was when the run opened it, but the file then is not that
// any more: the run commits nothing and says which file changed.
func TestAnInputWrittenDuringTheRunIsNotCommitted(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 40*time.Millisecond)
	work := t.TempDir()
	sample, _ := filepath.Abs("../../testdata/sample")
	crits := filepath.Join(work, "critiques.jsonl")
	if err := os.WriteFile(crits, must(os.ReadFile(filepath.Join(sample, "critiques_v1.jsonl"))), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "out")
	cmd := localRun(t, bin, work, out, srv, "--critiques", crits, "--concurrency", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The run is asking the teacher by the time a call reaches it.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if calls, _ := srv.counts(); calls > 0 {
			break
		}
	}
	f, err := os.OpenFile(crits, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id": "v1_late_0001", "critique": {"verdict": "pass"}}` + "\n")
	f.Close()
	err = cmd.Wait()
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1\n%s", exitCode(err), stderr.String())
	}
	for _, want := range []string{"critiques.jsonl grew from 43055 to 43111 bytes while the run read it (is the stage that writes it still running?)", "nothing was committed, the outputs in " + out + " are unchanged: rerun once the file is complete (answers already received are in the cache)"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	noOutputs(t, out)
}

// Two runs into different out dirs at the same time share the user's
// cache: both finish, and afterwards every answer is in it, so a third run
// anywhere pays nothing.
func TestConcurrentRunsShareTheCache(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 30*time.Millisecond)
	work := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for _, dir := range []string{"one", "two"} {
		cmd := localRun(t, bin, work, filepath.Join(work, dir), srv)
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &b)
	}
	start := time.Now()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run %d failed while another ran: %v\n%s", i, err, outs[i])
		}
		t.Logf("run %d done after %s", i, time.Since(start))
	}
	srv.reset()
	if b, err := localRun(t, bin, work, filepath.Join(work, "three"), srv).CombinedOutput(); err != nil {
		t.Fatalf("third run: %v\n%s", err, b)
	}
	if calls, _ := srv.counts(); calls != 0 {
		t.Errorf("a third run after two concurrent ones made %d calls: answers missing from the shared cache", calls)
	}
}

// failedRun runs cmd, which must exit 1 (a run that went wrong), and
// returns its stderr and how long it took.
func failedRun(t *testing.T, cmd *exec.Cmd) (string, time.Duration) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if exitCode(err) != 1 {
		t.Fatalf("exit %d, want 1\n%s", exitCode(err), stderr.String())
	}
	return stderr.String(), took
}

// noOutputs checks that a first run that went wrong committed nothing.
func noOutputs(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(out, "dataset_v1.jsonl")); !os.IsNotExist(err) {
		t.Errorf("a run that went wrong committed outputs: %v", err)
	}
}
