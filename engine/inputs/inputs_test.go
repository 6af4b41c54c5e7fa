package inputs

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opens checks that the inputs p open (what refuses them is tested
// elsewhere) and closes them.
func opens(t *testing.T, name string, p Paths) {
	t.Helper()
	s, err := Open(context.Background(), p)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	s.Close()
}

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenJoinsByIDAndReportsBadLines(t *testing.T) {
	dir := t.TempDir()
	paths := Paths{
		Plan: write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","category":"safety","prompt":"P-a","region_tags":["EU"]}
{"id":"b","payload_type":"itinerary","prompt":"P-b"}

{"id":"c","payload_type":"procedure","region_tags":"EU"}
{"id":"a","payload_type":"checklist"}
  {"id": 7}
`),
		Drafts: write(t, dir, "drafts.jsonl", `{"id":"b","output_text":"draft b"}
{"id":"a","output_text":"draft a"}
{"id":"d","output_text":null}
{"id":"e","output_text":"orphan"
`),
		Critiques: write(t, dir, "crit.jsonl", `{"id":"a","draft_id":"a","critique":{"verdict":"revise","issues":[],"rewrite_instructions":["fix it"]}}
{"id":"b","verdict":"reject","issues":[{"type":"safety","severity":"high","message":"unsafe"}],"rewrite_instructions":[]}
{"id":"d","critique":null,"raw_critique_text":"oops"}
`),
	}
	s, err := Open(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := []string{"a", "b", "c", "d", "e"}; !reflect.DeepEqual(idsOf(s), want) {
		t.Errorf("IDs = %v, want %v (plan order, then ids only in other files)", idsOf(s), want)
	}
	var probs []string
	for _, p := range s.Problems() {
		probs = append(probs, p.Error())
	}
	joined := strings.Join(probs, "\n")
	for _, want := range []string{
		`plan.jsonl:4: field "region_tags": expected an array of strings, got JSON string`,
		`plan.jsonl:5: duplicate id "a" (first seen on line 1)`,
		`plan.jsonl:6: "id" must be a non-empty string, got 7`,
		`drafts.jsonl:4:32: malformed JSON (unexpected end of JSON input); sample "e" is rejected as invalid_input`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q; got:\n%s", want, joined)
		}
	}

	a, _ := loadID(t, s, "a")
	if a.Plan == nil || a.Plan.Prompt != "P-a" || *a.Draft.OutputText != "draft a" || a.Critique.Verdict() != "revise" {
		t.Errorf("sample a joined wrongly: %+v", a)
	}
	if a.Critique.body != nil {
		t.Error("loading a sample decoded its critique object; only the verdict is needed until Body is called")
	}
	if got := a.Critique.Body().RewriteInstructions; !reflect.DeepEqual(got, []string{"fix it"}) {
		t.Errorf("nested critique instructions = %v", got)
	}
	b, _ := loadID(t, s, "b")
	if b.Critique.Verdict() != "reject" || strings.Contains(string(b.Critique.Raw), `"id"`) {
		t.Errorf("flat critique: verdict %q raw %s", b.Critique.Verdict(), b.Critique.Raw)
	}
	c, _ := loadID(t, s, "c")
	if len(c.Invalid) != 1 || !strings.Contains(c.Invalid[0], "plan.jsonl:4") {
		t.Errorf("sample c Invalid = %v", c.Invalid)
	}
	d, _ := loadID(t, s, "d")
	if len(d.Missing) != 2 || !strings.Contains(d.Missing[1], "output_text null") || d.Critique.Verdict() != "failed" {
		t.Errorf("sample d: missing %v verdict %q", d.Missing, d.Critique.Verdict())
	}
	var none *CritiqueRecord
	if none.Verdict() != "missing" {
		t.Error("a sample with no critique must count as missing")
	}
}

func TestOpenUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(context.Background(), Paths{Plan: filepath.Join(dir, "nope.jsonl"), Drafts: dir})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "nope.jsonl") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
	plan := write(t, dir, "p.jsonl", "")
	_, err = Open(context.Background(), Paths{Plan: plan, Drafts: dir})
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestHostileInputs(t *testing.T) {
	dir := t.TempDir()
	plan := "\xEF\xBB\xBF" + `{"id":"bom","payload_type":"checklist","prompt":"P"}` + "\n" +
		`{"id":"utf8","payload_type":"checklist","prompt":"caf` + "\xff" + `"}` + "\n" +
		`{"id":"nul","payload_type":"checklist","prompt":"a` + "\x00" + `b"}` + "\n" +
		`{"id":"quote\"tab\tnl\n","payload_type":"checklist","prompt":"P"}` + "\n" +
		`{"id":"lone","payload_type":"checklist","prompt":"caf\u00e9 \ud83d\ude00 \ud800"}` + "\n"
	drafts := ""
	for _, id := range []string{"bom", "utf8", "nul", `quote\"tab\tnl\n`, "lone"} {
		drafts += `{"id":"` + id + `","output_text":"d"}` + "\n"
	}
	s, err := Open(context.Background(), Paths{Plan: write(t, dir, "plan.jsonl", plan), Drafts: write(t, dir, "drafts.jsonl", drafts)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := []string{"bom", "utf8", "nul", "quote\"tab\tnl\n", "lone"}; !reflect.DeepEqual(idsOf(s), want) {
		t.Fatalf("IDs = %q, want %q", idsOf(s), want)
	}
	if smp, _ := loadID(t, s, "bom"); smp.Plan == nil || len(smp.Invalid)+len(smp.Missing) != 0 {
		t.Errorf("a BOM before the first record lost it: %+v", smp)
	}
	utf, _ := loadID(t, s, "utf8")
	if len(utf.Invalid) != 1 || !strings.Contains(utf.Invalid[0], "plan.jsonl:2:54: invalid UTF-8 (byte 0xff)") {
		t.Errorf("invalid UTF-8: %v", utf.Invalid)
	}
	// A lone surrogate escape decodes to no character: named like invalid
	// UTF-8, never turned into U+FFFD in the record's prompt.
	lone, _ := loadID(t, s, "lone")
	if len(lone.Invalid) != 1 || !strings.Contains(lone.Invalid[0], `plan.jsonl:5:74: a lone surrogate escape (\ud800: half of a UTF-16 pair, no character)`) || lone.Plan != nil {
		t.Errorf("a lone surrogate: invalid %v, plan %+v", lone.Invalid, lone.Plan)
	}
	nul, _ := loadID(t, s, "nul")
	if len(nul.Invalid) != 1 || !strings.Contains(nul.Invalid[0], "plan.jsonl:3:") || !strings.Contains(nul.Invalid[0], `invalid character '\x00' in string literal`) || len(nul.Missing) != 0 {
		t.Errorf("a raw NUL must be named as the cause: invalid %v missing %v", nul.Invalid, nul.Missing)
	}
}

// A FIFO nobody writes to must not hang the run: cancelling ends Open.
func TestFIFOWithoutWriterHonoursCancellation(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "plan.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Open(ctx, Paths{Plan: fifo, Drafts: write(t, dir, "d.jsonl", "")})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("Open of a writer-less FIFO: err=%v after %s", err, time.Since(start))
	}
}

// A pipe (--critiques <(cat crit.jsonl)) cannot seek: it is spooled, and
// records are read back from the spool.
func TestNonSeekableInputsAreSpooled(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "drafts.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		for i := range 500 {
			fmt.Fprintf(f, `{"id":"s%03d","output_text":"draft %d"}`+"\n", i, i)
		}
	}()
	plan := ""
	for i := range 500 {
		plan += fmt.Sprintf(`{"id":"s%03d","payload_type":"checklist","prompt":"P"}`+"\n", i)
	}
	s, err := Open(context.Background(), Paths{Plan: write(t, dir, "plan.jsonl", plan), Drafts: fifo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	smp, err := loadID(t, s, "s321")
	if err != nil || smp.Draft == nil || *smp.Draft.OutputText != "draft 321" {
		t.Fatalf("record read back from the spool: %+v, %v", smp.Draft, err)
	}
	if s.Drafts.Records != 500 || s.Drafts.SHA256 == "" {
		t.Errorf("spooled input: %d records, sha %q", s.Drafts.Records, s.Drafts.SHA256)
	}
}

// A million broken lines cost a counter, not a million messages.
func TestProblemsAreCappedButCounted(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for range 20000 {
		b.WriteString("{broken\n")
	}
	// One good record: a file with none is refused (TestAFileWithNoRecordIsRefused).
	b.WriteString(`{"id":"ok","payload_type":"checklist","prompt":"P"}` + "\n")
	s, err := Open(context.Background(), Paths{Plan: write(t, dir, "plan.jsonl", b.String()), Drafts: write(t, dir, "d.jsonl", `{"id":"ok","output_text":"d"}`+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := len(s.Problems()); got != MaxProblemsKept || s.ProblemCount() != 20000 {
		t.Errorf("kept %d problems, counted %d; want %d kept of 20000", got, s.ProblemCount(), MaxProblemsKept)
	}
}

// A broken line followed by a good one for the same id: the good record is
// used and the broken line reported.
func TestGoodLineReplacesAnEarlierBrokenOne(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Paths{
		Plan:   write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","prompt":"P"}`+"\n"),
		Drafts: write(t, dir, "d.jsonl", `{"id":"a","output_text":"tru`+"\n"+`{"id":"a","output_text":"good"}`+"\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, _ := loadID(t, s, "a")
	if len(a.Invalid) != 0 || a.Draft == nil || *a.Draft.OutputText != "good" || s.Len() != 1 {
		t.Fatalf("sample a: invalid %v draft %+v ids %v", a.Invalid, a.Draft, idsOf(s))
	}
	if p := s.Problems(); len(p) != 1 || !strings.Contains(p[0].Error(), "d.jsonl:1:") || !strings.Contains(p[0].Error(), "line 2 holds a good record for this id, which is used") {
		t.Errorf("problems: %v", p)
	}
}

// Lines are numbered across chunk boundaries: a file indexed in many
// small chunks reports every problem at the line one chunk would.
func TestChunkedIndexingKeepsLineNumbers(t *testing.T) {
	dir := t.TempDir()
	var plan, drafts strings.Builder
	for i := range 300 {
		switch {
		case i%37 == 5:
			plan.WriteString("\n") // blank lines count
		case i%41 == 7:
			fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\n", i) // broken
		case i%53 == 11:
			fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\"checklist\",\"prompt\":\"dup\"}\n", i-1) // duplicate
		default:
			fmt.Fprintf(&plan, "{\"id\":\"s%d\",\"payload_type\":\"checklist\",\"prompt\":\"%s\"}\n", i, strings.Repeat("x", i%17))
		}
		fmt.Fprintf(&drafts, "{\"id\":\"s%d\",\"output_text\":\"{}\"}\n", i)
	}
	paths := Paths{Plan: write(t, dir, "plan.jsonl", plan.String()), Drafts: write(t, dir, "drafts.jsonl", drafts.String())}
	problems := func() []string {
		s, err := Open(context.Background(), paths)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var out []string
		for _, p := range s.Problems() {
			out = append(out, p.Error())
		}
		return out
	}
	whole := problems()
	if len(whole) < 10 {
		t.Fatalf("the file should have problems: %v", whole)
	}
	old := chunkSize
	defer func() { chunkSize = old }()
	for _, size := range []int{1, 64, 333, 4096} {
		chunkSize = size
		if got := problems(); strings.Join(got, "\n") != strings.Join(whole, "\n") {
			t.Errorf("chunks of %d bytes:\n%s\nwant\n%s", size, strings.Join(got, "\n"), strings.Join(whole, "\n"))
		}
	}
}

// idsOf lists a set's ids in input order.
func idsOf(s *Set) []string {
	ids := make([]string, s.Len())
	for i := range ids {
		ids[i] = s.ID(i)
	}
	return ids
}

// A record ends where its line ends: CRLF line ends, a last line without
// a newline and a byte order mark all load the record whole.
func TestRecordsEndWithTheirLines(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Paths{
		Plan:      write(t, dir, "plan.jsonl", "\xEF\xBB\xBF{\"id\":\"a\",\"payload_type\":\"checklist\",\"prompt\":\"P-a\"}\r\n{\"id\":\"b\",\"payload_type\":\"itinerary\",\"prompt\":\"P-b\"}"),
		Drafts:    write(t, dir, "drafts.jsonl", "{\"id\":\"a\",\"output_text\":\"draft a\"}\r\n{\"id\":\"b\",\"output_text\":\"draft b\"}"),
		Critiques: write(t, dir, "crit.jsonl", "{\"id\":\"b\",\"verdict\":\"revise\",\"issues\":[],\"rewrite_instructions\":[\"x\"]}"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"a", "b"} {
		smp, err := loadID(t, s, id)
		if err != nil || len(smp.Invalid) != 0 || smp.Plan == nil || smp.Plan.Prompt != "P-"+id || smp.Draft == nil || *smp.Draft.OutputText != "draft "+id {
			t.Errorf("Load(%q) = %+v, %v", id, smp, err)
		}
	}
	if smp, _ := loadID(t, s, "b"); smp.Critique.Verdict() != "revise" {
		t.Errorf("b's critique (the last line, no newline) = %+v", smp.Critique)
	}
}

// loadID loads the sample of id, which the set must have.
func loadID(t *testing.T, s *Set, id string) (Sample, error) {
	t.Helper()
	ord, ok := s.IDs().Get(id)
	if !ok {
		t.Fatalf("no id %q in the inputs", id)
	}
	return s.Load(ord)
}

// An input truncated while the run reads it is an error naming the id,
// not a crash: its records are read from a memory mapping, which faults.
func TestTruncatedInputIsAnError(t *testing.T) {
	dir := t.TempDir()
	plan := write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","prompt":"`+strings.Repeat("p", 20000)+`"}`+"\n"+`{"id":"b","payload_type":"checklist","prompt":"`+strings.Repeat("q", 20000)+`"}`+"\n")
	s, err := Open(context.Background(), Paths{Plan: plan, Drafts: write(t, dir, "d.jsonl", `{"id":"a","output_text":"x"}`+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Truncate(plan, 0); err != nil {
		t.Fatal(err)
	}
	_, err = loadID(t, s, "b")
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("Load of a truncated input: %v, want ErrChanged naming b", err)
	}
}

// An input none of whose lines is a record is the wrong file, or the right
// one in UTF-16: the run stops before judging anything, instead of
// committing every sample rejected for missing inputs. So is a file with
// no line at all (or only blank ones): what a stage that failed leaves. A
// file with one good record is not refused.
func TestAFileWithNoRecordIsRefused(t *testing.T) {
	dir := t.TempDir()
	plan := write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","prompt":"P"}`+"\n")
	var utf16 []byte
	for _, c := range []byte(`{"id":"a","output_text":"d"}` + "\n") {
		utf16 = append(utf16, c, 0)
	}
	for name, tc := range map[string]struct {
		drafts string
		want   string
		utf16  bool
	}{
		"not drafts": {`{"not": "a draft"}` + "\n\n" + `{"nor": "this"}` + "\n", `none of its 2 non-blank line(s) is a record (the first: ` + filepath.Join(dir, "not drafts") + `:1: record has no "id")`, false},
		"utf-16":     {string(append([]byte{0xff, 0xfe}, utf16...)), "the file is UTF-16: save it as UTF-8", true},
		"gzip":       {gzipped(t, `{"id":"a","output_text":"d"}`+"\n"), "the file is gzip-compressed: decompress it, or pass it through a pipe such as <(zcat " + filepath.Join(dir, "gzip") + ")", false},
		"empty":      {"", filepath.Join(dir, "empty") + " is empty: it holds no record (has the stage that writes it failed, or not finished?)", false},
		"blank":      {"\n  \n\n", filepath.Join(dir, "blank") + " is empty: it holds no record", false},
	} {
		_, err := Open(context.Background(), Paths{Plan: plan, Drafts: write(t, dir, name, tc.drafts)})
		var nr *NoRecordsError
		if !errors.As(err, &nr) || nr.UTF16 != tc.utf16 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a NoRecordsError saying %q", name, err, tc.want)
		}
	}
	for name, drafts := range map[string]string{"one good": "{broken\n" + `{"id":"a","output_text":"d"}` + "\n"} {
		opens(t, name+" drafts", Paths{Plan: plan, Drafts: write(t, dir, name, drafts)})
	}
}

// An input passed in another input's place (the drafts as the plan) is
// refused before anything is judged or asked: its records carry the other
// kind's keys and none of its own. Records that merely lack their own
// keys, or a file with one record of its kind, are not refused.
func TestAnInputInAnotherInputsPlaceIsRefused(t *testing.T) {
	dir := t.TempDir()
	plan := write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"b","payload_type":"itinerary","prompt":"Q"}`+"\n")
	drafts := write(t, dir, "drafts.jsonl", `{"id":"a","prompt":"P","output_text":"d"}`+"\n"+`{"id":"b","output_text":null}`+"\n")
	crits := write(t, dir, "crits.jsonl", `{"id":"c1","draft_id":"a","critique":{"verdict":"pass"}}`+"\n"+`{"id":"b","verdict":"revise"}`+"\n")
	for _, tc := range []struct {
		name  string
		paths Paths
		want  string
	}{
		{"drafts as the plan", Paths{Plan: drafts, Drafts: drafts}, `drafts.jsonl: given as the prompt plan, but its first 2 record(s) look like the drafts: each has "output_text" and none has "payload_type"`},
		{"plan as the drafts", Paths{Plan: plan, Drafts: plan}, `plan.jsonl: given as the drafts, but its first 2 record(s) look like the prompt plan: each has "payload_type" and none has "output_text"`},
		{"drafts as the critiques", Paths{Plan: plan, Drafts: drafts, Critiques: drafts}, `given as the critiques, but its first 2 record(s) look like the drafts`},
		{"critiques as the drafts", Paths{Plan: plan, Drafts: crits}, `given as the drafts, but its first 2 record(s) look like the critiques: each has "critique"`},
	} {
		_, err := Open(context.Background(), tc.paths)
		var wi *WrongInputError
		if !errors.As(err, &wi) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a WrongInputError saying %q", tc.name, err, tc.want)
		}
	}
	bare := write(t, dir, "bare.jsonl", `{"id":"a","prompt":"P"}`+"\n")
	mixed := write(t, dir, "mixed.jsonl", `{"id":"a","payload_type":"checklist"}`+"\n"+`{"id":"b","output_text":"d"}`+"\n")
	for name, p := range map[string]Paths{
		"a plan without payload_type":         {Plan: bare, Drafts: drafts},
		"drafts with one record of their own": {Plan: plan, Drafts: mixed},
		"the right files":                     {Plan: plan, Drafts: drafts, Critiques: crits},
	} {
		opens(t, name, p)
	}
}

// Drafts or critiques that share no id with the plan are another
// dataset's: every sample would lack its draft, or be judged as if it had
// no critique (reject verdicts included). One shared id is enough.
func TestInputsThatShareNoIDWithThePlanAreRefused(t *testing.T) {
	dir := t.TempDir()
	plan := write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"b","payload_type":"checklist","prompt":"Q"}`+"\n")
	drafts := write(t, dir, "drafts.jsonl", `{"id":"a","output_text":"d"}`+"\n")
	otherDrafts := write(t, dir, "other-drafts.jsonl", `{"id":"x","output_text":"d"}`+"\n"+`{"id":"y","output_text":"d"}`+"\n")
	otherCrits := write(t, dir, "other-crits.jsonl", `{"id":"x","critique":{"verdict":"reject"}}`+"\n")
	for name, tc := range map[string]struct {
		paths Paths
		want  string
	}{
		"drafts":    {Paths{Plan: plan, Drafts: otherDrafts}, `other-drafts.jsonl: none of its 2 drafts has an id of the prompt plan ` + plan + ` (one of its ids: "x"): are these the drafts of this plan?`},
		"critiques": {Paths{Plan: plan, Drafts: drafts, Critiques: otherCrits}, `other-crits.jsonl: none of its 1 critiques has an id of the prompt plan`},
	} {
		_, err := Open(context.Background(), tc.paths)
		var ns *NoSharedIDsError
		if !errors.As(err, &ns) || ns.Kind != name || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a NoSharedIDsError saying %q", name, err, tc.want)
		}
	}
	s, err := Open(context.Background(), Paths{Plan: plan, Drafts: write(t, dir, "one-shared.jsonl", `{"id":"x","output_text":"d"}`+"\n"+`{"id":"b","output_text":"d"}`+"\n")})
	if err != nil {
		t.Fatalf("drafts sharing one id with the plan: %v", err)
	}
	s.Close()
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A --resume keeps the committed record of an id only when none of its
// input lines was added since: Extends tells an append from an edit, and
// RecordAt where the line an id uses now starts.
func TestExtendsTellsAnAppendFromAnEdit(t *testing.T) {
	dir := t.TempDir()
	plan := `{"id":"a","payload_type":"checklist","prompt":"P"}` + "\n" + `{"id":"b","payload_type":"checklist","prompt":"P"}` + "\n"
	old := `{"id":"a","output_text":"tru` + "\n" + `{"id":"b","output_text":"b"}` + "\n"
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	open := func(drafts string) *Set {
		t.Helper()
		s, err := Open(context.Background(), Paths{Plan: write(t, dir, "plan.jsonl", plan), Drafts: write(t, dir, "d.jsonl", drafts)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	n := int64(len(old))

	s := open(old)
	if !s.Drafts.Extends(n, sum(old)) {
		t.Error("the same file does not extend itself")
	}
	if s.Drafts.Extends(n+1, sum(old)) || s.Drafts.Extends(-1, sum(old)) {
		t.Error("a file extends one longer than itself")
	}

	// An appended good line for a: a's record now starts in the added
	// lines, b's where it was.
	s = open(old + `{"id":"a","output_text":"good"}` + "\n")
	if !s.Drafts.Extends(n, sum(old)) {
		t.Fatal("an append is not seen as one")
	}
	a, _ := s.IDs().Get("a")
	b, _ := s.IDs().Get("b")
	if off, ok := s.Drafts.RecordAt(a); !ok || off < n {
		t.Errorf("a's record at %d (%v), want at or after %d", off, ok, n)
	}
	if off, ok := s.Drafts.RecordAt(b); !ok || off >= n {
		t.Errorf("b's record at %d (%v), want before %d", off, ok, n)
	}

	// An edit before the end, of the same length or not, is no append.
	if s = open(strings.Replace(old, `"b"}`, `"B"}`, 1) + "\n"); s.Drafts.Extends(n, sum(old)) {
		t.Error("an edited line taken for an append")
	}
	// A file whose last line had no newline, continued: the old last line
	// changed.
	noNL := strings.TrimSuffix(old, "\n")
	if s = open(noNL + `,"x":1}` + "\n"); s.Drafts.Extends(int64(len(noNL)), sum(noNL)) {
		t.Error("a continued last line taken for an append")
	}
	// Given its newline and followed by lines, it is the same line.
	if s = open(noNL + "\n" + `{"id":"c","output_text":"c"}` + "\n"); !s.Drafts.Extends(int64(len(noNL)), sum(noNL)) {
		t.Error("lines added after a last line without a newline are not seen as an append")
	}
	var none *File
	if _, ok := none.RecordAt(0); ok || none.Extends(0, sum("")) {
		t.Error("an input not given has records")
	}
}

// A verdict that is none of pass, revise and reject ("rejected", "fail")
// is a bad record: refined as a revise, a draft the critic meant to
// reject could be accepted. Case and spaces do not matter; a critique
// without a verdict is a failed critique, as before.
func TestAnUnknownVerdictIsABadRecord(t *testing.T) {
	dir := t.TempDir()
	plan, drafts := "", ""
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		plan += `{"id":"` + id + `","payload_type":"checklist","prompt":"P"}` + "\n"
		drafts += `{"id":"` + id + `","output_text":"t"}` + "\n"
	}
	s, err := Open(context.Background(), Paths{
		Plan:   write(t, dir, "plan.jsonl", plan),
		Drafts: write(t, dir, "d.jsonl", drafts),
		Critiques: write(t, dir, "c.jsonl", `{"id":"a","critique":{"verdict":"rejected"}}`+"\n"+
			`{"id":"b","verdict":"Fail"}`+"\n"+
			`{"id":"c","critique":{"verdict":" REJECT "}}`+"\n"+
			`{"id":"d","critique":{"issues":[]}}`+"\n"+
			`{"id":"e","critique":{"verdict":"revise"}}`+"\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, want := range map[string]string{
		"a": `c.jsonl:1: field "critique.verdict": "rejected" is not one of pass, revise, reject`,
		"b": `c.jsonl:2: field "verdict": "Fail" is not one of pass, revise, reject`,
	} {
		smp, _ := loadID(t, s, id)
		if len(smp.Invalid) != 1 || !strings.Contains(smp.Invalid[0], "/"+want) {
			t.Errorf("sample %s: invalid %q, want %q", id, smp.Invalid, want)
		}
	}
	for id, verdict := range map[string]string{"c": "reject", "d": "failed", "e": "revise"} {
		smp, _ := loadID(t, s, id)
		if len(smp.Invalid) != 0 || smp.Critique.Verdict() != verdict {
			t.Errorf("sample %s: invalid %q, verdict %q: want %q", id, smp.Invalid, smp.Critique.Verdict(), verdict)
		}
	}
	if n := s.ProblemCount(); n != 2 {
		t.Errorf("%d problems, want the 2 bad verdicts", n)
	}
}

// A draft whose text is empty or blank is as missing as a null one:
// there is nothing to refine, and the teacher would answer from the prompt
// alone.
func TestAnEmptyDraftIsMissing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Paths{
		Plan:   write(t, dir, "plan.jsonl", `{"id":"a","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"b","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"c","payload_type":"checklist","prompt":"P"}`+"\n"),
		Drafts: write(t, dir, "d.jsonl", `{"id":"a","output_text":""}`+"\n"+`{"id":"b","output_text":" \n\t "}`+"\n"+`{"id":"c","output_text":" x "}`+"\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, line := range map[string]int{"a": 1, "b": 2} {
		smp, _ := loadID(t, s, id)
		want := fmt.Sprintf("d.jsonl:%d has an empty output_text: nothing to refine", line)
		if len(smp.Missing) != 1 || !strings.Contains(smp.Missing[0], want) {
			t.Errorf("sample %s: missing %q, want %q", id, smp.Missing, want)
		}
	}
	if c, _ := loadID(t, s, "c"); len(c.Missing) != 0 {
		t.Errorf("a draft with text is missing: %q", c.Missing)
	}
}

// The run reads the inputs through a mapping, which shows writes made
// while it runs: a file written to in place, or still being appended to,
// is reported before anything is committed. A file replaced by a rename is
// not the one mapped, whose bytes stay as they were read.
func TestUnchangedReportsAFileWrittenWhileTheRunReadsIt(t *testing.T) {
	dir := t.TempDir()
	plan := `{"id":"a","payload_type":"checklist","prompt":"P"}` + "\n"
	open := func() *Set {
		t.Helper()
		s, err := Open(context.Background(), Paths{Plan: write(t, dir, "plan.jsonl", plan), Drafts: write(t, dir, "d.jsonl", `{"id":"a","output_text":"t"}`+"\n")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	later := time.Now().Add(time.Minute)

	s := open()
	if err := s.Unchanged(); err != nil {
		t.Fatalf("nothing written: %v", err)
	}

	s = open()
	f, err := os.OpenFile(filepath.Join(dir, "plan.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"b","payload_type":"checklist","prompt":"P"}` + "\n")
	f.Close()
	if err := s.Unchanged(); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "plan.jsonl grew from 51 to 102 bytes while the run read it (is the stage that writes it still running?)") {
		t.Errorf("appended: %v", err)
	}

	s = open()
	f, err = os.OpenFile(filepath.Join(dir, "plan.jsonl"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte(`{"id":"z"`), 0) // same size, in place
	f.Close()
	os.Chtimes(filepath.Join(dir, "plan.jsonl"), later, later) // a write in the same clock tick would look the same
	if err := s.Unchanged(); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "plan.jsonl was written to while the run read it") {
		t.Errorf("written in place: %v", err)
	}
	if got := string(s.Plan.data[:9]); got != `{"id":"z"` {
		t.Fatalf("the mapping does not show the write (%q): the check guards nothing", got)
	}

	s = open()
	tmp := write(t, dir, "plan.new", `{"id":"c","payload_type":"checklist","prompt":"P"}`+"\n")
	if err := os.Rename(tmp, filepath.Join(dir, "plan.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := s.Unchanged(); err != nil {
		t.Errorf("replaced by a rename: %v", err)
	}
}

// Ids that differ only by white space around them do not join, and the
// message of the sample that lacks an input names its lookalike, either
// way round.
func TestAMissingInputNamesALookalikeID(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Paths{
		Plan:   write(t, dir, "plan.jsonl", `{"id":"v1_a ","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"v1_b","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"v1_c","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"v1_e","payload_type":"checklist","prompt":"P"}`+"\n"),
		Drafts: write(t, dir, "d.jsonl", `{"id":"v1_a","output_text":"d"}`+"\n"+`{"id":" v1_b","output_text":"d"}`+"\n"+`{"id":"v1_d","output_text":"d"}`+"\n"+`{"id":"v1_e","output_text":"d"}`+"\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, want := range map[string]string{
		"v1_a ": `draft (` + filepath.Join(dir, "d.jsonl") + ` has no record with this id; it has "v1_a", which differs only by white space around it)`,
		"v1_a":  `plan (` + filepath.Join(dir, "plan.jsonl") + ` has no record with this id; it has "v1_a ", which differs only by white space around it)`,
		"v1_b":  `it has " v1_b", which differs only by white space around it`,
		" v1_b": `it has "v1_b", which differs only by white space around it`,
		"v1_c":  `draft (` + filepath.Join(dir, "d.jsonl") + ` has no record with this id)`,
		"v1_d":  `plan (` + filepath.Join(dir, "plan.jsonl") + ` has no record with this id)`,
	} {
		smp, _ := loadID(t, s, id)
		if len(smp.Missing) != 1 || !strings.Contains(smp.Missing[0], want) {
			t.Errorf("%q: missing %q, want %q", id, smp.Missing, want)
		}
	}
}

// Drafts none of whose ids is the plan's are refused; when they differ
// only by white space around them, the message says so instead of asking
// whether they are another plan's.
func TestDraftsWhoseIDsDifferBySpacesAreNamed(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(context.Background(), Paths{
		Plan:   write(t, dir, "plan.jsonl", `{"id":"v1_a","payload_type":"checklist","prompt":"P"}`+"\n"+`{"id":"v1_b","payload_type":"checklist","prompt":"P"}`+"\n"),
		Drafts: write(t, dir, "d.jsonl", `{"id":"v1_x","output_text":"d"}`+"\n"+`{"id":"v1_b\t","output_text":"d"}`+"\n"),
	})
	var ns *NoSharedIDsError
	want := `none of its 2 drafts has an id of the prompt plan ` + filepath.Join(dir, "plan.jsonl") + `, but their ids differ by white space around them: it has "v1_b\t", the plan "v1_b"`
	if !errors.As(err, &ns) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}
