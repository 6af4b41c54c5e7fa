package main

import (
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
