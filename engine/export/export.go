// Package export writes a run's accepted records for training: Parquet (or
// JSONL) files split deterministically by id, and a Hugging Face dataset
// card whose provenance comes from the run's manifest.
package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/pgrules/pgrules/engine/output"
)

// Split is one named share of the records.
type Split struct {
	Name     string
	Fraction float64
}

var splitName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// SplitsError is a split list that does not parse; Msg says why.
type SplitsError struct{ Spec, Msg string }

func (e *SplitsError) Error() string { return fmt.Sprintf("splits %q: %s", e.Spec, e.Msg) }

// ParseSplits reads "train=0.9,validation=0.1". The fractions must sum to 1.
func ParseSplits(s string) ([]Split, error) {
	bad := func(format string, a ...any) error { return &SplitsError{Spec: s, Msg: fmt.Sprintf(format, a...)} }
	var out []Split
	seen := map[string]bool{}
	sum := 0.0
	for _, part := range strings.Split(s, ",") {
		name, frac, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, bad("%q is not NAME=FRACTION (e.g. train=0.9,validation=0.1)", part)
		}
		if !splitName.MatchString(name) {
			return nil, bad("split name %q: use lowercase letters, digits and _", name)
		}
		if seen[name] {
			return nil, bad("split %q given twice", name)
		}
		f, err := strconv.ParseFloat(frac, 64)
		if err != nil || f <= 0 || f > 1 || math.IsNaN(f) {
			return nil, bad("%s=%s: the fraction must be a number in (0, 1]", name, frac)
		}
		seen[name] = true
		sum += f
		out = append(out, Split{Name: name, Fraction: f})
	}
	if math.Abs(sum-1) > 1e-9 {
		return nil, bad("the fractions sum to %g, not 1", sum)
	}
	return out, nil
}

// Assign picks a record's split from a hash of the seed and its id: the
// same id lands in the same split in every export with that seed, however
// the dataset grows or is reordered.
func Assign(id string, seed int64, splits []Split) int {
	h := sha256.Sum256([]byte(strconv.FormatInt(seed, 10) + "\x00" + id))
	x := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53) // [0, 1)
	acc := 0.0
	for i, s := range splits {
		acc += s.Fraction
		if x < acc {
			return i
		}
	}
	return len(splits) - 1
}

// Options say what to export where.
type Options struct {
	OutDir string
	Dest   string
	// Format is "parquet", "jsonl" (the records' lines) or "messages"
	// (chat fine-tuning lines: the prompt as the user's turn, the
	// response as the assistant's).
	Format string
	// SystemMessage, when set, opens every conversation of the messages
	// format.
	SystemMessage string
	// DropRepeats leaves out each record whose response repeats, byte for
	// byte, an earlier record's (the run's duplicate_responses): the first
	// in the dataset's order is kept.
	DropRepeats bool
	Splits      []Split
	Seed        int64
	// License is the card's license id (Hugging Face's list).
	License string
	// Name titles the card.
	Name string
	// Version is pgrules' version, in the Parquet files' created_by.
	Version string
}

// Result is what was written.
type Result struct {
	Files  []string
	Counts map[string]int
	Total  int
	// Dropped counts the records DropRepeats left out.
	Dropped int
}

// NotAnExportError refuses to replace a directory pgrules did not write.
type NotAnExportError struct{ Dir string }

func (e *NotAnExportError) Error() string {
	return e.Dir + " exists and is not a pgrules export"
}

// FormatError names a format the export cannot write.
type FormatError struct{ Format string }

func (e *FormatError) Error() string {
	return fmt.Sprintf("format %q: use parquet, jsonl or messages", e.Format)
}

// NoOutputsError is an out dir with nothing committed to export.
type NoOutputsError struct{ OutDir string }

func (e *NoOutputsError) Error() string {
	return fmt.Sprintf("%s holds no committed pgrules outputs (no %s and %s)", e.OutDir, output.DatasetFile, output.ManifestFile)
}

// marker is in every card pgrules writes: an export may replace a
// directory holding one, and nothing else.
const marker = "<!-- written by pgrules export -->"

// Run writes the export: into a temporary sibling of Dest, then swapped in,
// so a failed or interrupted (ctx) export leaves any previous one whole.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if opt.Format != "parquet" && opt.Format != "jsonl" && opt.Format != "messages" {
		return nil, &FormatError{Format: opt.Format}
	}
	if len(opt.Splits) == 0 {
		opt.Splits = []Split{{Name: "train", Fraction: 1}}
	}
	if err := replaceable(opt.Dest); err != nil {
		return nil, err
	}
	snap, err := output.OpenCommitted(opt.OutDir)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	manDoc, err := snap.ReadDocument(output.ManifestFile)
	if err != nil {
		return nil, err
	}
	statsDoc, err := snap.ReadDocument(output.StatsFile)
	if err != nil {
		return nil, err
	}
	data := snap.Files[output.DatasetFile]
	if data == nil || manDoc == nil {
		return nil, &NoOutputsError{OutDir: opt.OutDir}
	}
	var man output.ManifestView
	if err := json.Unmarshal(manDoc, &man); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(opt.OutDir, output.ManifestFile), err)
	}

	parent := filepath.Dir(filepath.Clean(opt.Dest))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(opt.Dest)+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's 0700 would be the export's
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "data"), 0o755); err != nil {
		return nil, err
	}

	res := &Result{Counts: map[string]int{}}
	sinks := make([]sink, len(opt.Splits))
	for i, s := range opt.Splits {
		name := fmt.Sprintf("data/%s-00000-of-00001.%s", s.Name, fileExt(opt.Format))
		res.Files = append(res.Files, name)
		if sinks[i], err = newSink(filepath.Join(tmp, name), opt); err != nil {
			return nil, err
		}
	}
	closeAll := func() {
		for _, s := range sinks {
			s.abort()
		}
	}
	// The dataset must be the one the manifest describes: a card's
	// provenance is only true of those bytes.
	h := sha256.New()
	if _, err := data.Seek(0, io.SeekStart); err != nil {
		closeAll()
		return nil, err
	}
	r := bufio.NewReaderSize(io.TeeReader(data, h), 1<<20)
	responses := map[[sha256.Size]byte]struct{}{}
	for lineNo := 1; ; lineNo++ {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			closeAll()
			return nil, rerr
		}
		if err := ctx.Err(); err != nil {
			closeAll()
			return nil, err // Ctrl-C: the temporary export goes, -o stays as it was
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			var rec output.Accepted
			if err := json.Unmarshal(trimmed, &rec); err != nil || rec.ID == "" {
				closeAll()
				return nil, fmt.Errorf("%s:%d: not an accepted pgrules record: %v", data.Name(), lineNo, err)
			}
			if opt.DropRepeats {
				// sha256, not a 64-bit hash: a collision would drop a record.
				sum := sha256.Sum256(rec.Response)
				if _, seen := responses[sum]; seen {
					res.Dropped++
					continue
				}
				responses[sum] = struct{}{}
			}
			i := Assign(rec.ID, opt.Seed, opt.Splits)
			if err := sinks[i].write(&rec, trimmed); err != nil {
				closeAll()
				return nil, err
			}
			res.Counts[opt.Splits[i].Name]++
			res.Total++
		}
		if rerr != nil {
			break
		}
	}
	if want := man.Outputs["dataset"].SHA256; want != "" && want != hex.EncodeToString(h.Sum(nil)) {
		closeAll()
		return nil, fmt.Errorf("%s does not match the sha256 in %s (edited since the run?): the card's provenance would not be true of it; rerun pgrules to rewrite it", data.Name(), output.ManifestFile)
	}
	for _, s := range sinks {
		if err := s.close(); err != nil {
			closeAll()
			return nil, err
		}
	}
	card := datasetCard(opt, &man, statsDoc, res)
	if err := os.WriteFile(filepath.Join(tmp, "README.md"), []byte(card), 0o644); err != nil {
		return nil, err
	}
	return res, swapIn(tmp, opt.Dest)
}

// replaceable: Dest is absent, empty, or an earlier export.
func replaceable(dest string) error {
	entries, err := os.ReadDir(dest)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dest, "README.md"))
	if err != nil || !bytes.Contains(b, []byte(marker)) {
		return &NotAnExportError{Dir: dest}
	}
	return nil
}

func swapIn(tmp, dest string) error {
	old := ""
	if _, err := os.Stat(dest); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dest, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		if old != "" {
			_ = os.Rename(old, dest)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// Row is one Parquet row: the record with its nested fields typed, the
// response payload and the gates as JSON text (their keys vary by payload
// type and gates.yaml).
type Row struct {
	ID              string     `parquet:"id"`
	Category        string     `parquet:"category,dict"`
	Difficulty      string     `parquet:"difficulty,dict"`
	RegionTags      []string   `parquet:"region_tags,list"`
	PayloadType     string     `parquet:"payload_type,dict"`
	TemplateVersion string     `parquet:"template_version,dict"`
	TemplateName    string     `parquet:"template_name,dict"`
	Prompt          string     `parquet:"prompt"`
	Response        string     `parquet:"response"`
	Teacher         TeacherRow `parquet:"teacher"`
	Quality         QualityRow `parquet:"quality"`
	CreatedAt       string     `parquet:"created_at"`
}

// TeacherRow is the record's teacher block.
type TeacherRow struct {
	Provider        string     `parquet:"provider,dict"`
	SelectedModel   *string    `parquet:"selected_model,optional,dict"`
	ChosenModel     *string    `parquet:"chosen_model,optional,dict"`
	AttemptedModels []string   `parquet:"attempted_models,list"`
	RequestID       *string    `parquet:"request_id,optional"`
	LatencyS        *float64   `parquet:"latency_s,optional"`
	Usage           *Usage     `parquet:"usage,optional"`
	CostUSD         *float64   `parquet:"cost_usd,optional"`
	FinishReason    *string    `parquet:"finish_reason,optional,dict"`
	Fallbacks       []Fallback `parquet:"fallbacks,list"`
}

// Usage is token accounting; null when the API reported none.
type Usage struct {
	PromptTokens     int64 `parquet:"prompt_tokens"`
	CompletionTokens int64 `parquet:"completion_tokens"`
	TotalTokens      int64 `parquet:"total_tokens"`
}

// Fallback is a model tried before the one that answered.
type Fallback struct {
	Model      string  `parquet:"model"`
	StatusCode *int32  `parquet:"status_code,optional"`
	Error      *string `parquet:"error,optional"`
	Code       *string `parquet:"code,optional"`
}

// QualityRow is the record's verdict: the gates as JSON text.
type QualityRow struct {
	OverallOK bool     `parquet:"overall_ok"`
	Gates     string   `parquet:"gates"`
	Warnings  []string `parquet:"warnings,list"`
}

func toRow(r *output.Accepted) Row {
	row := Row{ID: r.ID, Category: r.Category, Difficulty: r.Difficulty, RegionTags: r.RegionTags, PayloadType: r.PayloadType,
		TemplateVersion: r.TemplateVersion, TemplateName: r.TemplateName, Prompt: r.Prompt, Response: string(r.Response),
		Quality: QualityRow{OverallOK: r.Quality.OverallOK, Gates: string(r.Quality.Gates), Warnings: r.Quality.Warnings}, CreatedAt: r.CreatedAt}
	if t := r.Teacher; t != nil {
		row.Teacher = TeacherRow{Provider: t.Provider, SelectedModel: orNull(t.SelectedModel), ChosenModel: orNull(t.ChosenModel),
			AttemptedModels: t.AttemptedModels, RequestID: orNull(t.RequestID), CostUSD: t.CostUSD, FinishReason: orNull(t.FinishReason)}
		if t.Timing != nil {
			row.Teacher.LatencyS = &t.Timing.LatencyS
		}
		if u := t.Usage; u != nil {
			row.Teacher.Usage = &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
		}
		for _, f := range t.Fallbacks {
			fb := Fallback{Model: f.Model, Error: orNull(f.Error), Code: orNull(f.Code)}
			if f.StatusCode != 0 {
				code := int32(f.StatusCode)
				fb.StatusCode = &code
			}
			row.Teacher.Fallbacks = append(row.Teacher.Fallbacks, fb)
		}
	}
	return row
}

// orNull: the records omit empty optional fields; Parquet says null.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// sink is one split's file.
type sink interface {
	write(r *output.Accepted, line []byte) error
	close() error
	abort()
}

func newSink(path string, opt Options) (sink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	switch opt.Format {
	case "jsonl":
		return &jsonlSink{f: f, w: bw}, nil
	case "messages":
		return &jsonlSink{f: f, w: bw, messages: true, system: opt.SystemMessage}, nil
	}
	w := parquet.NewGenericWriter[Row](bw, parquet.Compression(&zstd.Codec{}),
		parquet.CreatedBy("pgrules", opt.Version, ""), parquet.MaxRowsPerRowGroup(10000))
	return &parquetSink{f: f, bw: bw, w: w}, nil
}

// fileExt is the data files' extension in format.
func fileExt(format string) string {
	if format == "messages" {
		return "jsonl"
	}
	return format
}

type jsonlSink struct {
	f *os.File
	w *bufio.Writer
	// messages writes conversations, opened by system when it is set.
	messages bool
	system   string
}

// message is one turn of a conversation, in the shape chat fine-tuning
// reads ({"messages": [{"role": …, "content": …}]}: OpenAI's fine-tuning
// files, Hugging Face TRL's conversational datasets).
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// write keeps the record's bytes (a JSONL export is the dataset's lines),
// or writes its conversation: the prompt the model will be given, and the
// response it is to learn, as the JSON text the dataset holds.
func (s *jsonlSink) write(r *output.Accepted, line []byte) error {
	if s.messages {
		var turns []message
		if s.system != "" {
			turns = append(turns, message{"system", s.system})
		}
		turns = append(turns, message{"user", r.Prompt}, message{"assistant", string(r.Response)})
		// The text as it is: "<" stays "<", not "\u003c".
		enc := json.NewEncoder(s.w)
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			Messages []message `json:"messages"`
		}{turns})
	}
	if _, err := s.w.Write(line); err != nil {
		return err
	}
	return s.w.WriteByte('\n')
}

func (s *jsonlSink) close() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.f.Close()
}

func (s *jsonlSink) abort() { s.f.Close() }

type parquetSink struct {
	f   *os.File
	bw  *bufio.Writer
	w   *parquet.GenericWriter[Row]
	buf []Row
}

func (s *parquetSink) write(r *output.Accepted, _ []byte) error {
	s.buf = append(s.buf, toRow(r))
	if len(s.buf) == 1000 {
		return s.flush()
	}
	return nil
}

func (s *parquetSink) flush() error {
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}

func (s *parquetSink) close() error {
	if err := s.flush(); err != nil {
		return err
	}
	if err := s.w.Close(); err != nil {
		return err
	}
	if err := s.bw.Flush(); err != nil {
		return err
	}
	return s.f.Close()
}

func (s *parquetSink) abort() { s.f.Close() }
