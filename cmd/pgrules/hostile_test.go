package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func sampleArgs(t *testing.T, out string, extra ...string) []string {
	sample, _ := filepath.Abs("../../testdata/sample")
	return append([]string{"run", "--provider", "dryrun", "--out-dir", out, "--log-format", "json",
		"--plan", filepath.Join(sample, "prompt_plan_v1.jsonl"), "--drafts", filepath.Join(sample, "drafts_v1.jsonl"),
		"--cache-path", filepath.Join(filepath.Dir(out), "cache.db")}, extra...)
}

// --critiques <(cat critiques_v1.jsonl) is a pipe: it cannot seek, and
// must give the same outputs as the file.
func TestPipedInputGivesTheSameOutputs(t *testing.T) {
	bin := buildPgrules(t)
	work := t.TempDir()
	sample, _ := filepath.Abs("../../testdata/sample")
	crit := filepath.Join(sample, "critiques_v1.jsonl")
	fromFile := exec.Command(bin, sampleArgs(t, filepath.Join(work, "a", "out"), "--critiques", crit)...)
	if b, err := fromFile.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	// bash's process substitution, as a user types it.
	script := `"$0" "$@" --critiques <(cat "$CRIT")`
	piped := exec.Command("bash", append([]string{"-c", script, bin}, sampleArgs(t, filepath.Join(work, "b", "out"))...)...)
	piped.Env = append(os.Environ(), "CRIT="+crit)
	if b, err := piped.CombinedOutput(); err != nil {
		t.Fatalf("piped critiques: %v\n%s", err, b)
	}
	for _, name := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl"} {
		a := must(os.ReadFile(filepath.Join(work, "a", "out", name)))
		b := must(os.ReadFile(filepath.Join(work, "b", "out", name)))
		if !bytes.Equal(normalizeTimes(a), normalizeTimes(b)) {
			t.Errorf("%s differs between a file and a pipe", name)
		}
	}
}

func normalizeTimes(b []byte) []byte {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		delete(rec, "created_at")
		n, _ := json.Marshal(rec)
		out = append(out, string(n))
	}
	return []byte(strings.Join(out, "\n"))
}

// A FIFO no one writes to must not hang pgrules: Ctrl-C ends it at once.
func TestFIFOWithoutWriterIsInterruptible(t *testing.T) {
	bin := buildPgrules(t)
	work := t.TempDir()
	fifo := filepath.Join(work, "crit.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, sampleArgs(t, filepath.Join(work, "out"), "--critiques", fifo)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if exitCode(err) != exitInterrupted {
			t.Errorf("exit %d, want %d\n%s", exitCode(err), exitInterrupted, stderr.String())
		}
		if !strings.Contains(stderr.String(), "interrupted before any sample was judged (while reading the inputs)") {
			t.Errorf("the message does not say the run stopped while reading its inputs:\n%s", stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("pgrules ignored SIGTERM while waiting for a FIFO writer\n%s", stderr.String())
	}
}

// explain finds ids whatever characters they hold.
func TestExplainFindsIDsWithQuotesTabsAndNewlines(t *testing.T) {
	bin := buildPgrules(t)
	work := t.TempDir()
	id := "odd \"id\"\twith\nnewline"
	idJSON, _ := json.Marshal(id)
	plan := `{"id": ` + string(idJSON) + `, "payload_type": "checklist", "category": "safety", "difficulty": "easy", "region_tags": [], "prompt": "Safety checklist for Oslo"}` + "\n"
	drafts := `{"id": ` + string(idJSON) + `, "output_text": "draft"}` + "\n"
	os.WriteFile(filepath.Join(work, "plan.jsonl"), []byte(plan), 0o644)
	os.WriteFile(filepath.Join(work, "drafts.jsonl"), []byte(drafts), 0o644)
	out := filepath.Join(work, "out")
	run := exec.Command(bin, "run", "--provider", "dryrun", "--plan", filepath.Join(work, "plan.jsonl"), "--drafts", filepath.Join(work, "drafts.jsonl"), "--out-dir", out, "--cache-path", filepath.Join(work, "c.db"))
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b, err := exec.Command(bin, "explain", id, "--out-dir", out).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "gates:") {
		t.Errorf("explain of an id with a quote, a tab and a newline: %v\n%s", err, b)
	}
}

// Answers that JSON readers would take in different ways go through the
// real plugin and are rejected parse_failed, never repaired or half-read
// into the dataset: a lone surrogate in the API's own JSON (the provider
// keeps it as invalid UTF-8 instead of U+FFFD), one in the answer's JSON,
// a key twice in one object, a number no double holds, and invalid UTF-8.
func TestUnclearAnswersAreRejected(t *testing.T) {
	bin := buildPgrules(t)
	srv := newTeacherServer(t, 0)
	var n atomic.Int32
	srv.failWith(func(prompt string) (int, map[string]string, string) {
		content := envelopeFor("checklist", 1)
		var lit []byte
		switch n.Add(1) % 5 {
		case 0:
			lit, _ = json.Marshal(content)
			lit = bytes.Replace(lit, []byte("Visa and"), []byte(`Visa \ud800and`), 1)
		case 1:
			lit, _ = json.Marshal(strings.Replace(content, "Visa and", `Visa \ud800and`, 1))
		case 2:
			lit, _ = json.Marshal(`{"summary": 42, ` + content[1:])
		case 3:
			// The JSON Schema library crashed on such a number where the
			// schema has a minimum, and with it the run.
			lit, _ = json.Marshal(`{"metadata": {"budget": 1e999999999}, ` + content[1:])
		case 4:
			// json.Marshal writes no invalid byte: put one in by hand.
			lit, _ = json.Marshal(strings.Replace(content, "Entry checklist", "Entry checklist caf\ufffd", 1))
			lit = bytes.Replace(lit, []byte("caf\ufffd"), []byte("caf\xff"), 1)
		}
		body := `{"id": "g", "model": "test-model", "choices": [{"finish_reason": "stop", "message": {"content": ` + string(lit) + `}}]}`
		return 200, map[string]string{"Content-Type": "application/json"}, body
	})
	work := t.TempDir()
	out := filepath.Join(work, "out")
	b, err := localRun(t, bin, work, out, srv, "--allow-unhealthy").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	acc := string(must(os.ReadFile(filepath.Join(out, "dataset_v1.jsonl"))))
	rej := string(must(os.ReadFile(filepath.Join(out, "dataset_v1_rejected.jsonl"))))
	if strings.Contains(acc, "\ufffd") || strings.Contains(acc, `"summary": 42`) || strings.Contains(acc, `\\ud800`) || strings.Contains(acc, "checklist caf") {
		t.Errorf("an unclear answer reached the dataset:\n%.2000s", acc)
	}
	for _, want := range []string{
		`the answer is not valid UTF-8 (byte 0xed at offset`,
		`the answer is not valid UTF-8 (byte 0xff at offset`,
		`the string at $.summary holds the escape \\ud800, half of a UTF-16 surrogate pair without its other half`,
		`the key \"summary\" appears twice in the object at $`,
		`the number at $.metadata.budget (1e999999999) has an exponent beyond ±1000`,
	} {
		if !strings.Contains(rej, want) {
			t.Errorf("no rejection says %s:\n%.3000s", want, rej)
		}
	}
}
