package engine_test

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgrules/pgrules"
	"github.com/pgrules/pgrules/engine"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	_ "modernc.org/sqlite"
)

// A rerun of the same inputs finds its answers by remembered prompt keys,
// skips the schemas for answers that passed them and the word lists for
// answers they searched: the outputs are the same bytes, and nothing is
// asked.
func TestRerunRemembersPromptKeysAndSchemaVerdicts(t *testing.T) {
	e := newEnv(t, corpus{n: 16, verdict: map[int]string{4: "reject"}})
	e.teacher.kinds = map[string]string{sampleID(2): "garbage", sampleID(7): "overconfident"}
	first := e.mustRun(nil)
	if first.Memo != (engine.MemoUse{}) {
		t.Errorf("a first run used memos: %+v", first.Memo)
	}
	dataset, rejected := e.bytesOf(output.DatasetFile), e.bytesOf(output.RejectedFile)
	calls := e.teacher.calls.Load()

	again := e.mustRun(nil)
	// 15 samples asked the teacher (one critique rejects); 14 answers
	// parse, pass the schemas and were searched (one is garbage).
	if want := (engine.MemoUse{PromptKeys: 15, SchemaVerdicts: 14, WordListHits: 14}); again.Memo != want {
		t.Errorf("rerun used %+v, want %+v", again.Memo, want)
	}
	if got := e.teacher.calls.Load(); got != calls {
		t.Errorf("rerun made %d teacher calls", got-calls)
	}
	if !bytes.Equal(e.bytesOf(output.DatasetFile), dataset) || !bytes.Equal(e.bytesOf(output.RejectedFile), rejected) {
		t.Error("the rerun's records differ from the first run's")
	}
}

// A prompt key is remembered for exact input bytes and template: change
// one draft, or the template, and the prompts are rendered again — the
// changed sample is asked, not answered with its old draft's answer.
func TestRememberedPromptKeysFollowTheInputsAndTemplate(t *testing.T) {
	e := newEnv(t, corpus{n: 8})
	e.mustRun(nil)
	calls := e.teacher.calls.Load()

	src, err := os.ReadFile(e.paths.Drafts)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(src, []byte("draft answer for "+sampleID(3)), []byte("a better draft for "+sampleID(3)), 1)
	if bytes.Equal(edited, src) {
		t.Fatal("the corpus no longer has the draft this test edits")
	}
	if err := os.WriteFile(e.paths.Drafts, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	res := e.mustRun(nil)
	if got := e.teacher.calls.Load() - calls; got != 1 {
		t.Errorf("after one draft changed, %d teacher calls, want 1 (that sample's new prompt)", got)
	}
	if res.Memo.PromptKeys != 0 {
		t.Errorf("%d prompt keys remembered for inputs that changed", res.Memo.PromptKeys)
	}

	tmplPath := filepath.Join(t.TempDir(), "refine.txt")
	base, err := pgrules.Defaults.ReadFile("prompts/refine.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmplPath, append(base, []byte("\nAnswer in British English.\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := prompt.Load(nil, tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	calls = e.teacher.calls.Load()
	e.mustRun(func(_ *engine.Options, d *engine.Deps) { d.Template = tmpl })
	if got := e.teacher.calls.Load() - calls; got != 8 {
		t.Errorf("after the template changed, %d teacher calls, want 8", got)
	}
}

// A schema verdict holds for one answer text under one set of schemas:
// a stricter schema, or another answer stored under the same key, is
// checked again.
func TestRememberedSchemaVerdictsFollowTheSchemasAndTheAnswer(t *testing.T) {
	e := newEnv(t, corpus{n: 8})
	e.mustRun(nil)
	if acc, _ := e.outputs(); len(acc) != 8 {
		t.Fatalf("%d accepted, want 8", len(acc))
	}

	// The checklist schema now also requires a field no answer has.
	dir := t.TempDir()
	gates, err := os.ReadFile(filepath.Join("..", "gates.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "gates.yaml"), gates, 0o644)
	for _, f := range []string{"schemas/v0/response_envelope.schema.json", "schemas/v1/checklist.payload.schema.json", "schemas/v1/itinerary.payload.schema.json", "schemas/v1/decision_tree.payload.schema.json", "schemas/v1/procedure.payload.schema.json"} {
		b, err := pgrules.Defaults.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f, "checklist") {
			b = bytes.Replace(b, []byte(`"required": [`), []byte(`"required": ["issuing_authority", `), 1)
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	strict := loadRules(t, filepath.Join(dir, "gates.yaml"))
	res := e.mustRun(func(_ *engine.Options, d *engine.Deps) { d.Rules = strict })
	if got := res.Stats.RejectionReasons["payload_invalid"]; got != 2 {
		t.Errorf("under the stricter checklist schema, %d payload_invalid, want the 2 checklists (%+v)", got, res.Stats.RejectionReasons)
	}
	if res.Memo.SchemaVerdicts != 0 {
		t.Errorf("%d schema verdicts remembered across a schema change", res.Memo.SchemaVerdicts)
	}

	// --refresh stores another answer under sample 1's key: one whose
	// payload lacks its required title. A plain rerun must judge that
	// text, not the verdict remembered for the old one.
	e.teacher.kinds = map[string]string{sampleID(1): "notitle"}
	e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Refresh = true })
	res = e.mustRun(nil)
	if got := res.Stats.RejectionReasons["payload_invalid"]; got != 1 {
		t.Errorf("after the answer under one key changed, %d payload_invalid, want 1 (%+v)", got, res.Stats.RejectionReasons)
	}
	if res.Memo.SchemaVerdicts != 7 {
		t.Errorf("%d schema verdicts remembered, want the 7 unchanged answers'", res.Memo.SchemaVerdicts)
	}
}

// Word-list hits hold for one answer text under one set of lists: an
// edited list searches every answer again, and its hits are what the
// gates see.
func TestRememberedHitsFollowTheLists(t *testing.T) {
	e := newEnv(t, corpus{n: 8})
	e.teacher.kinds = map[string]string{sampleID(3): "overconfident"}
	e.mustRun(nil)
	if res := e.mustRun(nil); res.Memo.WordListHits != 8 || res.Stats.RejectionReasons["overconfident_time_sensitive"] != 1 {
		t.Fatalf("rerun: %d hits remembered, reasons %v; want 8 and the one overconfident answer", res.Memo.WordListHits, res.Stats.RejectionReasons)
	}

	// "book flights" is in every answer's next steps; every answer is
	// time-sensitive (visa rules).
	dir := t.TempDir()
	gates, err := os.ReadFile(filepath.Join("..", "gates.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := pgrules.Defaults.ReadFile("keywords/overconfidence.txt")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "keywords"), 0o755)
	os.WriteFile(filepath.Join(dir, "gates.yaml"), gates, 0o644)
	os.WriteFile(filepath.Join(dir, "keywords", "overconfidence.txt"), append(list, "book flights\n"...), 0o644)
	edited := loadRules(t, filepath.Join(dir, "gates.yaml"))
	withEdited := func(_ *engine.Options, d *engine.Deps) { d.Rules = edited }
	res := e.mustRun(withEdited)
	if res.Memo.WordListHits != 0 {
		t.Errorf("%d hits remembered across an edit of the lists", res.Memo.WordListHits)
	}
	if got := res.Stats.RejectionReasons["overconfident_time_sensitive"]; got != 8 {
		t.Errorf("with \"book flights\" overconfident, %d answers rejected for it, want 8 (%v)", got, res.Stats.RejectionReasons)
	}
	dataset, rejected := e.bytesOf(output.DatasetFile), e.bytesOf(output.RejectedFile)
	if !bytes.Contains(rejected, []byte(`"overconfident_phrases": [{"path": "$.next_steps[0]"`)) {
		t.Errorf("the rejections do not name the new phrase where it is:\n%s", head(rejected, 600))
	}
	res = e.mustRun(withEdited)
	if res.Memo.WordListHits != 8 {
		t.Errorf("a rerun under the edited lists remembered %d hits, want 8", res.Memo.WordListHits)
	}
	if !bytes.Equal(e.bytesOf(output.DatasetFile), dataset) || !bytes.Equal(e.bytesOf(output.RejectedFile), rejected) {
		t.Error("records from remembered hits differ from the run that found them")
	}
}

func head(b []byte, n int) []byte { return b[:min(n, len(b))] }

// Answers are read ahead of the workers, but a sample whose answer was
// not there then looks again when it gets its turn: an answer stored in
// between (by another process here) is found, not paid for again.
func TestAnAnswerStoredAfterTheReadAheadIsFound(t *testing.T) {
	e := newEnv(t, corpus{n: 8})
	one := func(o *engine.Options, _ *engine.Deps) { o.Concurrency = 1 }
	e.mustRun(one)
	db, err := sql.Open("sqlite", "file:"+e.cache.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A row is found by its teacher's request id, which the fake teacher
	// makes of the sample id: rows are numbered in key order within a
	// commit, not in the order the samples were asked.
	const cols = `key, provider, model, teacher, text, stored_at, passed, hits`
	ofSample := `CAST(teacher AS TEXT) LIKE '%"request_id":"req-' || ? || '"%'`
	row := func(sample int) []any {
		v := make([]any, 8)
		ptrs := make([]any, 8)
		for i := range v {
			ptrs[i] = &v[i]
		}
		if err := db.QueryRow(`SELECT `+cols+` FROM answers WHERE `+ofSample, sampleID(sample)).Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		return v
	}
	fifth := row(5)
	for _, sample := range []int{1, 5} {
		if res, err := db.Exec(`DELETE FROM answers WHERE `+ofSample, sampleID(sample)); err != nil {
			t.Fatal(err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("sample %d: %d rows deleted, want 1", sample, n)
		}
	}
	// Sample 5's answer comes back while sample 1 is asked: after the
	// read-ahead, which read all 8 before the first was judged.
	e.teacher.asked = func(id string) {
		if id == sampleID(1) {
			if _, err := db.Exec(`INSERT INTO answers (`+cols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, fifth...); err != nil {
				t.Error(err)
			}
		}
	}
	calls := e.teacher.calls.Load()
	res := e.mustRun(one)
	if got := e.teacher.calls.Load() - calls; got != 1 {
		t.Errorf("%d teacher calls, want 1 (sample 1's; sample 5's answer was back in the cache)", got)
	}
	if res.Memo.PromptKeys != 7 {
		t.Errorf("%d answers found by remembered keys, want 7", res.Memo.PromptKeys)
	}
}
