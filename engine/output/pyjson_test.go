package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/pgrules/pgrules/internal/pyjson"
	"github.com/pgrules/pgrules/providers"
)

func TestPythonStyleMatchesOriginalRecords(t *testing.T) {
	// The 20 accepted records written by the original pipeline: decoding
	// and re-encoding each through our writer must give the same bytes.
	f, err := os.Open("../../testdata/reference/sample_accepted_v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	n := 0
	for sc.Scan() {
		n++
		var rec Accepted
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		// The original's teacher block has keys pgrules does not produce;
		// pass it and quality through untouched and compare the rest.
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(sc.Bytes(), &raw)
		got, err := marshalLine(struct {
			ID              string          `json:"id"`
			Category        string          `json:"category"`
			Difficulty      string          `json:"difficulty"`
			RegionTags      []string        `json:"region_tags"`
			PayloadType     string          `json:"payload_type"`
			TemplateVersion string          `json:"template_version"`
			TemplateName    string          `json:"template_name"`
			Prompt          string          `json:"prompt"`
			Response        json.RawMessage `json:"response"`
			Teacher         json.RawMessage `json:"teacher"`
			Quality         json.RawMessage `json:"quality"`
			CreatedAt       string          `json:"created_at"`
		}{rec.ID, rec.Category, rec.Difficulty, rec.RegionTags, rec.PayloadType, rec.TemplateVersion, rec.TemplateName, rec.Prompt, rec.Response, raw["teacher"], raw["quality"], rec.CreatedAt})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != sc.Text() {
			t.Errorf("record %d (%s) re-encoded differently:\n got %.200s\nwant %.200s", n, rec.ID, firstDiff(string(got), sc.Text()), firstDiff(sc.Text(), string(got)))
		}
	}
	if n != 20 {
		t.Fatalf("read %d reference records, want 20", n)
	}
}

func firstDiff(a, b string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[max(0, i-40):]
		}
	}
	return ""
}

func TestCapRawCountsCharacters(t *testing.T) {
	s := strings.Repeat("é", MaxRawText+10)
	got := *CapRaw(s)
	if n := len([]rune(got)); n != MaxRawText {
		t.Errorf("CapRaw kept %d characters, want %d", n, MaxRawText)
	}
	if short := *CapRaw("abc"); short != "abc" {
		t.Errorf("CapRaw(abc) = %q", short)
	}
}

// FuzzDirectEncoderMatchesMarshalLine: the field-by-field encoder writes
// the very bytes of the reflective encoder plus the Python re-quoting,
// for any record.
func FuzzDirectEncoderMatchesMarshalLine(f *testing.F) {
	f.Add("v1_a", "caf\u00e9 \"q\" \\ \n\t\b\f\x01 \u2028 <&>", `{"summary": "x\u00e9", "n": 1.5e-7, "l": [1, "\\"y\\""]}`, 0.25, int64(42), true, "")
	f.Add("bad\xffutf8", "", `{}`, 1e-9, int64(0), false, "err")
	f.Add("x", "\x7f\u00ff", `{"a":{"b":[]}}`, 1e21, int64(-3), true, "m")
	f.Fuzz(func(t *testing.T, id, text, rawJSON string, lat float64, n int64, flag bool, msg string) {
		if math.IsNaN(lat) || math.IsInf(lat, 0) {
			return
		}
		var compact bytes.Buffer
		if json.Compact(&compact, []byte(rawJSON)) != nil {
			return
		}
		raw := json.RawMessage(compact.Bytes())
		py := json.RawMessage(pyjson.Restyle(nil, raw))
		cost := lat / 3
		mode := text
		teacher := &Teacher{Provider: id, SelectedModel: text, ChosenModel: msg, AttemptedModels: []string{id, text},
			RequestID: msg, Timing: &Timing{LatencyS: lat}, Usage: &providers.Usage{PromptTokens: n, CompletionTokens: n / 2, TotalTokens: n * 2},
			CostUSD: &cost, FinishReason: text, Fallbacks: []providers.Attempt{{Model: id, StatusCode: int(n % 600), Error: text, Code: msg}}, SecretsRedacted: int(n % 3)}
		if flag {
			teacher.Usage, teacher.CostUSD, teacher.Timing, teacher.Fallbacks = nil, nil, nil, nil
			teacher.Error = &TeacherError{Kind: "failed", Code: msg, Message: text, StatusCode: int(n % 600), Attempts: []providers.Attempt{{Model: msg}}}
		}
		acc := &Accepted{ID: id, Category: text, Difficulty: msg, RegionTags: []string{text, id}, PayloadType: msg, TemplateVersion: id,
			TemplateName: text, Prompt: text + msg, Response: py, Teacher: teacher,
			Quality: Quality{OverallOK: flag, Gates: raw, Warnings: []string{msg}}, CreatedAt: id}
		rej := &Rejected{ID: id, ReasonCodes: []string{msg, text},
			Contract:        &Contract{OverallOK: flag, ParseMode: &mode, PayloadType: msg, StrictJSONOK: !flag, EnvelopeOK: flag, PayloadOK: flag, Errors: []string{text}, Error: msg},
			CritiqueSummary: &CritiqueSummary{Verdict: text, IssueCount: int(n % 100), IssueTypes: []string{msg}, RewriteInstructionsCount: int(n % 7)},
			RawRefinedText:  &text, Gates: raw, Teacher: teacher, CreatedAt: msg, Warnings: []string{id}}
		if flag {
			acc.RegionTags, acc.Teacher, acc.Quality.Warnings = nil, nil, nil
			rej.Contract.ParseMode, rej.RawRefinedText, rej.CritiqueSummary, rej.Warnings, rej.Contract.Errors = nil, nil, nil, nil, nil
		}
		for _, rec := range []any{acc, rej} {
			want, err := marshalLine(rec)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			switch r := rec.(type) {
			case *Accepted:
				got = AppendAccepted(nil, r)
			case *Rejected:
				got = AppendRejected(nil, r)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("direct encoder:\n got %s\nwant %s", got, want)
			}
		}
	})
}
