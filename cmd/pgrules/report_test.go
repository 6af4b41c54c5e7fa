package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	enginestats "github.com/pgrules/pgrules/engine/stats"
)

// chromium finds the browser the report test drives: $PGRULES_CHROMIUM, or
// Debian's chromium on $PATH. `make test` and .ci/run install it.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PGRULES_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on $PATH: run scripts/test-deps.sh (apt-get install chromium), or set PGRULES_CHROMIUM to a Chrome/Chromium binary")
	return ""
}

// browser starts a headless Chromium with a fresh profile and nothing that
// phones home, so every request it makes is one the page asked for.
func browser(t *testing.T) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		// Its shared memory files (--disable-dev-shm-usage) go to $TMPDIR:
		// one directory a run was left in /tmp.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelAlloc() })
	return ctx
}

// TestReportInABrowser opens the report of the sample run, re-gated with
// one gate turned into a shadow gate, in a real headless Chromium.
func TestReportInABrowser(t *testing.T) {
	bin := buildPgrules(t)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	run := func(extra ...string) {
		t.Helper()
		cmd := exec.Command(bin, sampleArgs(t, out, extra...)...)
		cmd.Dir = work
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pgrules run %v: %v\n%s", extra, err, b)
		}
	}
	sample, _ := filepath.Abs("../../testdata/sample")
	crit := filepath.Join(sample, "critiques_v1.jsonl")
	run("--critiques", crit)
	// The edit a curator makes: overconfidence_guard only warns. The
	// re-gate moves its samples to accepted; the report shows both.
	gates := string(must(os.ReadFile("../../gates.yaml")))
	edited := strings.Replace(gates, "reason: overconfident_time_sensitive\n", "reason: overconfident_time_sensitive\n    action: warn\n", 1)
	if edited == gates {
		t.Fatal("gates.yaml: overconfidence_guard's reason line not found")
	}
	// And a details expression that fails on every sample the gate warns
	// about: the summary says so.
	if edited = strings.Replace(edited, "overconfident_phrases: hits.overconfidence\n", "overconfident_phrases: hits.overconfidence[5]\n", 1); !strings.Contains(edited, "[5]") {
		t.Fatal("gates.yaml: overconfident_phrases detail not found")
	}
	rulesPath := filepath.Join(work, "gates.yaml")
	if err := os.WriteFile(rulesPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	run("--critiques", crit, "--rules", rulesPath, "--report")
	// And a cache that could not store some answers (a full disk): the
	// stats count them, and the page must say a rerun pays for them. A
	// run that fails to store waits out a 30 s busy timeout, so the count
	// is written into the committed stats and the page made again.
	statsPath := filepath.Join(out, "dataset_v1_stats.json")
	statsDoc := string(must(os.ReadFile(statsPath)))
	lost := strings.Replace(statsDoc, "\"cache\": {\n", "\"cache\": {\n    \"not_stored\": 3,\n", 1)
	if lost == statsDoc {
		t.Fatal("the stats have no cache section")
	}
	if err := os.WriteFile(statsPath, []byte(lost), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, "report", out).CombinedOutput(); err != nil {
		t.Fatalf("pgrules report: %v\n%s", err, b)
	}
	page := filepath.Join(out, ReportFile)
	info, err := os.Stat(page)
	if err != nil {
		t.Fatalf("run --report wrote no page: %v", err)
	}
	t.Logf("%s: %d bytes", page, info.Size())

	var stats struct {
		Summary struct {
			TotalInputs int `json:"total_inputs"`
			Accepted    int `json:"accepted"`
		} `json:"summary"`
		Reasons map[string]int         `json:"rejection_reasons"`
		Warn    map[string]int         `json:"warning_reasons"`
		Dups    enginestats.Duplicates `json:"duplicate_responses"`
	}
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(out, "dataset_v1_stats.json"))), &stats); err != nil {
		t.Fatal(err)
	}

	ctx := browser(t)
	var mu sync.Mutex
	var problems, requests []string
	listen := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			problems = append(problems, "exception: "+msg)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			requests = append(requests, e.Request.URL)
		}
	})
	if listen != nil {
		t.Fatal(listen)
	}
	url := "file://" + page
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#samples tbody tr"))); err != nil {
		t.Fatal(err)
	}

	// The funnel: its ends are the stats' totals, and each step loses
	// exactly the samples whose reasons belong to it (in the sample run a
	// record carries at most one early reason).
	var steps []struct {
		Step  string `json:"step"`
		Count int    `json:"count"`
	}
	evalJS(t, ctx, `[...document.querySelectorAll("span.funnel-step")].map(s => ({step: s.dataset.step, count: +s.dataset.count}))`, &steps)
	want := []int{stats.Summary.TotalInputs}
	n := stats.Summary.TotalInputs
	for _, lost := range [][]string{{"missing_inputs", "invalid_input"}, {"critique_reject"}, {"teacher_error", "no_cached_answer"}, {"parse_failed"}, {"envelope_invalid", "payload_invalid"}} {
		for _, r := range lost {
			n -= stats.Reasons[r]
		}
		want = append(want, n)
	}
	want = append(want, stats.Summary.Accepted)
	var got []int
	for _, s := range steps {
		got = append(got, s.Count)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("funnel = %v, want %v from the stats file (%+v)", got, want, steps)
	}
	if stats.Summary.Accepted == 0 || stats.Warn["overconfident_time_sensitive"] == 0 {
		t.Fatalf("the re-gate should accept samples and warn on some: %+v", stats)
	}

	// Every chart is drawn, with bars of some size.
	var charts map[string]struct {
		Bars  int     `json:"bars"`
		Width float64 `json:"width"`
		Label string  `json:"label"`
	}
	evalJS(t, ctx, `Object.fromEntries([...document.querySelectorAll(".chart-host")].map(h => {
		const s = h.querySelector("svg.chart");
		const bars = s ? [...s.querySelectorAll("rect[data-value]")].filter(r => r.getBoundingClientRect().width > 0) : [];
		return [h.dataset.chart, {bars: bars.length, width: s ? s.getBoundingClientRect().width : 0, label: s ? s.textContent.slice(0, 80) : h.textContent}];
	}))`, &charts)
	for _, name := range []string{"funnel", "gates", "reasons-payload_type", "reasons-category", "reasons-difficulty", "latency"} {
		c, ok := charts[name]
		if !ok || c.Bars == 0 || c.Width < 100 {
			t.Errorf("chart %s not rendered: %+v", name, c)
		}
	}
	// Shadow gates and changes are filled from the edit.
	var shadow, changed string
	evalJS(t, ctx, `document.getElementById("shadow-body").innerText`, &shadow)
	evalJS(t, ctx, `document.getElementById("changes-body").innerText`, &changed)
	if !strings.Contains(shadow, "overconfidence_guard") || !strings.Contains(shadow, fmt.Sprint(stats.Warn["overconfident_time_sensitive"])) {
		t.Errorf("shadow gates section does not show overconfidence_guard's %d would-be rejections:\n%s", stats.Warn["overconfident_time_sensitive"], shadow)
	}
	if !strings.Contains(changed, "now accepted, was") || !strings.Contains(changed, "overconfident_time_sensitive") {
		t.Errorf("changes section does not show the samples the edit accepted:\n%s", changed)
	}

	var summary string
	evalJS(t, ctx, `document.getElementById("summary").innerText`, &summary)
	if want := fmt.Sprintf("Warning: details that failed to evaluate on %d sample(s), the first ", stats.Warn["overconfident_time_sensitive"]); !strings.Contains(summary, want) || !strings.Contains(summary, "details overconfident_phrases: index out of bounds: 5") {
		t.Errorf("summary does not warn about the failing details (want %q):\n%s", want, summary)
	}
	if want := "Warning: 3 answer(s) the teacher gave this run could not be stored in the response cache: a rerun pays for them again"; !strings.Contains(summary, want) {
		t.Errorf("summary does not warn about the answers the cache lost (want %q):\n%s", want, summary)
	}
	if stats.Dups.Records == 0 {
		t.Fatal("the sample run has no repeated responses to show")
	}
	if want := fmt.Sprintf("Warning: %d accepted record(s) repeat an earlier one's response, so the dataset holds those examples twice: %s is %s", stats.Dups.Records, stats.Dups.First[0].ID, stats.Dups.First[0].SameAs); !strings.Contains(summary, want) {
		t.Errorf("summary does not warn about the repeated responses (want %q):\n%s", want, summary)
	}

	// Usable at 1280×800: nothing wider than the window.
	var scrollWidth int
	evalJS(t, ctx, `document.documentElement.scrollWidth`, &scrollWidth)
	if scrollWidth > 1280 {
		t.Errorf("the page is %d px wide at a 1280 px window", scrollWidth)
	}

	// The free-text filter narrows the table to the rows that match.
	visible := func() (rows []string) {
		evalJS(t, ctx, `[...document.querySelectorAll("#samples tbody tr")].filter(r => !r.hidden).map(r => r.innerText)`, &rows)
		return rows
	}
	all := visible()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("filter-text"), "payload_invalid")); err != nil {
		t.Fatal(err)
	}
	narrowed := visible()
	if len(narrowed) == 0 || len(narrowed) >= len(all) || len(narrowed) != stats.Reasons["payload_invalid"] {
		t.Errorf("filter payload_invalid shows %d of %d rows, want %d", len(narrowed), len(all), stats.Reasons["payload_invalid"])
	}
	for _, r := range narrowed {
		if !strings.Contains(r, "payload_invalid") {
			t.Errorf("filtered row without payload_invalid: %q", r)
		}
	}
	var cleared bool
	evalJS(t, ctx, `(() => { const f = document.getElementById("filter-text"); f.value = ""; f.dispatchEvent(new Event("input")); return true; })()`, &cleared)
	if back := visible(); len(back) != len(all) {
		t.Errorf("clearing the filter shows %d rows, want %d", len(back), len(all))
	}

	// A sample with keyword hits opens to show them: the same terms at
	// the same JSON paths as pgrules explain.
	var pick struct {
		Index int    `json:"index"`
		ID    string `json:"id"`
	}
	evalJS(t, ctx, `(() => { const rows = [...document.querySelectorAll("#samples tbody tr")];
		const r = rows.find(r => r.innerText.includes("warn: overconfident_time_sensitive"));
		return r ? {index: +r.dataset.index, id: r.querySelector("code").textContent} : {index: -1, id: ""}; })()`, &pick)
	if pick.Index < 0 {
		t.Fatal("no sample in the browser warns overconfident_time_sensitive")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#samples tbody tr[data-index="%d"]`, pick.Index))),
		chromedp.WaitVisible(chromedp.CSS("#sample-detail h3"))); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Title  string   `json:"title"`
		Hits   []string `json:"hits"`
		Marked int      `json:"marked"`
		Gates  string   `json:"gates"`
	}
	evalJS(t, ctx, `(() => { const d = document.getElementById("sample-detail");
		return {title: d.querySelector("h3").innerText,
			hits: [...d.querySelectorAll("li.hit-row")].map(li => li.querySelector("mark").textContent + " @ " + li.querySelector("code").textContent),
			marked: d.querySelectorAll(".leaf mark.hit").length,
			gates: d.querySelector("table").innerText}; })()`, &shown)
	explain := exec.Command(bin, "explain", pick.ID, "--out-dir", out, "--rules", rulesPath, "--json")
	explain.Dir = work
	eb, err := explain.Output()
	if err != nil {
		t.Fatalf("explain %s: %v", pick.ID, err)
	}
	var ex struct {
		Hits []struct{ Term, Path string }
	}
	if err := json.Unmarshal(eb, &ex); err != nil {
		t.Fatal(err)
	}
	var wantHits []string
	for _, h := range ex.Hits {
		wantHits = append(wantHits, h.Term+" @ "+h.Path)
	}
	sort.Strings(wantHits)
	sort.Strings(shown.Hits)
	if len(wantHits) == 0 || fmt.Sprint(shown.Hits) != fmt.Sprint(wantHits) {
		t.Errorf("sample %s shows hits %q, explain says %q", pick.ID, shown.Hits, wantHits)
	}
	if shown.Marked == 0 {
		t.Errorf("sample %s: no hit highlighted in the answer", pick.ID)
	}
	for _, g := range []string{"contract_ok", "overconfidence_guard (warn)", "FAILED", "passed"} {
		if !strings.Contains(shown.Gates, g) {
			t.Errorf("sample %s: gates table lacks %q:\n%s", pick.ID, g, shown.Gates)
		}
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// Under the test's temp dir; `go test -artifacts -outputdir D` keeps it.
	shot := filepath.Join(t.ArtifactDir(), "report.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	// And what a reader at 1280×800 sees of the opened sample.
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.ID("browser"))); err != nil {
		t.Fatal(err)
	}
	view, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "sample.png"), view, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s (%d bytes full page)", t.ArtifactDir(), len(png))

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(problems, "\n"))
	}
	for _, r := range requests {
		if r != url {
			t.Errorf("the page made a request other than itself: %s", r)
		}
	}
	if len(requests) == 0 {
		t.Error("no request seen: the network listener is not working")
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string, out *T) {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%v\n%s", err, expr)
	}
	*out = v
}
