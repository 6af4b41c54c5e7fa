// Package report renders a run's committed outputs as one self-contained
// HTML page: the funnel from input ids to accepted samples, gate pass
// rates, rejection reasons by payload type, category and difficulty,
// shadow gates, the teacher's calls, input problems, what changed, and a
// browser of samples with their gates and keyword hits. Every script and
// style is inside the page; it makes no request.
//
// Big runs stay small: the page embeds a capped sample of records,
// stratified by decision, reason and category, and counts the rest.
package report

import (
	"bufio"
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pgrules/pgrules/engine/changes"
	"github.com/pgrules/pgrules/engine/inputs"
	"github.com/pgrules/pgrules/engine/output"
	"github.com/pgrules/pgrules/rules"
)

//go:embed assets
var assets embed.FS

// Options tune a report.
type Options struct {
	// Rules re-evaluate the embedded samples for their keyword hits (the
	// facts `pgrules explain` prints); nil shows the records' gates only.
	Rules *rules.Rules
	Mode  rules.Mode
	// Compare, when set, is another out dir to compare with; otherwise the
	// changes since the previous run (from the manifest) are shown.
	Compare string
	// MaxSamples caps the embedded records; PerStratum caps each
	// (decision, reason, category) group.
	MaxSamples, PerStratum int
	// MaxAnswerBytes cuts a long answer in the page (the file has it all);
	// MaxBytes caps all the embedded samples together.
	MaxAnswerBytes, MaxBytes int
	Now                      time.Time
}

// defaultMaxAnswerBytes: the answer of a sample in the page, at most.
const defaultMaxAnswerBytes = 12 << 10

func (o Options) withDefaults() Options {
	if o.MaxSamples == 0 {
		o.MaxSamples = 400
	}
	if o.PerStratum == 0 {
		o.PerStratum = 8
	}
	if o.MaxAnswerBytes == 0 {
		o.MaxAnswerBytes = defaultMaxAnswerBytes
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 3 << 20
	}
	if o.Mode == "" {
		o.Mode = rules.ModeLenient
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// Data is everything the page shows, embedded in it as JSON.
type Data struct {
	OutDir      string          `json:"out_dir"`
	GeneratedAt string          `json:"generated_at"`
	Stats       json.RawMessage `json:"stats"`
	Provenance  Provenance      `json:"provenance"`
	Funnel      []Step          `json:"funnel"`
	Changes     *Changes        `json:"changes,omitempty"`
	Samples     []Sample        `json:"samples"`
	// SamplesTotal counts every record; Strata counts them by group, so
	// the page says how many each embedded group stands for.
	SamplesTotal int            `json:"samples_total"`
	Strata       map[string]int `json:"strata"`
	Gates        []GateInfo     `json:"gates"`
	// RulesPath is the gates file whose word lists found the hits.
	RulesPath string `json:"rules_path,omitempty"`
	// PlanNote says why rejected samples lack their plan's facts.
	PlanNote string `json:"plan_note,omitempty"`
	// Mismatch says the stats file and the records disagree; Problems
	// are record lines that could not be used, or record files that no
	// longer match the manifest.
	Mismatch string   `json:"mismatch,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Provenance is what made the dataset, from the manifest.
type Provenance struct {
	RunID      string          `json:"run_id"`
	CreatedAt  string          `json:"created_at"`
	Pgrules    string          `json:"pgrules_version"`
	GatingMode string          `json:"gating_mode"`
	Provider   json.RawMessage `json:"provider"`
	Inputs     json.RawMessage `json:"inputs"`
	Health     json.RawMessage `json:"health"`
}

// GateInfo names a gate and its action.
type GateInfo struct {
	Name   string `json:"name"`
	Action string `json:"action"`
}

// Step is one stage of the funnel and what it lost, by reason.
type Step struct {
	Label string         `json:"label"`
	Count int            `json:"count"`
	Lost  map[string]int `json:"lost,omitempty"`
}

// Changes is what moved: since the previous run, or against another out
// dir.
type Changes struct {
	Against string             `json:"against"`
	Changes changes.Changes    `json:"changes"`
	Gates   []changes.GateRate `json:"gate_deltas,omitempty"`
	Reasons []changes.Count    `json:"reasons,omitempty"`
}

// Sample is one embedded record, with what explain would say of it.
type Sample struct {
	ID          string          `json:"id"`
	Accepted    bool            `json:"accepted"`
	Reasons     []string        `json:"reasons"`
	Warnings    []string        `json:"warnings,omitempty"`
	PayloadType string          `json:"payload_type"`
	Category    string          `json:"category"`
	Difficulty  string          `json:"difficulty"`
	Answer      string          `json:"answer"`
	Cut         bool            `json:"cut,omitempty"`
	Gates       json.RawMessage `json:"gates"`
	Errors      []string        `json:"errors,omitempty"`
	Teacher     json.RawMessage `json:"teacher,omitempty"`
	Hits        []Hit           `json:"hits"`
	Strings     []Leaf          `json:"strings"`
}

// Hit is one word-list hit, with its JSON path.
type Hit struct {
	List string `json:"list"`
	Term string `json:"term"`
	Path string `json:"path"`
	Text string `json:"text"`
}

// Leaf is one string value of the answer and where it is.
type Leaf struct {
	Path  string `json:"path"`
	Value string `json:"value"`
}

// Build reads the committed outputs of outDir (finishing a commit a killed
// run left half done) and gathers what the page shows.
func Build(outDir string, opt Options) (*Data, error) {
	opt = opt.withDefaults()
	// The record files, stats and manifest of one commit, each record file
	// checked against the manifest's sha256.
	prior, err := output.ReadPrior(outDir, nil)
	if err != nil {
		return nil, err
	}
	defer prior.Close()
	statsDoc, manDoc := prior.Stats, prior.Manifest
	if statsDoc == nil {
		return nil, &NoOutputsError{Dir: outDir}
	}
	d := &Data{OutDir: outDir, GeneratedAt: opt.Now.UTC().Format(time.RFC3339), Stats: statsDoc, Strata: map[string]int{}}
	var man struct {
		Provenance
		Rules struct {
			Gates []string `json:"gates"`
		} `json:"rules"`
		Changes *changes.Changes `json:"changes_since_previous"`
	}
	_ = json.Unmarshal(manDoc, &man)
	d.Provenance = man.Provenance
	var st struct {
		Summary struct {
			TotalInputs int `json:"total_inputs"`
			Accepted    int `json:"accepted"`
		} `json:"summary"`
		Gates map[string]struct {
			Action string `json:"action"`
		} `json:"gate_pass_rates"`
	}
	if err := json.Unmarshal(statsDoc, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", output.StatsFile, err)
	}
	for _, g := range man.Rules.Gates {
		d.Gates = append(d.Gates, GateInfo{Name: g, Action: st.Gates[g].Action})
	}
	switch {
	case opt.Compare != "":
		r, err := changes.CompareDirs(opt.Compare, outDir)
		if err != nil {
			return nil, err
		}
		d.Changes = &Changes{Against: opt.Compare, Changes: r.Changes, Gates: r.Gates, Reasons: r.Reasons}
	case man.Changes != nil:
		d.Changes = &Changes{Against: "the previous run in " + outDir, Changes: *man.Changes}
	}
	if opt.Rules != nil {
		d.RulesPath = opt.Rules.Path()
	}
	fc := newFunnelCounter()
	if err := d.sample(prior, opt, fc); err != nil {
		return nil, err
	}
	d.Problems = prior.Problems
	d.describeRejected(man.Inputs)
	d.Funnel = fc.steps()
	// The records are the truth; a stats file that disagrees with them
	// was edited or belongs to other outputs, and the page says so.
	if fc.total != st.Summary.TotalInputs || fc.accepted != st.Summary.Accepted {
		d.Mismatch = fmt.Sprintf("the record files hold %d records, %d accepted; %s says %d and %d",
			fc.total, fc.accepted, output.StatsFile, st.Summary.TotalInputs, st.Summary.Accepted)
	}
	return d, nil
}

// NoOutputsError is an out dir without committed outputs.
type NoOutputsError struct{ Dir string }

func (e *NoOutputsError) Error() string { return e.Dir + " holds no committed pgrules outputs" }

// funnelStages are the steps from input ids to accepted samples and the
// reason codes each loses samples to. A record leaves the funnel at the
// earliest step one of its reasons belongs to, so a sample is lost once
// however many reasons it carries; the other gates' codes are the last
// step's losses.
var funnelStages = []struct {
	label   string
	reasons []string
}{
	{"joined (plan and draft present and valid)", []string{"missing_inputs", "invalid_input"}},
	{"sent to the teacher", []string{"critique_reject"}},
	{"answered", []string{"teacher_error", "no_cached_answer"}},
	{"parsed", []string{"parse_failed"}},
	{"contract ok (schemas)", []string{"envelope_invalid", "payload_invalid"}},
}

const lastStep = "accepted (passed every gate)"

// funnelCounter counts each record at the step it left the funnel.
type funnelCounter struct {
	stageOf  map[string]int
	total    int
	accepted int
	lost     []map[string]int
}

func newFunnelCounter() *funnelCounter {
	f := &funnelCounter{stageOf: map[string]int{}, lost: make([]map[string]int, len(funnelStages)+1)}
	for i, s := range funnelStages {
		for _, r := range s.reasons {
			f.stageOf[r] = i
		}
	}
	for i := range f.lost {
		f.lost[i] = map[string]int{}
	}
	return f
}

func (f *funnelCounter) add(accepted bool, reasons []string) {
	f.total++
	if accepted {
		f.accepted++
		return
	}
	stage, why := len(funnelStages), ""
	for _, r := range reasons {
		if i, ok := f.stageOf[r]; ok && i < stage {
			stage, why = i, r
		}
	}
	if stage < len(funnelStages) {
		f.lost[stage][why]++
		return
	}
	// Past the contract a record may fail several gates: each reason is
	// counted, and the step's count is the accepted records.
	if len(reasons) == 0 {
		f.lost[stage]["(no reason code)"]++
	}
	for _, r := range reasons {
		f.lost[stage][r]++
	}
}

func (f *funnelCounter) steps() []Step {
	out := []Step{{Label: "input ids", Count: f.total}}
	n := f.total
	for i, s := range funnelStages {
		for _, c := range f.lost[i] {
			n -= c
		}
		out = append(out, Step{Label: s.label, Count: n, Lost: f.lost[i]})
	}
	return append(out, Step{Label: lastStep, Count: f.accepted, Lost: f.lost[len(funnelStages)]})
}

// sample counts every record by stratum (decision and reason, or
// category) and remembers the first few of each; then it embeds them a
// round at a time across the strata — one of each, then a second of each —
// until the number or the bytes run out, so a big stratum never crowds out
// a small one.
func (d *Data) sample(prior *output.Prior, opt Options, fc *funnelCounter) error {
	cands := map[string][]int{}
	for i, r := range prior.Records {
		d.SamplesTotal++
		head := prior.Head(i)
		fc.add(r.Accepted, head.ReasonCodes)
		key := stratum(r.Accepted, head)
		d.Strata[key]++
		if len(cands[key]) < opt.PerStratum {
			cands[key] = append(cands[key], i)
		}
	}
	keys := make([]string, 0, len(cands))
	for k := range cands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	budget := opt.MaxBytes
	for round := 0; round < opt.PerStratum && len(d.Samples) < opt.MaxSamples && budget > 0; round++ {
		for _, k := range keys {
			if round >= len(cands[k]) || len(d.Samples) >= opt.MaxSamples || budget <= 0 {
				continue
			}
			i := cands[k][round]
			line, err := prior.Line(i)
			if err != nil {
				return err
			}
			if s, ok := makeSample(line, prior.Records[i].Accepted, opt); ok {
				d.Samples = append(d.Samples, s)
				budget -= s.size()
			}
		}
	}
	sort.SliceStable(d.Samples, func(i, j int) bool { return d.Samples[i].ID < d.Samples[j].ID })
	return nil
}

// size is about what a sample adds to the page.
func (s *Sample) size() int {
	n := 256 + len(s.ID) + len(s.Answer) + len(s.Gates) + len(s.Teacher)
	for _, l := range s.Strings {
		n += len(l.Path) + len(l.Value) + 24
	}
	for _, h := range s.Hits {
		n += len(h.Path) + len(h.Term) + len(h.Text) + 40
	}
	for _, e := range s.Errors {
		n += len(e)
	}
	return n
}

// describeRejected gives the embedded rejected samples the category,
// difficulty and payload type their records do not carry, from the run's
// prompt plan — only when the file is still the one the run read (same
// sha256), so the page never shows another plan's facts.
func (d *Data) describeRejected(manifestInputs json.RawMessage) {
	want := map[string]bool{}
	for _, s := range d.Samples {
		if !s.Accepted && (s.Category == "" || s.Difficulty == "" || s.PayloadType == "") {
			want[s.ID] = true
		}
	}
	if len(want) == 0 {
		return
	}
	found, err := inputs.PlanFacts(manifestInputs, want)
	if err != nil {
		d.PlanNote = err.Error() + ": rejected samples show no category"
		return
	}
	for i := range d.Samples {
		s := &d.Samples[i]
		if p, ok := found[s.ID]; ok && !s.Accepted {
			s.Category = cmp.Or(s.Category, p.Category)
			s.Difficulty = cmp.Or(s.Difficulty, p.Difficulty)
			s.PayloadType = cmp.Or(s.PayloadType, p.PayloadType)
		}
	}
}

func stratum(accepted bool, head output.Head) string {
	if accepted {
		return "accepted|" + head.Category
	}
	reason := "(none)"
	if rc := head.ReasonCodes; len(rc) > 0 {
		reason = rc[0]
	}
	return "rejected|" + reason
}

func makeSample(line []byte, accepted bool, opt Options) (Sample, bool) {
	var s Sample
	var smp rules.Sample
	var teacher *output.Teacher
	if accepted {
		var a output.Accepted
		if json.Unmarshal(line, &a) != nil {
			return Sample{}, false
		}
		smp = rules.Sample{ID: a.ID, Category: a.Category, Difficulty: a.Difficulty, PayloadType: a.PayloadType, RegionTags: a.RegionTags}
		s = Sample{Gates: a.Quality.Gates, Warnings: a.Quality.Warnings, Answer: string(a.Response)}
		teacher = a.Teacher
	} else {
		var r output.Rejected
		if json.Unmarshal(line, &r) != nil {
			return Sample{}, false
		}
		smp = rules.Sample{ID: r.ID}
		s = Sample{Reasons: r.ReasonCodes, Gates: r.Gates, Warnings: r.Warnings}
		if c := r.Contract; c != nil {
			smp.PayloadType, s.Errors = c.PayloadType, c.Errors
			if c.Error != "" {
				s.Errors = append(s.Errors, c.Error)
			}
		}
		if r.RawRefinedText != nil {
			s.Answer = *r.RawRefinedText
		}
		teacher = r.Teacher
	}
	s.ID, s.Accepted, s.Category, s.Difficulty, s.PayloadType = smp.ID, accepted, smp.Category, smp.Difficulty, smp.PayloadType
	if s.Reasons == nil {
		s.Reasons = []string{}
	}
	if teacher != nil {
		s.Teacher, _ = json.Marshal(teacher)
	}
	if opt.Rules != nil && s.Answer != "" {
		dec := opt.Rules.Evaluate(smp, s.Answer, opt.Mode)
		for _, h := range dec.Hits() {
			s.Hits = append(s.Hits, Hit{List: h.List, Term: h.Term, Path: h.Path, Text: h.Text})
		}
		s.Strings = leaves(dec)
	}
	if s.Hits == nil {
		s.Hits = []Hit{}
	}
	// A parsed answer is shown as its strings with their paths (the hits
	// are marked in them); the raw text only when it did not parse.
	if len(s.Strings) > 0 {
		s.Answer = ""
		left := opt.MaxAnswerBytes
		for i, l := range s.Strings {
			if len(l.Value) > left {
				s.Strings[i].Value, s.Cut = cutString(l.Value, left), true
				s.Strings = s.Strings[:i+1]
				break
			}
			left -= len(l.Value)
		}
	} else if len(s.Answer) > opt.MaxAnswerBytes {
		s.Answer, s.Cut = cutString(s.Answer, opt.MaxAnswerBytes), true
	}
	return s, true
}

// cutString cuts s to at most n bytes on a character boundary.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// leaves lists the answer's string values with their paths, as the rules
// saw them.
func leaves(d *rules.Decision) []Leaf {
	var out []Leaf
	for _, l := range d.Leaves() {
		out = append(out, Leaf{Path: l[0], Value: l[1]})
	}
	return out
}

// Write renders the page.
func Write(w io.Writer, d *Data) error {
	tmpl, err := template.ParseFS(assets, "assets/report.html")
	if err != nil {
		return err
	}
	css, err := assets.ReadFile("assets/report.css")
	if err != nil {
		return err
	}
	js, err := assets.ReadFile("assets/report.js")
	if err != nil {
		return err
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	// The data sits in a <script type="application/json">: no "</" may
	// close it early.
	safe := strings.ReplaceAll(string(data), "</", `<\/`)
	return tmpl.Execute(w, map[string]any{
		"Title": "pgrules report — " + d.OutDir,
		"CSS":   template.CSS(css),
		"JS":    template.JS(js),
		"Data":  template.JS(safe),
	})
}

// WriteFile renders the page to path through a temporary file.
func WriteFile(path string, d *Data) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = Write(bw, d)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
