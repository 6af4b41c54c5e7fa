// Package providers is the teacher contract: the Go interface every backend
// satisfies, the gRPC protocol that carries it across the plugin boundary,
// the host side that finds, pins, starts, restarts and stops plugin
// subprocesses, and the plugin side (Serve) that a backend's main calls.
//
// It knows nothing of gates or datasets: a provider turns a prompt into text
// plus facts about how that text was obtained.
package providers

import (
	"context"
	"fmt"
	"time"
)

// Provider is implemented by every teacher backend, in the plugin process,
// and by the host-side client that forwards to it.
type Provider interface {
	// Describe reports what the plugin is; it may be called before Configure.
	Describe(ctx context.Context) (Info, error)
	// Configure hands the plugin its section of the pgrules config as JSON.
	// Secrets never travel here: plugins read them from their environment.
	Configure(ctx context.Context, configJSON []byte) (Configured, error)
	// Generate makes one teacher call. A failure is returned as *Error so
	// the host can tell retryable from fatal causes.
	Generate(ctx context.Context, req Request) (Response, error)
}

// Info describes a plugin binary.
type Info struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	ProtocolVersion int    `json:"protocol_version"`
	Description     string `json:"description,omitempty"`
}

// Configured is what a plugin reports after accepting its configuration.
type Configured struct {
	// Identity holds exactly the settings that change answers (model list,
	// generation config, a dryrun mix ...) as canonical JSON. The response
	// cache key is built from it, so settings that do not change answers
	// (timeouts, base URL of the same model, API key) must stay out.
	IdentityJSON []byte `json:"identity"`
	// Models is the ordered list of models the plugin will try.
	Models []string `json:"models,omitempty"`
	// AnswersDependOnID is true when the answer is a function of the
	// sample id, not only of the prompt (dryrun): the cache then keys on the
	// id too, so two samples with the same prompt keep their own answers.
	AnswersDependOnID bool `json:"answers_depend_on_id,omitempty"`
	// NoPrompt: the plugin answers without Request.Prompt (the host then
	// neither joins nor sends it). WantsDraft: it reads Request.Draft.
	NoPrompt   bool `json:"no_prompt,omitempty"`
	WantsDraft bool `json:"wants_draft,omitempty"`
	// SuggestedConcurrency is the calls in flight that suit the plugin
	// when the user sets none (0: the host's default of 4). Only a plugin
	// that answers on this machine with no rate limit should set it:
	// a remote teacher's concurrency is its rate limit's business.
	SuggestedConcurrency int `json:"suggested_concurrency,omitempty"`
}

// Request is one teacher call.
type Request struct {
	// ID is the sample id: dryrun derives its answer from it; others log it.
	ID          string `json:"id"`
	System      string `json:"system"`
	Prompt      string `json:"prompt"`
	PayloadType string `json:"payload_type"`
	// Draft is the draft being refined (also inside Prompt); sent only to
	// plugins that want it.
	Draft string `json:"draft,omitempty"`
	// PromptBytes is len(Prompt), also when Prompt is not sent.
	PromptBytes int64 `json:"prompt_bytes,omitempty"`
}

// Usage is token accounting as reported by the API.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// Attempt records one model tried for a request and why it fell back.
type Attempt struct {
	Model      string `json:"model"`
	StatusCode int    `json:"status_code,omitempty"`
	Error      string `json:"error,omitempty"`
	Code       string `json:"code,omitempty"`
}

// Response is a successful teacher answer plus its provenance. Field names
// follow the original pipeline's `teacher` block.
type Response struct {
	Text            string    `json:"-"`
	Provider        string    `json:"provider"`
	SelectedModel   string    `json:"selected_model"`
	ChosenModel     string    `json:"chosen_model"`
	AttemptedModels []string  `json:"attempted_models"`
	Fallbacks       []Attempt `json:"fallbacks,omitempty"`
	RequestID       string    `json:"request_id,omitempty"`
	LatencySeconds  float64   `json:"latency_s"`
	// Usage is nil when the API reported none: unknown is not zero.
	Usage *Usage `json:"usage"`
	// CostUSD is the cost the API reported; nil when it reported none.
	CostUSD      *float64 `json:"cost_usd,omitempty"`
	FinishReason string   `json:"finish_reason,omitempty"`
	// SecretsRedacted counts API keys the plugin removed from the answer.
	SecretsRedacted int `json:"secrets_redacted,omitempty"`
}

// ErrorKind classifies a teacher failure by what the host should do.
type ErrorKind int

const (
	// KindFailed: this sample failed (content_filter, length, empty
	// content, a 4xx about this request); do not retry, reject the sample.
	KindFailed ErrorKind = iota
	// KindRetryable: 429, 5xx, timeouts, connection errors; retry with
	// backoff, never sooner than RetryAfter.
	KindRetryable
	// KindFatal: the configuration is wrong (401/403, unknown model,
	// missing key); every other call will fail the same way.
	KindFatal
)

func (k ErrorKind) String() string {
	switch k {
	case KindRetryable:
		return "retryable"
	case KindFatal:
		return "fatal"
	default:
		return "failed"
	}
}

// CodePluginCrashed is the code of a call that failed because the plugin
// process kept dying: the host's restart budget is spent.
const CodePluginCrashed = "plugin_crashed"

// Error is a classified teacher failure.
type Error struct {
	Kind ErrorKind
	// Code is a short stable cause, e.g. "http_429", "http_401",
	// "finish_length", "empty_content", "api_error", "timeout".
	Code       string
	Message    string
	StatusCode int
	RetryAfter time.Duration
	// Attempts lists models tried before giving up.
	Attempts []Attempt
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}
