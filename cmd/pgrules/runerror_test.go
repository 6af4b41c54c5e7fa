package main

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pgrules/pgrules/engine"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/stats"
)

// A full disk is worded as one, says whether anything was committed and
// what to do. Only a file being staged proves the commit had not started.
// (By hand, on a 3 MB tmpfs: exit 1, the four committed files unchanged.)
func TestRunErrorOnAFullDisk(t *testing.T) {
	full := func(op, path string) error {
		return &output.IOError{Op: op, Path: path, Err: &fs.PathError{Op: op, Path: path, Err: syscall.ENOSPC}}
	}
	staged := runError(full("write", filepath.Join("out", ".pgrules", "staging", "dataset_v1_stats.json")), nil, "out", true).Error()
	for _, want := range []string{"no space left on device", "the disk is full: nothing was committed, the outputs in out are unchanged", "free space on it (or pass another --out-dir) and rerun: answers already received are in the cache"} {
		if !strings.Contains(staged, want) {
			t.Errorf("staging a file on a full disk: %q does not say %q", staged, want)
		}
	}
	quota := runError(&output.IOError{Op: "write", Path: filepath.Join("out", ".pgrules", "staging", "dataset_v1.jsonl"), Err: &fs.PathError{Op: "write", Err: syscall.EDQUOT}}, nil, "out", true).Error()
	if !strings.Contains(quota, "the disk is full (your quota on it is used up): nothing was committed") || !strings.Contains(quota, "spares there were removed") {
		t.Errorf("an exhausted quota: %q", quota)
	}
	other := runError(full("write", filepath.Join("out", ".pgrules", "fingerprints.json")), nil, "out", false).Error()
	if !strings.Contains(other, "the disk is full\n") || strings.Contains(other, "unchanged") || strings.Contains(other, "cache") {
		t.Errorf("a full disk outside staging, cache off: %q (must not claim the outputs unchanged, nor a cache)", other)
	}
}

// Answers the cache could not store are on the run's last line, not only
// in a warning among the logs: a rerun pays for them again.
func TestFinishLineSaysWhatTheCacheLost(t *testing.T) {
	res := &engine.Result{Committed: true, Health: engine.Health{Healthy: true}}
	if got := finishLine(res, "out"); strings.Contains(got, "NOT stored") {
		t.Errorf("nothing lost: %q", got)
	}
	res.Stats.Cache.NotStored, res.NotStoredWhy = 3, "response cache c.db: cannot write: database or disk is full (13)"
	if got := finishLine(res, "out"); !strings.Contains(got, "3 answer(s) the teacher gave NOT stored in the cache (response cache c.db: cannot write: database or disk is full (13)): a rerun pays for them again; committed to out") {
		t.Errorf("3 lost: %q", got)
	}
}

// Repeated responses are on the last line too, with the first pair.
func TestFinishLineNamesRepeatedResponses(t *testing.T) {
	res := &engine.Result{Committed: true, Health: engine.Health{Healthy: true}}
	res.Stats.DuplicateResponses = &stats.Duplicates{Records: 3, First: []stats.Duplicate{{ID: "b", SameAs: "a"}}}
	if got := finishLine(res, "out"); !strings.Contains(got, "; duplicates: 3 accepted record(s) repeat an earlier one's response (b is a, …: duplicate_responses in the stats)") {
		t.Errorf("finish line: %q", got)
	}
	res.Stats.DuplicateResponses = nil
	if got := finishLine(res, "out"); strings.Contains(got, "duplicates") {
		t.Errorf("no repeats: %q", got)
	}
}

// A run that fails after the cache lost answers never says they are
// cached: it says how many a rerun pays for again, whatever the failure.
func TestRunErrorSaysWhatTheCacheLost(t *testing.T) {
	lost := func(err error) error {
		return &engine.LostAnswersError{Err: err, Lost: 64, Why: "response cache c.db: cannot write: database or disk is full (13)"}
	}
	full := &output.IOError{Op: "write", Path: filepath.Join("out", ".pgrules", "staging", "dataset_v1.jsonl"), Err: &fs.PathError{Op: "write", Err: syscall.ENOSPC}}
	for name, tc := range map[string]struct {
		err  error
		res  *engine.Result
		want string
	}{
		"full disk":   {full, nil, "the disk is full: nothing was committed"},
		"interrupted": {engine.ErrInterrupted, &engine.Result{Remaining: 5}, "interrupted with 5 sample(s) not finished: nothing was committed, the outputs in out are unchanged; rerun the same command to finish"},
		"unhealthy":   {&engine.UnhealthyError{Health: engine.Health{Stopped: "stopped", Reasons: []string{"the run stopped early"}}, StashDir: "out/.pgrules/last-failed-run"}, nil, "run NOT committed, it is unhealthy"},
	} {
		got := runError(lost(tc.err), tc.res, "out", true)
		msg := got.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "64 answer(s) the teacher gave could not be stored in the cache (response cache c.db: cannot write: database or disk is full (13)): a rerun pays for them again") {
			t.Errorf("%s: %q", name, msg)
		}
		if strings.Contains(msg, "in the cache:") || strings.Contains(msg, "are cached") || strings.Contains(msg, "is in the response cache") || strings.Contains(msg, "cache is off") {
			t.Errorf("%s: still claims the answers are cached (or no cache): %q", name, msg)
		}
		if want := runError(tc.err, tc.res, "out", true); codeOf(got) != codeOf(want) {
			t.Errorf("%s: exit code %d, without the loss %d", name, codeOf(got), codeOf(want))
		}
	}
}

// codeOf is the exit code main gives err.
func codeOf(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
