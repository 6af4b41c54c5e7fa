package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules"
	"github.com/pgrules/pgrules/engine"
	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/cache/cachetest"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/engine/stats"
	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/rules"
)

var payloadTypes = []string{"checklist", "itinerary", "decision_tree", "procedure"}

// corpus writes n joined samples; hooks let a test break some of them.
type corpus struct {
	n          int
	dropDraft  map[int]bool
	verdict    map[int]string
	extraLines map[string][]string // file name -> raw lines appended
}

func (c corpus) write(t *testing.T, dir string) inputs.Paths {
	t.Helper()
	var plan, drafts, crit bytes.Buffer
	enc := func(b *bytes.Buffer, v any) {
		line, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	for i := range c.n {
		id := sampleID(i)
		pt := payloadTypes[i%4]
		enc(&plan, map[string]any{
			"id": id, "payload_type": pt, "category": "entry_requirements", "difficulty": "medium",
			"region_tags": []string{"EU"}, "template_version": "teacher/v1", "template_name": pt + "_draft.txt",
			"prompt": "Plan a trip to Lisbon, sample " + id, "location": map[string]string{"country": "Portugal", "city": "Lisbon"},
		})
		if !c.dropDraft[i] {
			enc(&drafts, map[string]any{"id": id, "output_text": "draft answer for " + id, "prompt": "p", "contract": map[string]any{"overall_ok": false}})
		}
		v := c.verdict[i]
		if v == "" {
			v = "revise"
		}
		enc(&crit, map[string]any{"id": id, "draft_id": id, "critique": map[string]any{
			"verdict": v, "issues": []any{map[string]any{"type": "verification", "severity": "medium", "message": "add verification"}},
			"rewrite_instructions": []string{"Add verification steps", "Mention that fees change"},
		}})
	}
	files := map[string]*bytes.Buffer{"plan.jsonl": &plan, "drafts.jsonl": &drafts, "critiques.jsonl": &crit}
	for name, b := range files {
		for _, l := range c.extraLines[name] {
			b.WriteString(l + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return inputs.Paths{Plan: filepath.Join(dir, "plan.jsonl"), Drafts: filepath.Join(dir, "drafts.jsonl"), Critiques: filepath.Join(dir, "critiques.jsonl")}
}

func sampleID(i int) string { return fmt.Sprintf("v1_test_%04d", i) }

// answer builds a teacher answer valid for payload type pt. kind picks a
// flaw: "" valid, "overconfident", "noverify", "garbage", "notitle" (parses,
// fails the payload schema).
func answer(pt, kind string) string {
	payloads := map[string]any{
		"checklist":     map[string]any{"title": "Lisbon entry checklist", "groups": []any{map[string]any{"name": "Before you go", "items": []any{map[string]any{"text": "Check passport validity", "priority": "must"}}}}},
		"itinerary":     map[string]any{"title": "Two days in Lisbon", "trip_days": []any{map[string]any{"day": 1, "summary": "Old town", "items": []any{map[string]any{"time_block": "morning", "activity": "Walk Alfama"}}}}},
		"decision_tree": map[string]any{"title": "Do I need a visa?", "nodes": []any{map[string]any{"id": "start", "type": "question", "text": "Are you an EU citizen?"}}},
		"procedure":     map[string]any{"title": "Apply for a visa", "steps": []any{map[string]any{"step": 1, "instruction": "Gather documents"}}},
	}
	env := map[string]any{
		"summary":            "Entry requirements for Lisbon; visa rules depend on nationality.",
		"assumptions":        []string{"Traveller holds a non-EU passport"},
		"uncertainty_notes":  "Visa rules and fees change; confirm with official sources before travel.",
		"next_steps":         []string{"Book flights"},
		"verification_steps": []string{"Check the Portuguese consulate website", "Confirm fees with the airline"},
		"payload_type":       pt,
		"payload":            payloads[pt],
	}
	switch kind {
	case "overconfident":
		env["summary"] = "You will definitely get a visa on arrival; it is guaranteed."
	case "noverify":
		env["verification_steps"] = []string{}
		env["uncertainty_notes"] = ""
	case "garbage":
		return `{"summary": "truncated`
	case "notitle":
		delete(payloads[pt].(map[string]any), "title")
	}
	b, _ := json.Marshal(env)
	return string(b)
}

// fakeTeacher is the in-process Generator for engine tests; the real
// plugin path is covered by the CLI tests in cmd/pgrules.
type fakeTeacher struct {
	calls   atomic.Int64
	kinds   map[string]string // id -> answer kind
	delay   func(id string) time.Duration
	mu      sync.Mutex
	prompts map[string]int
	fail    map[string]error
	block   chan struct{} // when set, calls after blockAfter wait on it or ctx
	after   int64
	// asked, when set, is called with each sample id before it is answered.
	asked func(id string)
}

func (f *fakeTeacher) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	n := f.calls.Add(1)
	f.mu.Lock()
	if f.prompts == nil {
		f.prompts = map[string]int{}
	}
	f.prompts[req.Prompt]++
	f.mu.Unlock()
	if f.block != nil && n > f.after {
		select {
		case <-f.block:
		case <-ctx.Done():
			return providers.Response{}, ctx.Err()
		}
	}
	if f.asked != nil {
		f.asked(req.ID)
	}
	if f.delay != nil {
		time.Sleep(f.delay(req.ID))
	}
	if err := f.fail[req.ID]; err != nil {
		return providers.Response{}, err
	}
	return providers.Response{
		Text: answer(req.PayloadType, f.kinds[req.ID]), Provider: "fake", SelectedModel: "fake-1", ChosenModel: "fake-1",
		AttemptedModels: []string{"fake-1"}, RequestID: "req-" + req.ID, LatencySeconds: 0.25,
		Usage: &providers.Usage{PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150},
	}, nil
}

type env struct {
	t       *testing.T
	paths   inputs.Paths
	out     string
	rules   *rules.Rules
	tmpl    *prompt.Template
	cache   *cache.Cache
	teacher *fakeTeacher
}

func newEnv(t *testing.T, c corpus) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, paths: c.write(t, dir), out: filepath.Join(dir, "out"), teacher: &fakeTeacher{}}
	e.rules = loadRules(t, filepath.Join("..", "gates.yaml"))
	var err error
	if e.tmpl, err = prompt.Load(pgrules.Defaults, "prompts/refine.txt"); err != nil {
		t.Fatal(err)
	}
	if e.cache, err = cache.Open(filepath.Join(dir, "cache.db"), cache.Options{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cache.Close() })
	return e
}

func loadRules(t *testing.T, path string) *rules.Rules {
	t.Helper()
	rs, err := rules.Load(path, rules.Options{Fallback: pgrules.Defaults})
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	return rs
}

var epoch = time.Date(2026, 1, 31, 8, 0, 0, 0, time.UTC)

func (e *env) run(ctx context.Context, mut func(*engine.Options, *engine.Deps)) (*engine.Result, error) {
	opt := engine.Options{Inputs: e.paths, OutDir: e.out, Mode: rules.ModeLenient, Concurrency: 4, Now: func() time.Time { return epoch }}
	d := engine.Deps{Rules: e.rules, Template: e.tmpl, System: "JSON only", Teacher: e.teacher, Provider: "fake", Identity: []byte(`{"models":["fake-1"]}`), Cache: e.cache, Log: zerolog.Nop()}
	if mut != nil {
		mut(&opt, &d)
	}
	return engine.Run(ctx, opt, d)
}

func (e *env) mustRun(mut func(*engine.Options, *engine.Deps)) *engine.Result {
	e.t.Helper()
	res, err := e.run(context.Background(), mut)
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return res
}

type record struct {
	ID          string   `json:"id"`
	ReasonCodes []string `json:"reason_codes"`
	Contract    struct {
		Error string `json:"error"`
	} `json:"contract"`
}

func readRecords(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: unparseable line %q: %v", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func (e *env) outputs() (acc, rej []record) {
	return readRecords(e.t, filepath.Join(e.out, output.DatasetFile)), readRecords(e.t, filepath.Join(e.out, output.RejectedFile))
}

func (e *env) bytesOf(name string) []byte {
	b, err := os.ReadFile(filepath.Join(e.out, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func TestEveryIDLandsExactlyOnce(t *testing.T) {
	c := corpus{
		n:         12,
		dropDraft: map[int]bool{3: true},
		verdict:   map[int]string{5: "reject", 6: "pass"},
		extraLines: map[string][]string{
			"critiques.jsonl": {`{"id": "v1_test_0001", "critique": {"verdict": "pass"}}`, `{"id": "broken`},
			"drafts.jsonl":    {`{"id": "v1_orphan_draft", "output_text": "x"}`},
			"plan.jsonl":      {`{"id": "v1_bad_types", "payload_type": "checklist", "region_tags": "EU"}`, ``},
		},
	}
	e := newEnv(t, c)
	e.teacher.kinds = map[string]string{sampleID(7): "overconfident", sampleID(8): "noverify", sampleID(9): "garbage"}
	res := e.mustRun(nil)

	acc, rej := e.outputs()
	seen := map[string]int{}
	for _, r := range append(append([]record{}, acc...), rej...) {
		seen[r.ID]++
	}
	want := []string{"v1_orphan_draft", "v1_bad_types"}
	for i := range c.n {
		want = append(want, sampleID(i))
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("id %s appears %d times in the outputs, want exactly 1", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("outputs hold %d ids, want %d: %v", len(seen), len(want), seen)
	}
	reasons := map[string][]string{}
	for _, r := range rej {
		reasons[r.ID] = r.ReasonCodes
	}
	for id, wantReason := range map[string]string{
		sampleID(3): "missing_inputs", "v1_orphan_draft": "missing_inputs", "v1_bad_types": "invalid_input",
		sampleID(5): "critique_reject", sampleID(7): "overconfident_time_sensitive",
		sampleID(8): "missing_verification_requirements", sampleID(9): "parse_failed",
	} {
		if !contains(reasons[id], wantReason) {
			t.Errorf("%s: reason codes %v, want %s", id, reasons[id], wantReason)
		}
	}
	// Teacher calls: every sample except missing/invalid/critique-reject.
	if got, want := e.teacher.calls.Load(), int64(c.n-2); got != want {
		t.Errorf("teacher calls = %d, want %d (no call for a missing draft or a rejecting critique)", got, want)
	}
	s := res.Stats.Summary
	if s.TotalInputs != len(want) || s.Accepted+s.Rejected != s.TotalInputs || s.Accepted != len(acc) {
		t.Errorf("summary %+v does not add up to %d inputs / %d accepted", s, len(want), len(acc))
	}
	var msgs []string
	for _, p := range res.Problems {
		msgs = append(msgs, p.Error())
	}
	joined := strings.Join(msgs, "\n")
	for _, frag := range []string{"critiques.jsonl:13: duplicate id \"v1_test_0001\" (first seen on line 2)", "critiques.jsonl:14:", "malformed JSON", "plan.jsonl:13: field \"region_tags\""} {
		if !strings.Contains(joined, frag) {
			t.Errorf("problems do not mention %q:\n%s", frag, joined)
		}
	}
	if res.Stats.Verdicts["reject"] != 1 || res.Stats.Verdicts["pass"] != 1 {
		t.Errorf("verdicts %v: the nested critique shape must be read (want 1 reject, 1 pass)", res.Stats.Verdicts)
	}
}

func TestOutputsAreInInputOrderAndDeterministic(t *testing.T) {
	e := newEnv(t, corpus{n: 60})
	e.teacher.delay = func(id string) time.Duration { return time.Duration(rand.IntN(4)) * time.Millisecond }
	e.teacher.kinds = map[string]string{sampleID(10): "overconfident", sampleID(20): "noverify"}
	e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Concurrency = 8 })
	acc, rej := e.outputs()
	for _, recs := range [][]record{acc, rej} {
		for i := 1; i < len(recs); i++ {
			if recs[i-1].ID >= recs[i].ID {
				t.Fatalf("records out of input order: %s before %s", recs[i-1].ID, recs[i].ID)
			}
		}
	}
	first := map[string][]byte{}
	for _, f := range []string{output.DatasetFile, output.RejectedFile, output.StatsFile} {
		first[f] = e.bytesOf(f)
	}
	calls := e.teacher.calls.Load()
	// Second run, answers from the cache: same bytes, no new calls.
	res := e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Concurrency = 3 })
	if got := e.teacher.calls.Load(); got != calls {
		t.Errorf("second run made %d teacher calls, want 0", got-calls)
	}
	if res.Stats.Cache.Hits != 60 {
		t.Errorf("cache hits = %d, want 60", res.Stats.Cache.Hits)
	}
	for _, f := range []string{output.DatasetFile, output.RejectedFile} {
		if !bytes.Equal(first[f], e.bytesOf(f)) {
			t.Errorf("%s differs between two runs with the same inputs, cache and rules", f)
		}
	}
}

func TestResumeFinishesWithoutRepeatingCalls(t *testing.T) {
	full := newEnv(t, corpus{n: 20})
	full.mustRun(nil)
	want := full.bytesOf(output.DatasetFile)

	e := newEnv(t, corpus{n: 20})
	e.mustRun(func(o *engine.Options, d *engine.Deps) { o.Limit = 7; d.Cache = nil })
	if acc, rej := e.outputs(); len(acc)+len(rej) != 7 {
		t.Fatalf("limited run wrote %d records, want 7", len(acc)+len(rej))
	}
	res := e.mustRun(func(o *engine.Options, d *engine.Deps) { o.Resume = true; d.Cache = nil })
	if got := e.teacher.calls.Load(); got != 20 {
		t.Errorf("teacher calls over both runs = %d, want 20 (resume must not repeat finished samples)", got)
	}
	if res.Stats.Summary.Resumed != 7 || res.Stats.Summary.TotalInputs != 20 {
		t.Errorf("summary %+v: want 7 resumed of 20 (stats describe the whole files)", res.Stats.Summary)
	}
	if got := e.bytesOf(output.DatasetFile); !bytes.Equal(got, want) {
		t.Errorf("limit+resume dataset differs from an uninterrupted run")
	}
}

// committedThenBlocked commits a run of 5 of the 30 samples, and makes the
// teacher of the next run hold every call after its 15th until
// e.teacher.block closes; it returns the committed files.
func (e *env) committedThenBlocked() map[string][]byte {
	e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Limit = 5 })
	e.teacher.block = make(chan struct{})
	e.teacher.after = 15
	return e.snapshot()
}

// askedTwice counts the prompts the teacher was asked more than once, and
// returns how many distinct prompts it was asked.
func (e *env) askedTwice() (twice, distinct int) {
	e.teacher.mu.Lock()
	defer e.teacher.mu.Unlock()
	for _, n := range e.teacher.prompts {
		if n > 1 {
			twice++
		}
	}
	return twice, len(e.teacher.prompts)
}

func TestInterruptCommitsNothingAndRerunPaysOnlyForTheRest(t *testing.T) {
	e := newEnv(t, corpus{n: 30})
	before := e.committedThenBlocked()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.teacher.calls.Load() <= 15 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := e.run(ctx, func(o *engine.Options, _ *engine.Deps) { o.Concurrency = 2 })
	if !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("run error = %v, want ErrInterrupted", err)
	}
	if res.Committed || res.Remaining == 0 {
		t.Errorf("interrupted run: committed=%v remaining=%d", res.Committed, res.Remaining)
	}
	e.assertUnchanged(before, "an interrupted run")

	// The rerun pays only for samples whose answer never arrived: at most
	// the 2 blocked in flight were asked twice.
	e.teacher.block = nil
	e.mustRun(nil)
	if twice, distinct := e.askedTwice(); twice > 2 || distinct != 30 {
		t.Errorf("%d prompts asked twice (want ≤ 2 in flight at the interrupt); %d distinct prompts, want 30", twice, distinct)
	}
}

// A drain (the first Ctrl-C) starts no new sample and lets the calls in
// flight finish, so every call paid for reaches the cache: the rerun asks
// for no prompt twice. The run still commits nothing.
func TestADrainedRunFinishesTheCallsInFlightAndCommitsNothing(t *testing.T) {
	e := newEnv(t, corpus{n: 30})
	before := e.committedThenBlocked()
	drain := make(chan struct{})
	go func() {
		for e.teacher.calls.Load() < 17 { // 15 answered, 2 in flight
			time.Sleep(time.Millisecond)
		}
		close(drain)
		time.Sleep(50 * time.Millisecond) // the answers arrive after the drain
		close(e.teacher.block)
	}()
	res, err := e.run(context.Background(), func(o *engine.Options, _ *engine.Deps) { o.Concurrency = 2; o.Drain = drain })
	if !errors.Is(err, engine.ErrInterrupted) {
		t.Fatalf("run error = %v, want ErrInterrupted", err)
	}
	if res.Committed || res.Remaining == 0 {
		t.Errorf("drained run: committed=%v remaining=%d", res.Committed, res.Remaining)
	}
	if got := e.teacher.calls.Load(); got != 17 {
		t.Errorf("%d calls, want the 17 made before the drain and no more", got)
	}
	e.assertUnchanged(before, "a drained run")

	e.teacher.block = nil
	e.mustRun(nil)
	if twice, distinct := e.askedTwice(); twice != 0 || distinct != 30 {
		t.Errorf("%d prompts asked twice (the calls in flight at the drain were not cached); %d distinct prompts, want 30", twice, distinct)
	}
}

// A drain when the samples in flight are the last ones leaves the run
// whole: it commits.
func TestADrainAfterTheLastSampleStartedCommits(t *testing.T) {
	e := newEnv(t, corpus{n: 3})
	e.teacher.block = make(chan struct{})
	drain := make(chan struct{})
	go func() {
		for e.teacher.calls.Load() < 3 { // every sample is in flight
			time.Sleep(time.Millisecond)
		}
		close(drain)
		time.Sleep(20 * time.Millisecond)
		close(e.teacher.block)
	}()
	res, err := e.run(context.Background(), func(o *engine.Options, _ *engine.Deps) { o.Concurrency = 4; o.Drain = drain })
	if err != nil || !res.Committed || res.Stats.Summary.TotalInputs != 3 {
		t.Fatalf("err = %v, committed = %v: a drain with nothing left to start must let the run commit", err, res != nil && res.Committed)
	}
}

// A drain before any sample starts stops the run at once, as a cancel does.
func TestADrainBeforeTheSamplesStopsTheRun(t *testing.T) {
	e := newEnv(t, corpus{n: 10})
	drain := make(chan struct{})
	close(drain)
	res, err := e.run(context.Background(), func(o *engine.Options, _ *engine.Deps) { o.Drain = drain })
	if !errors.Is(err, engine.ErrInterrupted) || res == nil || res.Committed {
		t.Fatalf("err = %v, res = %+v: want an interrupted run", err, res)
	}
	if got := e.teacher.calls.Load(); got != 0 {
		t.Errorf("%d teacher calls after a drain before the samples", got)
	}
}

// snapshot is the four committed files' bytes.
func (e *env) snapshot() map[string][]byte {
	out := map[string][]byte{}
	for _, f := range []string{output.DatasetFile, output.RejectedFile, output.StatsFile, output.ManifestFile} {
		out[f] = e.bytesOf(f)
	}
	return out
}

func (e *env) assertUnchanged(before map[string][]byte, what string) {
	e.t.Helper()
	for f, b := range before {
		if !bytes.Equal(b, e.bytesOf(f)) {
			e.t.Errorf("%s changed the committed %s", what, f)
		}
	}
}

func TestStopErrorKeepsPreviousOutputs(t *testing.T) {
	e := newEnv(t, corpus{n: 8})
	e.mustRun(nil)
	before := e.snapshot()
	bad := &providers.Error{Kind: providers.KindFatal, Code: "http_401", StatusCode: 401, Message: "invalid API key: check OPENROUTER_API_KEY"}
	e.teacher.fail = map[string]error{}
	for i := range 8 {
		e.teacher.fail[sampleID(i)] = bad
	}
	caller := teacher.New(e.teacher, teacher.Policy{MaxRetries: 0, FatalAfter: 3}, zerolog.Nop())
	_, err := e.run(context.Background(), func(o *engine.Options, d *engine.Deps) { d.Teacher = caller; d.Cache = nil; o.Concurrency = 1 })
	var ue *engine.UnhealthyError
	if !errors.As(err, &ue) || ue.Health.Stopped == "" || !strings.Contains(err.Error(), "OPENROUTER_API_KEY") {
		t.Fatalf("err = %v, want an unhealthy run stopped early, naming what to fix", err)
	}
	if got := e.teacher.calls.Load(); got != 8+3 {
		t.Errorf("teacher calls = %d, want 8 + 3 (stop after the first 3 fatal failures)", got)
	}
	e.assertUnchanged(before, "a run stopped early")
}

func TestUnhealthyRunKeepsCommittedOutputsAndStashesItsOwn(t *testing.T) {
	e := newEnv(t, corpus{n: 20})
	e.mustRun(nil)
	before := e.snapshot()

	// A teacher outage: 3 of 20 answers fail (15 % > 10 %).
	outage := &providers.Error{Kind: providers.KindRetryable, Code: "http_500", StatusCode: 500, Message: "upstream down"}
	e.teacher.fail = map[string]error{sampleID(1): outage, sampleID(2): outage, sampleID(3): outage}
	res, err := e.run(context.Background(), func(_ *engine.Options, d *engine.Deps) { d.Cache = nil })
	var ue *engine.UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnhealthyError", err)
	}
	h := ue.Health
	if h.Asked != 20 || h.TeacherFailures != 3 || len(h.Failures) != 1 || h.Failures[0].Code != "http_500" || h.Failures[0].Message != "upstream down" {
		t.Errorf("health = %+v", h)
	}
	if !strings.Contains(err.Error(), "3 of 20 teacher answers failed") || !strings.Contains(err.Error(), "http_500 ×3: upstream down") {
		t.Errorf("message does not give counts and the most common error: %v", err)
	}
	if res.Committed {
		t.Error("an unhealthy run was committed")
	}
	e.assertUnchanged(before, "an unhealthy run")
	stashed := readRecords(t, filepath.Join(ue.StashDir, output.RejectedFile))
	if n := len(stashed); n < 3 {
		t.Errorf("the stash holds %d rejected records, want the 3 failures at least", n)
	}
	for _, f := range []string{output.DatasetFile, output.StatsFile, output.ManifestFile} {
		if _, err := os.Stat(filepath.Join(ue.StashDir, f)); err != nil {
			t.Errorf("stash lacks %s: %v", f, err)
		}
	}

	// 2 of 20 (10 %) is not more than the limit: healthy.
	delete(e.teacher.fail, sampleID(3))
	if res := e.mustRun(func(_ *engine.Options, d *engine.Deps) { d.Cache = nil }); !res.Committed || !res.Health.Healthy {
		t.Errorf("10 %% failures: committed=%v health=%+v", res.Committed, res.Health)
	}

	// --allow-unhealthy commits and says so in the manifest.
	zero := 0.0
	res, err = e.run(context.Background(), func(o *engine.Options, d *engine.Deps) {
		d.Cache = nil
		o.MaxTeacherFailureRate, o.AllowUnhealthy = &zero, true
	})
	if err != nil || !res.Committed || res.Health.Healthy {
		t.Fatalf("allow-unhealthy: err=%v committed=%v healthy=%v", err, res.Committed, res.Health.Healthy)
	}
	if !bytes.Contains(e.bytesOf(output.ManifestFile), []byte(`"healthy": false`)) {
		t.Error("the manifest of a committed unhealthy run does not say it was unhealthy")
	}
}

func TestGateErrorMakesTheRunUnhealthy(t *testing.T) {
	e := newEnv(t, corpus{n: 6})
	e.mustRun(nil)
	before := e.snapshot()
	calls := e.teacher.calls.Load()
	src, err := os.ReadFile(filepath.Join("..", "gates.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Compiles (response is a dyn map) but fails at run time on every answer.
	edited := strings.Replace(string(src), "expression: contract.overall_ok", "expression: contract.overall_ok && response.metadata.source == \"x\"", 1)
	path := filepath.Join(t.TempDir(), "gates.yaml")
	os.WriteFile(path, []byte(edited), 0o644)
	_, err = e.run(context.Background(), func(_ *engine.Options, d *engine.Deps) { d.Rules = loadRules(t, path) })
	var ue *engine.UnhealthyError
	if !errors.As(err, &ue) || ue.Health.GateErrors != 6 || !strings.Contains(err.Error(), "no such key") {
		t.Fatalf("err = %v, want unhealthy with 6 gate errors naming the CEL error", err)
	}
	e.assertUnchanged(before, "a run with gate errors")
	if got := e.teacher.calls.Load(); got != calls {
		t.Errorf("re-gate made %d teacher calls", got-calls)
	}
}

func TestResumeAsksAgainForTeacherFailures(t *testing.T) {
	e := newEnv(t, corpus{n: 10})
	e.teacher.fail = map[string]error{sampleID(4): &providers.Error{Kind: providers.KindFailed, Code: "http_400", StatusCode: 400, Message: "bad request"}}
	e.teacher.kinds = map[string]string{sampleID(6): "overconfident"}
	e.mustRun(nil)
	if got := e.teacher.calls.Load(); got != 10 {
		t.Fatalf("calls = %d", got)
	}
	e.teacher.fail = nil
	res := e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Resume = true })
	// Only the failed sample is asked again; the gate decision on 6 is kept.
	if got := e.teacher.calls.Load(); got != 11 {
		t.Errorf("calls after --resume = %d, want 11 (the teacher failure asked again, nothing else)", got)
	}
	if res.Stats.Summary.Resumed != 9 || res.Stats.Summary.Processed != 1 {
		t.Errorf("summary %+v: want 9 kept, 1 processed", res.Stats.Summary)
	}
	acc, rej := e.outputs()
	ids := map[string]bool{}
	for _, r := range acc {
		ids[r.ID] = true
	}
	if !ids[sampleID(4)] || len(acc) != 9 || len(rej) != 1 || rej[0].ID != sampleID(6) {
		t.Errorf("after resume: %d accepted (has %s: %v), rejected %v", len(acc), sampleID(4), ids[sampleID(4)], rej)
	}
}

// A resume asks again only for the teacher failures, so its failure rate
// over its own calls alone says little: the 1 failure of 20 samples,
// failing again, was "1 of 1 failed" and the resume never committed. The
// rate is over the answers the outputs would hold, kept ones included.
func TestResumeJudgesHealthOverTheAnswersTheOutputsHold(t *testing.T) {
	e := newEnv(t, corpus{n: 20})
	bad := &providers.Error{Kind: providers.KindFailed, Code: "content_filter", Message: "filtered"}
	e.teacher.fail = map[string]error{sampleID(3): bad, sampleID(8): bad}
	e.mustRun(nil) // 2 of 20: 10 %, not above the default 10 %
	res := e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Resume = true })
	if h := res.Health; !h.Healthy || h.Asked != 2 || h.KeptAnswered != 18 || h.TeacherFailures != 2 || h.FailureRate != 0.1 {
		t.Errorf("resume health %+v: want healthy, 2 asked, 18 kept answers, rate 0.1", h)
	}

	before := e.snapshot()
	five := 0.05
	_, err := e.run(context.Background(), func(o *engine.Options, _ *engine.Deps) { o.Resume, o.MaxTeacherFailureRate = true, &five })
	var ue *engine.UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("a resume whose outputs would hold 10 %% failures, above 5 %%: err %v, want unhealthy", err)
	}
	if want := "2 of 20 teacher answers failed (2 asked this run, 18 kept; 10.0% > max_teacher_failure_rate 5.0%)"; !strings.Contains(strings.Join(ue.Health.Reasons, "; "), want) {
		t.Errorf("reasons %q, want %q", ue.Health.Reasons, want)
	}
	e.assertUnchanged(before, "an unhealthy resume")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestRegatingChangesExactlyWhatTheGateImpliesWithoutCalls(t *testing.T) {
	e := newEnv(t, corpus{n: 24})
	e.teacher.kinds = map[string]string{sampleID(2): "overconfident", sampleID(5): "noverify"}
	e.mustRun(nil)
	accBefore, _ := e.outputs()
	calls := e.teacher.calls.Load()

	// The fake teacher's answers carry two verification steps: requiring
	// three must reject exactly the previously accepted ids, nothing else.
	src, err := os.ReadFile(filepath.Join("..", "gates.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "variables.verification_steps_count > 0", "variables.verification_steps_count >= 3", 1)
	if edited == string(src) {
		t.Fatal("gates.yaml no longer has the expression this test edits")
	}
	path := filepath.Join(t.TempDir(), "gates.yaml") // word lists and schemas come from the built-in copies
	os.WriteFile(path, []byte(edited), 0o644)
	res := e.mustRun(func(_ *engine.Options, d *engine.Deps) { d.Rules = loadRules(t, path) })

	if got := e.teacher.calls.Load(); got != calls {
		t.Errorf("re-gating made %d teacher calls, want 0", got-calls)
	}
	var want []string
	for _, r := range accBefore {
		want = append(want, r.ID)
	}
	got := res.Changes.NewlyRejected["missing_verification_requirements"]
	if strings.Join(got, ",") != strings.Join(want, ",") || res.Changes.Moved() != len(want) {
		t.Errorf("newly rejected = %v (moved %d), want exactly the %d previously accepted ids %v", got, res.Changes.Moved(), len(want), want)
	}
	if acc, _ := e.outputs(); len(acc) != 0 {
		t.Errorf("%d records still accepted", len(acc))
	}
}

// Two samples whose prompts are the same pay for one answer, although the
// second asks before the first's answer is committed to the cache (one
// worker: it comes microseconds after; commits come up to 100 ms after).
func TestASecondSampleWithTheSamePromptIsNotAskedAgain(t *testing.T) {
	e := newEnv(t, corpus{n: 5}) // samples 0 and 4 are both checklists
	for file, from := range map[string]string{e.paths.Plan: "sample " + sampleID(4), e.paths.Drafts: "draft answer for " + sampleID(4)} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		to := strings.Replace(from, sampleID(4), sampleID(0), 1)
		if !bytes.Contains(b, []byte(from)) {
			t.Fatalf("%s has no %q", file, from)
		}
		if err := os.WriteFile(file, bytes.Replace(b, []byte(from), []byte(to), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Concurrency = 1 })
	e.teacher.mu.Lock()
	defer e.teacher.mu.Unlock()
	if calls := e.teacher.calls.Load(); calls != 4 || len(e.teacher.prompts) != 4 {
		t.Errorf("%d calls for %d distinct prompts, want 4 for 4: %v", calls, len(e.teacher.prompts), e.teacher.prompts)
	}
}

// Answers the cache cannot store (another writer holds it past the
// timeout here; a full disk in life) do not stop a run: its records are
// right. But a rerun pays for them again, and the stats say how many.
func TestAnswersTheCacheCannotStoreAreCounted(t *testing.T) {
	e := newEnv(t, corpus{n: 12})
	path := filepath.Join(filepath.Dir(e.out), "held.db")
	c, err := cache.Open(path, cache.Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := cachetest.HoldWrites(t, path)
	res := e.mustRun(func(_ *engine.Options, d *engine.Deps) { d.Cache = c })
	if !res.Committed {
		t.Fatal("the run was not committed")
	}
	if got := res.Stats.Cache.NotStored; got != 12 {
		t.Errorf("not_stored = %d, want 12 (every answer)", got)
	}
	if !strings.Contains(res.NotStoredWhy, path) {
		t.Errorf("NotStoredWhy = %q, want the cache named", res.NotStoredWhy)
	}
	if !bytes.Contains(e.bytesOf(output.StatsFile), []byte(`"not_stored": 12`)) {
		t.Errorf("the stats file does not hold not_stored: %s", e.bytesOf(output.StatsFile))
	}
	// A run that fails says so too: its error is a LostAnswersError
	// around the cause, so no one is told the answers are cached.
	zero := 0.0
	e.teacher.fail = map[string]error{sampleID(0): errors.New("boom")}
	_, err = e.run(context.Background(), func(o *engine.Options, d *engine.Deps) { d.Cache = c; o.MaxTeacherFailureRate = &zero })
	var lost *engine.LostAnswersError
	var ue *engine.UnhealthyError
	if !errors.As(err, &lost) || lost.Lost != 11 || !errors.As(err, &ue) {
		t.Errorf("an unhealthy run whose answers were not stored: err = %v (%T), want a LostAnswersError of 11 around an UnhealthyError", err, err)
	}
	e.teacher.fail = nil
	release()
	res = e.mustRun(func(_ *engine.Options, d *engine.Deps) { d.Cache = c })
	if got := res.Stats.Cache.NotStored; got != 0 || bytes.Contains(e.bytesOf(output.StatsFile), []byte("not_stored")) {
		t.Errorf("a run whose answers were stored reports not_stored %d", got)
	}
}

// Accepted records whose response repeats an earlier one's are named in
// the stats, kept (resumed) records and fresh ones alike: the fake
// teacher answers every sample of a payload type alike.
func TestRepeatedResponsesAreNamedInTheStats(t *testing.T) {
	e := newEnv(t, corpus{n: 8})
	want := &stats.Duplicates{Records: 4, First: []stats.Duplicate{
		{ID: sampleID(4), SameAs: sampleID(0)}, {ID: sampleID(5), SameAs: sampleID(1)},
		{ID: sampleID(6), SameAs: sampleID(2)}, {ID: sampleID(7), SameAs: sampleID(3)},
	}}
	res := e.mustRun(nil)
	if got := res.Stats.DuplicateResponses; !reflect.DeepEqual(got, want) {
		t.Fatalf("duplicate_responses = %+v, want %+v", got, want)
	}
	full := e.bytesOf(output.StatsFile)

	e = newEnv(t, corpus{n: 8})
	e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Limit = 5 })
	res = e.mustRun(func(o *engine.Options, _ *engine.Deps) { o.Resume = true })
	if got := res.Stats.DuplicateResponses; !reflect.DeepEqual(got, want) {
		t.Errorf("after a resume (5 kept, 3 fresh): duplicate_responses = %+v, want %+v", got, want)
	}
	if !bytes.Contains(full, []byte(`"same_as": "`+sampleID(0)+`"`)) {
		t.Errorf("the stats file does not name the repeats:\n%s", full)
	}
}

// --resume after an upgrade keeps the records the old pgrules decided (a
// rerun without --resume judges them anew, from the cache): it is allowed,
// and said. The same version says nothing.
func TestResumeAfterAnUpgradeSaysWhoDecidedTheKeptRecords(t *testing.T) {
	e := newEnv(t, corpus{n: 10})
	e.mustRun(func(o *engine.Options, d *engine.Deps) {
		o.Limit = 4
		d.Manifest = &engine.Manifest{PgrulesVersion: "v1.0.0"}
	})
	resume := func(version string) string {
		var logs bytes.Buffer
		e.mustRun(func(o *engine.Options, d *engine.Deps) {
			o.Resume = true
			d.Manifest = &engine.Manifest{PgrulesVersion: version}
			d.Log = zerolog.New(&logs)
		})
		return logs.String()
	}
	if got := resume("v1.0.0"); strings.Contains(got, "were decided by pgrules") {
		t.Errorf("the same version warned: %s", got)
	}
	if got := resume("v1.1.0"); !strings.Contains(got, "the records this run keeps were decided by pgrules v1.0.0; this is pgrules v1.1.0") {
		t.Errorf("no word of the upgrade: %s", got)
	}
}
