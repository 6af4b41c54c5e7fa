package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A byte of a cached answer changed on disk (a bad sector, a torn copy of
// the file) keeps its JSON valid when it turns "e" into "E", and the
// answer would be accepted with words the teacher never wrote. The rerun
// must notice, ask the teacher again, and write exactly what a rerun of an
// undamaged cache writes.
func TestADamagedCachedAnswerIsAskedAgain(t *testing.T) {
	bin := buildPgrules(t)
	work := t.TempDir()
	first := filepath.Join(work, "first")
	if b, err := exec.Command(bin, sampleArgs(t, first)...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	cachePath := filepath.Join(work, "cache.db")
	var rec struct {
		Response struct {
			Summary string `json:"summary"`
		} `json:"response"`
	}
	line, _, _ := bytes.Cut(must(os.ReadFile(filepath.Join(first, "dataset_v1.jsonl"))), []byte("\n"))
	if err := json.Unmarshal(line, &rec); err != nil || len(rec.Response.Summary) < 20 {
		t.Fatalf("first record: %v %q", err, rec.Response.Summary)
	}
	db := must(os.ReadFile(cachePath))
	// Every copy SQLite left of the page (a free page may keep an old one).
	copies := bytes.Count(db, []byte(rec.Response.Summary))
	if copies == 0 {
		t.Fatalf("the answer %q is not in the cache file", rec.Response.Summary)
	}
	e := bytes.IndexByte([]byte(rec.Response.Summary), 'e')
	for off := 0; ; {
		at := bytes.Index(db[off:], []byte(rec.Response.Summary))
		if at < 0 {
			break
		}
		db[off+at+e] = 'E'
		off += at + 1
	}
	if err := os.WriteFile(cachePath, db, 0o644); err != nil {
		t.Fatal(err)
	}
	// cache verify names what a run would ask again for, and fails.
	out, err := exec.Command(bin, "cache", "verify", "--cache-path", cachePath).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "damaged: ") || strings.Contains(string(out), " 0 damaged") {
		t.Errorf("cache verify after the damage: exit %d\n%s", code, out)
	}

	// cache merge leaves the damaged answers out, and says so.
	merged := exec.Command(bin, "cache", "merge", cachePath, filepath.Join(work, "merged.db"))
	var mergeErr bytes.Buffer
	merged.Stderr = &mergeErr
	if err := merged.Run(); err != nil || !strings.Contains(mergeErr.String(), "answer(s) left out: their bytes do not match their checksum") {
		t.Errorf("cache merge of the damaged cache: %v\n%s", err, mergeErr.String())
	}

	// Offline, a damaged answer is no answer: the sample is rejected
	// no_cached_answer, never judged on the damaged text.
	offline := exec.Command(bin, sampleArgs(t, filepath.Join(work, "offline"), "--offline")...)
	if b, err := offline.CombinedOutput(); err != nil || !strings.Contains(string(b), "cache read failed; offline, so this sample has no answer") || !strings.Contains(string(b), "no_cached_answer") {
		t.Errorf("offline run on the damaged cache: %v\n%s", err, b)
	}

	second := filepath.Join(work, "second")
	cmd := exec.Command(bin, sampleArgs(t, second)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	// Records that repeat another's response share its text: each damaged
	// answer is named, and is a miss besides the sample whose teacher
	// call fails.
	damaged := strings.Count(stderr.String(), "does not match its checksum")
	if damaged == 0 || !strings.Contains(stderr.String(), fmt.Sprintf(`"cache_misses":%d`, damaged+1)) {
		t.Errorf("the rerun does not say it asked again for the damaged answers:\n%s", stderr.String())
	}
	// The damaged answers were stored anew.
	if out, err := exec.Command(bin, "cache", "verify", "--cache-path", cachePath).CombinedOutput(); err != nil || !strings.Contains(string(out), " 0 damaged, 0 without a checksum") {
		t.Errorf("cache verify after the rerun: %v\n%s", err, out)
	}
	for _, name := range []string{"dataset_v1.jsonl", "dataset_v1_rejected.jsonl"} {
		a := must(os.ReadFile(filepath.Join(first, name)))
		b := must(os.ReadFile(filepath.Join(second, name)))
		if !bytes.Equal(normalizeTimes(a), normalizeTimes(b)) {
			t.Errorf("%s differs from the run before the damage", name)
		}
	}
}
