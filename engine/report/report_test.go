package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgrules/pgrules/engine/output"
)

// outDir writes n records shaped like pgrules' (the keys in the order the
// writer puts them), every tenth rejected, with answers of answerBytes.
func outDir(t testing.TB, n, answerBytes int) string {
	t.Helper()
	dir := t.TempDir()
	var acc, rej bytes.Buffer
	cats := []string{"accommodation", "budgeting", "entry_requirements", "itinerary_planning", "local_customs", "safety", "transport"}
	reasons := []string{"overconfident_time_sensitive", "missing_verification_requirements", "payload_invalid", "parse_failed", "teacher_error"}
	filler := strings.Repeat("a guide sentence that is long enough. ", answerBytes/38+1)[:answerBytes]
	accepted := 0
	rejReasons := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("v1_checklist_%s_%06d", cats[i%len(cats)], i)
		if i%10 == 9 {
			r := reasons[(i/10)%len(reasons)]
			rejReasons[r]++
			fmt.Fprintf(&rej, `{"id": %q, "reason_codes": [%q], "contract": {"parse_mode": "strict", "payload_type": "checklist", "errors": []}, "raw_refined_text": %q, "gates": {}, "created_at": "2026-01-31T08:49:58Z"}`+"\n",
				id, r, `{"summary": "`+filler+`"}`)
			continue
		}
		accepted++
		fmt.Fprintf(&acc, `{"id": %q, "category": %q, "difficulty": "easy", "region_tags": ["pt"], "payload_type": "checklist", "template_version": "v1", "template_name": "refine", "prompt": "p", "response": {"summary": %q, "uncertainty_notes": "visa rules change"}, "teacher": {}, "quality": {"overall_ok": true, "gates": {}}, "created_at": "2026-01-31T08:49:58Z"}`+"\n",
			id, cats[i%len(cats)], filler)
	}
	stats, _ := json.Marshal(map[string]any{
		"summary":           map[string]any{"total_inputs": n, "accepted": accepted, "rejected": n - accepted},
		"rejection_reasons": rejReasons,
	})
	for name, b := range map[string][]byte{output.DatasetFile: acc.Bytes(), output.RejectedFile: rej.Bytes(), output.StatsFile: stats, output.ManifestFile: []byte(`{"run_id": "r1"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFunnelLosesEachSampleOnceAtItsEarliestStep(t *testing.T) {
	f := newFunnelCounter()
	f.add(true, nil)
	f.add(false, []string{"missing_inputs", "invalid_input"})
	f.add(false, []string{"payload_invalid", "envelope_invalid"})
	f.add(false, []string{"overconfident_time_sensitive", "missing_verification_requirements"})
	steps := f.steps()
	var got []string
	for _, s := range steps {
		got = append(got, fmt.Sprintf("%d %v", s.Count, s.Lost))
	}
	want := []string{
		"4 map[]",
		"3 map[missing_inputs:1]",
		"3 map[]", "3 map[]", "3 map[]",
		"2 map[payload_invalid:1]",
		"1 map[missing_verification_requirements:1 overconfident_time_sensitive:1]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("funnel:\n got %q\nwant %q", got, want)
	}
}

// A big run's page stays small: the embedded samples are capped per
// stratum, in number and in bytes, and every record is still counted.
func TestReportOfABigRunStaysSmall(t *testing.T) {
	const n = 5000
	dir := outDir(t, n, 40<<10) // 200 MB of records
	d, err := Build(dir, Options{Now: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := Write(&page, d); err != nil {
		t.Fatal(err)
	}
	if page.Len() > 5<<20 {
		t.Errorf("page is %d bytes, over 5 MB", page.Len())
	}
	if d.SamplesTotal != n || d.Mismatch != "" {
		t.Errorf("counted %d records (mismatch %q), want %d", d.SamplesTotal, d.Mismatch, n)
	}
	sum := 0
	for _, c := range d.Strata {
		sum += c
	}
	if sum != n {
		t.Errorf("strata count %d records, want %d", sum, n)
	}
	// 7 categories of accepted, 5 reasons of rejected: each has samples.
	seen := map[string]int{}
	for _, s := range d.Samples {
		seen[stratum(s.Accepted, output.Head{Category: s.Category, ReasonCodes: s.Reasons})]++
		if len(s.Answer) > defaultMaxAnswerBytes {
			t.Errorf("%s: answer of %d bytes embedded", s.ID, len(s.Answer))
		}
	}
	if len(d.Samples) > 400 {
		t.Errorf("%d samples embedded, over the default 400", len(d.Samples))
	}
	if len(seen) != 12 {
		t.Errorf("samples from %d strata, want 12: %v", len(seen), seen)
	}
	if last := d.Funnel[len(d.Funnel)-1]; last.Count != n-n/10 {
		t.Errorf("accepted step = %d, want %d", last.Count, n-n/10)
	}
}

// The stats file and the records disagreeing is said on the page.
func TestReportSaysWhenStatsDisagreeWithRecords(t *testing.T) {
	dir := outDir(t, 20, 100)
	if err := os.WriteFile(filepath.Join(dir, output.StatsFile), []byte(`{"summary": {"total_inputs": 99, "accepted": 1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Build(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Mismatch, "20 records, 18 accepted") || !strings.Contains(d.Mismatch, "99") {
		t.Errorf("mismatch = %q", d.Mismatch)
	}
}

// Rejected records carry no category: it comes from the run's plan, and
// only while the plan is the file the run read.
func TestRejectedSamplesTakeTheirCategoryFromTheRunsPlan(t *testing.T) {
	dir := outDir(t, 20, 100)
	plan := filepath.Join(dir, "plan.jsonl")
	var b bytes.Buffer
	for i := range 20 {
		fmt.Fprintf(&b, `{"id": "v1_checklist_%s_%06d", "category": "cat%d", "difficulty": "hard", "payload_type": "checklist"}`+"\n",
			[]string{"accommodation", "budgeting", "entry_requirements", "itinerary_planning", "local_customs", "safety", "transport"}[i%7], i, i)
	}
	if err := os.WriteFile(plan, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	man := fmt.Sprintf(`{"run_id": "r1", "inputs": {"prompt_plan": {"path": %q, "sha256": %q}}}`, plan, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(filepath.Join(dir, output.ManifestFile), []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	rejected := func() (cats []string, note string) {
		d, err := Build(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range d.Samples {
			if !s.Accepted {
				cats = append(cats, s.ID[len(s.ID)-2:]+"="+s.Category+"/"+s.Difficulty)
			}
		}
		return cats, d.PlanNote
	}
	if cats, note := rejected(); fmt.Sprint(cats) != "[09=cat9/hard 19=cat19/hard]" || note != "" {
		t.Errorf("rejected samples: %v (note %q), want their plan's category and difficulty", cats, note)
	}
	if err := os.WriteFile(plan, append(b.Bytes(), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if cats, note := rejected(); fmt.Sprint(cats) != "[09=/ 19=/]" || !strings.Contains(note, "changed since the run") {
		t.Errorf("with an edited plan: %v (note %q), want no category and a note", cats, note)
	}
}

// A record file edited after the run is said on the page.
func TestReportSaysWhenRecordsNoLongerMatchTheManifest(t *testing.T) {
	dir := outDir(t, 20, 100)
	man := `{"run_id": "r1", "outputs": {"dataset": {"sha256": "0000000000000000000000000000000000000000000000000000000000000000"}}}`
	if err := os.WriteFile(filepath.Join(dir, output.ManifestFile), []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Build(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Problems) != 1 || !strings.Contains(d.Problems[0], "does not match the sha256") {
		t.Errorf("problems = %q", d.Problems)
	}
}

func TestReportOfAnEmptyDirSaysSo(t *testing.T) {
	_, err := Build(t.TempDir(), Options{})
	if _, ok := err.(*NoOutputsError); !ok {
		t.Errorf("err = %v, want NoOutputsError", err)
	}
}

// The page's data cannot close its <script> early, whatever the answers
// hold.
func TestPageDataCannotEscapeItsScript(t *testing.T) {
	d := &Data{OutDir: "o", Samples: []Sample{{ID: "x", Answer: `</script><script>alert(1)</script>`, Reasons: []string{}, Hits: []Hit{}}}}
	var page bytes.Buffer
	if err := Write(&page, d); err != nil {
		t.Fatal(err)
	}
	if strings.Count(page.String(), "</script>") != 2 {
		t.Errorf("page has %d </script>, want 2 (data and code)", strings.Count(page.String(), "</script>"))
	}
}

// BenchmarkBuild reads a run's outputs for a report. PGRULES_REPORT_DIR
// names a real out dir (scripts/bench.sh passes the 100k-sample run);
// otherwise a 20,000-record one is made.
func BenchmarkBuild(b *testing.B) {
	dir := os.Getenv("PGRULES_REPORT_DIR")
	if dir == "" {
		dir = outDir(b, 20000, 6<<10)
	}
	var size int
	for b.Loop() {
		d, err := Build(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		var page bytes.Buffer
		if err := Write(&page, d); err != nil {
			b.Fatal(err)
		}
		size = page.Len()
	}
	b.ReportMetric(float64(size), "page-bytes")
}
