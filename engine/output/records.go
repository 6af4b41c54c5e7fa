// Package output writes a run's four files (accepted dataset, rejected
// records, stats, manifest) crash-safely, in the original pipeline's
// formats, and reads back the files of a previous run.
package output

import (
	"encoding/json"

	"github.com/pgrules/pgrules/providers"
)

// File names inside the out dir, as the original pipeline named them.
const (
	DatasetFile  = "dataset_v1.jsonl"
	RejectedFile = "dataset_v1_rejected.jsonl"
	StatsFile    = "dataset_v1_stats.json"
	ManifestFile = "dataset_v1_manifest.json"
)

// MaxRawText caps raw_refined_text so one runaway answer cannot bloat the
// rejected file.
const MaxRawText = 20000

// Timing matches the original's teacher.timing block.
type Timing struct {
	LatencyS float64 `json:"latency_s"`
}

// TeacherError is why a teacher call failed, on teacher_error records.
type TeacherError struct {
	Kind       string              `json:"kind"`
	Code       string              `json:"code"`
	Message    string              `json:"message"`
	StatusCode int                 `json:"status_code,omitempty"`
	Attempts   []providers.Attempt `json:"attempts,omitempty"`
}

// Teacher is a record's teacher block: the original's keys first, in its
// order, then what pgrules adds.
type Teacher struct {
	Provider        string   `json:"provider"`
	SelectedModel   string   `json:"selected_model,omitempty"`
	ChosenModel     string   `json:"chosen_model,omitempty"`
	AttemptedModels []string `json:"attempted_models"`
	RequestID       string   `json:"request_id,omitempty"`
	Timing          *Timing  `json:"timing,omitempty"`
	// Usage is null when the API reported none.
	Usage        *providers.Usage    `json:"usage"`
	CostUSD      *float64            `json:"cost_usd,omitempty"`
	FinishReason string              `json:"finish_reason,omitempty"`
	Fallbacks    []providers.Attempt `json:"fallbacks,omitempty"`
	// SecretsRedacted counts API keys removed from the answer.
	SecretsRedacted int           `json:"secrets_redacted,omitempty"`
	Error           *TeacherError `json:"error,omitempty"`
}

// TeacherFromResponse builds the teacher block of a successful call.
func TeacherFromResponse(r providers.Response) *Teacher {
	attempted := r.AttemptedModels
	if attempted == nil {
		attempted = []string{}
	}
	return &Teacher{
		Provider:        r.Provider,
		SelectedModel:   r.SelectedModel,
		ChosenModel:     r.ChosenModel,
		AttemptedModels: attempted,
		RequestID:       r.RequestID,
		Timing:          &Timing{LatencyS: r.LatencySeconds},
		Usage:           r.Usage,
		CostUSD:         r.CostUSD,
		FinishReason:    r.FinishReason,
		Fallbacks:       r.Fallbacks,
		SecretsRedacted: r.SecretsRedacted,
	}
}

// Quality is an accepted record's verdict of the gates.
type Quality struct {
	OverallOK bool            `json:"overall_ok"`
	Gates     json.RawMessage `json:"gates"`
	// Warnings are the reason codes of failing warn-action gates: the record
	// is in the dataset, but a shadow gate would have rejected it.
	Warnings []string `json:"warnings,omitempty"`
}

// Accepted is one dataset_v1.jsonl record; the key order is the original's.
type Accepted struct {
	ID              string   `json:"id"`
	Category        string   `json:"category"`
	Difficulty      string   `json:"difficulty"`
	RegionTags      []string `json:"region_tags"`
	PayloadType     string   `json:"payload_type"`
	TemplateVersion string   `json:"template_version"`
	TemplateName    string   `json:"template_name"`
	Prompt          string   `json:"prompt"`
	// Response is the answer as json.dumps writes it (see internal/pyjson):
	// the encoder copies it as it is.
	Response  json.RawMessage `json:"response"`
	Teacher   *Teacher        `json:"teacher"`
	Quality   Quality         `json:"quality"`
	CreatedAt string          `json:"created_at"`
}

// CritiqueSummary condenses the critique a rejected sample was refined
// against, so a reader sees what the teacher was asked to fix.
type CritiqueSummary struct {
	Verdict                  string   `json:"verdict"`
	IssueCount               int      `json:"issue_count"`
	IssueTypes               []string `json:"issue_types,omitempty"`
	RewriteInstructionsCount int      `json:"rewrite_instructions_count"`
}

// Contract is a rejected record's account of parsing and schema checks;
// Error carries the cause of rejections decided before any gate ran.
type Contract struct {
	OverallOK    bool     `json:"overall_ok"`
	ParseMode    *string  `json:"parse_mode"`
	PayloadType  string   `json:"payload_type,omitempty"`
	StrictJSONOK bool     `json:"strict_json_ok"`
	EnvelopeOK   bool     `json:"envelope_ok"`
	PayloadOK    bool     `json:"payload_ok"`
	Errors       []string `json:"errors,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// Rejected is one dataset_v1_rejected.jsonl record; the key order is the
// original's.
type Rejected struct {
	ID              string           `json:"id"`
	ReasonCodes     []string         `json:"reason_codes"`
	Contract        *Contract        `json:"contract"`
	CritiqueSummary *CritiqueSummary `json:"critique_summary"`
	RawRefinedText  *string          `json:"raw_refined_text"`
	Gates           json.RawMessage  `json:"gates"`
	Teacher         *Teacher         `json:"teacher"`
	CreatedAt       string           `json:"created_at"`
	// Warnings mirror Quality.Warnings so shadow gates are visible here too.
	Warnings []string `json:"warnings,omitempty"`
}

// CapRaw cuts raw text at MaxRawText characters (runes, not bytes, so a
// multi-byte character is never split).
func CapRaw(s string) *string {
	n := 0
	for i := range s {
		if n == MaxRawText {
			s = s[:i]
			break
		}
		n++
	}
	return &s
}
