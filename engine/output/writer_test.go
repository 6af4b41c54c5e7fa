package output

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/pgrules/pgrules/internal/idtab"
)

func docs(tag string) map[string][]byte {
	return map[string][]byte{
		StatsFile:    []byte(`{"run": "` + tag + `"}` + "\n"),
		ManifestFile: []byte(`{"run": "` + tag + `"}` + "\n"),
	}
}

func TestWriterCommitsAtomicallyAndAbortKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	var busy *BusyError
	if _, err := Create(dir); !errors.As(err, &busy) || !strings.Contains(err.Error(), "in use by another pgrules run") {
		t.Fatalf("second writer: %v", err)
	}
	w.Write(DatasetFile, []byte(`{"id": "a"}`))
	w.Write(RejectedFile, []byte(`{"id": "b", "reason_codes": ["parse_failed"]}`))
	if err := w.Write("notes.txt", []byte("x")); err == nil {
		t.Error("a write to an unknown sink succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, DatasetFile)); !os.IsNotExist(err) {
		t.Fatal("the dataset is visible before Commit")
	}
	if err := w.Commit(docs("A")); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(dir, DatasetFile))
	if string(first) != `{"id": "a"}`+"\n" {
		t.Errorf("dataset = %q", first)
	}

	w2, err := Create(dir) // the lock was released by Commit
	if err != nil {
		t.Fatal(err)
	}
	w2.Write(DatasetFile, []byte(`{"id": "c"}`))
	w2.Abort(nil)
	if now, _ := os.ReadFile(filepath.Join(dir, DatasetFile)); string(now) != string(first) {
		t.Error("an aborted run changed the committed dataset")
	}
	if left, _ := os.ReadDir(filepath.Join(dir, StateDir, stagingName)); len(left) != 0 {
		t.Errorf("staged files left after Abort: %v", left)
	}

	w3, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	w3.Write(DatasetFile, []byte(`{"id": "d"}`))
	stash, err := w3.Stash(docs("C"))
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, DatasetFile)); string(now) != string(first) {
		t.Error("a stashed run changed the committed dataset")
	}
	if got, _ := os.ReadFile(filepath.Join(stash, DatasetFile)); string(got) != `{"id": "d"}`+"\n" {
		t.Errorf("stash %s holds %q", stash, got)
	}
	if left, _ := os.ReadDir(stash); len(left) != len(RecordFiles)+len(DocumentFiles) {
		t.Errorf("stash %s holds %d files, want the four outputs", stash, len(left))
	}
}

// The two runs of the commit test: in A, "x" is accepted; in B it is
// rejected and "y" moved the other way. A reader mixing them would see an
// id twice or stats of the wrong run.
var runs = map[string]struct{ accepted, rejected []string }{
	"A": {accepted: []string{"x", "z"}, rejected: []string{"y"}},
	"B": {accepted: []string{"y", "z"}, rejected: []string{"x", "w"}},
}

func commitRun(dir, tag string) error {
	w, err := Create(dir)
	if err != nil {
		return err
	}
	for _, id := range runs[tag].accepted {
		w.Write(DatasetFile, []byte(fmt.Sprintf(`{"id": %q, "run": %q}`, id, tag)))
	}
	for _, id := range runs[tag].rejected {
		w.Write(RejectedFile, []byte(fmt.Sprintf(`{"id": %q, "reason_codes": ["r"], "run": %q}`, id, tag)))
	}
	return w.Commit(docs(tag))
}

func TestMain(m *testing.M) {
	// The child of TestKillAtEveryCommitStep: commit run B and die at the
	// fault point named by PGRULES_TEST_KILL_AT.
	if dir := os.Getenv("PGRULES_TEST_COMMIT_DIR"); dir != "" {
		if err := commitRun(dir, "B"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// readerSees opens the out dir as every pgrules reader does and returns
// which run each of the four files belongs to.
func readerSees(t *testing.T, dir string) map[string]string {
	t.Helper()
	c, err := OpenCommitted(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[string]string{}
	for name, f := range c.Files {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		tags := map[string]bool{}
		for _, tag := range []string{"A", "B"} {
			if bytes.Contains(b, []byte(`"run": "`+tag+`"`)) {
				tags[tag] = true
			}
		}
		if len(tags) != 1 {
			t.Fatalf("%s mixes runs: %q", name, b)
		}
		for tag := range tags {
			seen[name] = tag
		}
	}
	return seen
}

func TestKillAtEveryCommitStep(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, point := range CommitFaultPoints {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			if err := commitRun(dir, "A"); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "PGRULES_TEST_COMMIT_DIR="+dir, "PGRULES_TEST_KILL_AT="+point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at %s: %v\n%s", point, err, out)
			}
			seen := readerSees(t, dir)
			if len(seen) != 4 {
				t.Fatalf("reader sees %d files after a kill at %s: %v", len(seen), point, seen)
			}
			want := seen[ManifestFile]
			for name, tag := range seen {
				if tag != want {
					t.Errorf("after a kill at %s the reader sees %s of run %s but the manifest of run %s", point, name, tag, want)
				}
			}
			// Before the journal exists the old set stands; from then on, the new.
			if wantTag := map[bool]string{true: "A", false: "B"}[point == "staged" || point == "spared"]; want != wantTag {
				t.Errorf("after a kill at %s the reader sees run %s, want %s", point, want, wantTag)
			}
			if _, err := os.Stat(filepath.Join(dir, StateDir, journalFile)); !os.IsNotExist(err) {
				t.Errorf("the journal is still there after a reader rolled forward: %v", err)
			}
			// And the next run starts clean.
			if err := commitRun(dir, "A"); err != nil {
				t.Fatalf("a run after the kill: %v", err)
			}
			for name, tag := range readerSees(t, dir) {
				if tag != "A" {
					t.Errorf("after the next commit %s is of run %s", name, tag)
				}
			}
		})
	}
}

func TestReadPriorDropsTornAndDuplicateLines(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, DatasetFile), []byte(`{"id": "a"}`+"\n"+`{"id": "b"}`+"\n"+`{"id": "c", "resp`), 0o644)
	os.WriteFile(filepath.Join(dir, RejectedFile), []byte(`{"id": "b", "reason_codes": ["x"]}`+"\n"+`{"id": "d", "reason_codes": ["parse_failed"]}`+"\n"+`{"id": "e", "reason_codes": ["teacher_error"]}`+"\n"), 0o644)
	p, err := ReadPrior(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Records) != 4 || p.Head(p.mustIndex(t, "d")).ReasonCodes[0] != "parse_failed" || !p.Records[p.mustIndex(t, "b")].Accepted {
		t.Errorf("records %+v", p.Records)
	}
	if p.Records[p.mustIndex(t, "d")].TeacherFailed || !p.Records[p.mustIndex(t, "e")].TeacherFailed {
		t.Error("a teacher_error record must be marked as a teacher failure, a gate rejection not")
	}
	joined := strings.Join(p.Problems, "\n")
	if !strings.Contains(joined, "dataset_v1.jsonl:3: torn last line") || !strings.Contains(joined, `dataset_v1_rejected.jsonl:1: id "b" is already in the dataset`) {
		t.Errorf("problems:\n%s", joined)
	}
	line, err := p.Line(p.mustIndex(t, "d"))
	if err != nil || string(line) != `{"id": "d", "reason_codes": ["parse_failed"]}` {
		t.Errorf("Line = %q, %v", line, err)
	}
}

func TestReadPriorNoticesFilesThatDoNotMatchTheManifest(t *testing.T) {
	dir := t.TempDir()
	if err := commitRun(dir, "A"); err != nil {
		t.Fatal(err)
	}
	man := `{"outputs": {"dataset": {"sha256": "0000"}}}`
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(man), 0o644)
	p, err := ReadPrior(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !strings.Contains(strings.Join(p.Problems, "\n"), "does not match the sha256 in dataset_v1_manifest.json") {
		t.Errorf("problems: %v", p.Problems)
	}
}

func (p *Prior) mustIndex(t *testing.T, id string) int {
	t.Helper()
	i, ok := p.Index(id)
	if !ok {
		t.Fatalf("no previous record of %q", id)
	}
	return i
}

// Shards read as one: every id once, found by Index, and an id in two
// shards named with both.
func TestReadPriorsNamesAnIDInTwoShards(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(a, DatasetFile), []byte(`{"id": "x"}`+"\n"+`{"id": "y"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(b, DatasetFile), []byte(`{"id": "z"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(a, RejectedFile), []byte(`{"id": "v", "reason_codes": ["gate_x"]}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(b, RejectedFile), []byte(`{"id": "y", "reason_codes": ["parse_failed"]}`+"\n"+`{"id": "w", "reason_codes": ["teacher_error"]}`+"\n"), 0o644)
	p, err := ReadPriors([]string{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Records) != 5 {
		t.Fatalf("%d records, want v, w, x, y and z once each", len(p.Records))
	}
	for _, id := range []string{"v", "w", "x", "y", "z"} {
		if got := p.ID(p.mustIndex(t, id)); got != id {
			t.Errorf("Index(%q) points at %q", id, got)
		}
	}
	// Each record still reads its own shard's file and head.
	for id, want := range map[string]string{"z": `{"id": "z"}`, "w": `{"id": "w", "reason_codes": ["teacher_error"]}`, "v": `{"id": "v", "reason_codes": ["gate_x"]}`} {
		i := p.mustIndex(t, id)
		if line, err := p.Line(i); err != nil || string(line) != want {
			t.Errorf("Line of %q = %q, %v; want %q", id, line, err, want)
		}
	}
	if h := p.Head(p.mustIndex(t, "w")); len(h.ReasonCodes) != 1 || h.ReasonCodes[0] != "teacher_error" || !p.Records[p.mustIndex(t, "w")].TeacherFailed {
		t.Errorf("w's head %+v", h)
	}
	if want := fmt.Sprintf("id %q has a record in %s and in %s", "y", a, b); len(p.Problems) != 1 || p.Problems[0] != want {
		t.Errorf("problems %q, want [%q]", p.Problems, want)
	}
}

// Read over the inputs' id table, a Prior finds its records through that
// table, a record of an id the inputs lack keeps its id, and an id twice
// keeps its first record, whether the inputs have it or not.
func TestPriorOverTheInputsKeepsEveryRecordFindable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, DatasetFile), []byte(`{"id": "x", "category": "c1"}`+"\n"+`{"id": "gone"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, RejectedFile), []byte(`{"id": "y", "reason_codes": ["parse_failed"]}`+"\n"+`{"id": "x", "reason_codes": ["dup"]}`+"\n"+`{"id": "gone", "reason_codes": ["dup"]}`+"\n"), 0o644)
	in := idtab.New(0)
	for _, id := range []string{"new", "y", "x"} {
		in.Add(id)
	}
	p, err := ReadPrior(dir, in)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Problems) != 2 || !strings.Contains(p.Problems[0], `id "x" is already in the dataset`) || !strings.Contains(p.Problems[1], `id "gone" is already in the dataset`) {
		t.Errorf("problems %q, want x and gone named as duplicates", p.Problems)
	}
	if _, ok := p.Index("new"); ok {
		t.Error("an id with no record found one")
	}
	if _, ok := p.Index("gone"); ok {
		t.Error("an id the inputs lack is found through the inputs' table")
	}
	for id, want := range map[string]string{"x": `{"id": "x", "category": "c1"}`, "y": `{"id": "y", "reason_codes": ["parse_failed"]}`} {
		i := p.mustIndex(t, id)
		if got := p.ID(i); got != id {
			t.Errorf("Index(%q) points at %q", id, got)
		}
		if line, err := p.Line(i); err != nil || string(line) != want {
			t.Errorf("Line of %q = %q, %v", id, line, err)
		}
	}
	if h := p.Head(p.mustIndex(t, "x")); h.Category != "c1" {
		t.Errorf("x's head %+v", h)
	}
	var ids []string
	for i := range p.Records {
		ids = append(ids, p.ID(i))
	}
	if strings.Join(ids, ",") != "x,gone,y" {
		t.Errorf("records' ids %v, want x, gone, y", ids)
	}
}

// A prehashed sum is used only for the very file read under the lock: a
// commit in between (new files) or an edit in place (the same file, new
// bytes) is hashed again, so the manifest check sees what is there now.
func TestPrehashIsOfTheFileRead(t *testing.T) {
	dir := t.TempDir()
	manifestOf := func() {
		sum := func(name string) string {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			s := sha256.Sum256(b)
			return hex.EncodeToString(s[:])
		}
		man := fmt.Sprintf(`{"outputs": {"dataset": {"sha256": %q}, "rejected": {"sha256": %q}}}`, sum(DatasetFile), sum(RejectedFile))
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(man), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(pre *Prehash) []string {
		t.Helper()
		p, err := ReadPriorWith(dir, nil, pre)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		return p.Problems
	}
	// The commit's fingerprints would spare the hash this test is about.
	forget := func() { os.Remove(filepath.Join(dir, StateDir, fingerprintFile)) }
	if err := commitRun(dir, "A"); err != nil {
		t.Fatal(err)
	}
	forget()
	manifestOf()
	pre := StartPrehash(dir)
	if probs := read(pre); len(probs) != 0 {
		t.Errorf("prehashed, unchanged: %v", probs)
	}
	f, err := os.Open(filepath.Join(dir, DatasetFile))
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := pre.sum(DatasetFile, f); !ok || h.sum != hashFile(f).sum {
		t.Errorf("the prehash of the file read: %v, %v", h, ok)
	}
	f.Close()

	pre = StartPrehash(dir)
	if err := commitRun(dir, "B"); err != nil {
		t.Fatal(err)
	}
	forget()
	manifestOf()
	if probs := read(pre); len(probs) != 0 {
		t.Errorf("run A's files prehashed, run B's read: %v", probs)
	}

	pre = StartPrehash(dir)
	for _, ph := range pre.files {
		<-ph.done
	}
	g, err := os.OpenFile(filepath.Join(dir, DatasetFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString(`{"id": "added by hand"}` + "\n")
	g.Close()
	if probs := strings.Join(read(pre), "\n"); !strings.Contains(probs, DatasetFile+" does not match the sha256") {
		t.Errorf("edited after it was prehashed: problems %q", probs)
	}
}

// FuzzFastHead: a head read without the decoder is the head the decoder
// reads.
func FuzzFastHead(f *testing.F) {
	for _, s := range []string{
		`{"id": "v1_checklist_budgeting_000000", "category": "budgeting", "difficulty": "easy"}`,
		`{"id": "v1_x_1", "reason_codes": ["missing_verification_requirements"], "contract": {}}`,
		`{"id": "a", "reason_codes": ["x", "y"], "gates": {}}`,
		`{"id": "a", "reason_codes": []}`,
		`{"id": "é", "category": "c"}`,
		`{"id": "a\"b", "category": "c"}`,
		`{"id": "a", "reason_codes": ["x",  "y"]}`,
		`{"id": "", "category": "c"}`,
		`{"id": "a", "category": null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, ok := fastHead(line)
		if !ok {
			return
		}
		slow, err := decodeHead(line)
		if err != nil || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %#v, decoder %#v, %v", line, fast, slow, err)
		}
	})
}
