package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// On a terminal, cache clear asks before removing paid answers that every
// out dir shares; anything but y or yes keeps them. (Without a terminal it
// wants --yes: regate.txtar.) The terminal is a real pseudo-terminal,
// from util-linux's script(1).
func TestCacheClearAsksOnATerminal(t *testing.T) {
	bin := buildPgrules(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("no script(1) to give pgrules a terminal: install util-linux")
	}
	work := t.TempDir()
	if out, err := exec.Command(bin, sampleArgs(t, filepath.Join(work, "out"))...).CombinedOutput(); err != nil {
		t.Fatalf("filling the cache: %v\n%s", err, out)
	}
	cachePath := filepath.Join(work, "cache.db")
	clear := func(answer string) string {
		cmd := exec.Command("script", "-qec", bin+" cache clear --cache-path "+cachePath, "/dev/null")
		cmd.Stdin = strings.NewReader(answer + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cache clear on a terminal, answering %q: %v\n%s", answer, err, out)
		}
		return string(out)
	}
	entries := func() string {
		out, err := exec.Command(bin, "cache", "stats", "--cache-path", cachePath).CombinedOutput()
		if err != nil {
			t.Fatalf("cache stats: %v\n%s", err, out)
		}
		return strings.Fields(strings.Split(string(out), "\n")[1])[1]
	}
	before := entries()
	if out := clear("n"); !strings.Contains(out, "cached answer(s) from "+cachePath+", which every out dir shares") || !strings.Contains(out, "[y/N]") || !strings.Contains(out, "nothing removed") {
		t.Errorf("answering n:\n%s", out)
	}
	if before == "0" || entries() != before {
		t.Errorf("entries %s before, %s after answering n", before, entries())
	}
	if out := clear("y"); !strings.Contains(out, "removed "+before+" cached answers") {
		t.Errorf("answering y:\n%s", out)
	}
	if got := entries(); got != "0" {
		t.Errorf("%s entries left after answering y", got)
	}
}

// "--plan -" on a terminal is a forgotten pipe: refused at once rather than
// waiting for an end of file nobody means to type. (A pipe: run_dryrun.txtar.)
func TestStdinInputOnATerminalIsRefused(t *testing.T) {
	bin := buildPgrules(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("no script(1) to give pgrules a terminal: install util-linux")
	}
	work := t.TempDir()
	cmd := exec.Command("script", "-qec", bin+" run --provider dryrun --plan - --drafts drafts.jsonl --out-dir "+filepath.Join(work, "out"), "/dev/null")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--plan - reads the input from standard input, which is a terminal: pipe it in") {
		t.Errorf("run --plan - on a terminal: err %v\n%s", err, out)
	}
}
