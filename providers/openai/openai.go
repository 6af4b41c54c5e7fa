// Package openai is the OpenAI-compatible chat-completions client shared by
// the openrouter and local provider plugins. It makes one attempt per
// model, falling back along the model list; retries belong to the host's
// call policy, so there is exactly one retry loop in pgrules.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pgrules/pgrules/providers"
)

// Config is a provider's section of pgrules.yaml.
type Config struct {
	BaseURL   string   `json:"base_url"`
	Models    []string `json:"models"`
	APIKeyEnv string   `json:"api_key_env"`
	// AppName and Referer identify the app to OpenRouter (X-Title,
	// HTTP-Referer).
	AppName    string          `json:"app_name"`
	Referer    string          `json:"referer"`
	Routing    json.RawMessage `json:"routing"`
	Generation Generation      `json:"generation"`
	// ResponseFormat is passed through as the request's response_format
	// (e.g. {"type": "json_object"}).
	ResponseFormat json.RawMessage `json:"response_format"`
	Timeout        Duration        `json:"timeout"`
}

// Generation is the sampling configuration.
type Generation struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
}

// Duration reads "90s" or a number of seconds.
type Duration time.Duration

// UnmarshalJSON accepts "90s" or 90.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := time.ParseDuration(s)
		*d = Duration(v)
		return err
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("timeout: want a duration like \"90s\"")
	}
	*d = Duration(time.Duration(n * float64(time.Second)))
	return nil
}

// Defaults for one backend.
type Defaults struct {
	Name      string
	BaseURL   string
	APIKeyEnv string
	// KeyRequired makes a missing key a configuration error.
	KeyRequired bool
}

// Client talks to one OpenAI-compatible server.
type Client struct {
	def  Defaults
	cfg  Config
	key  string
	http *http.Client
}

// New returns an unconfigured client for a backend.
func New(def Defaults) *Client { return &Client{def: def} }

// Describe implements providers.Provider.
func (c *Client) Describe(context.Context) (providers.Info, error) {
	return providers.Info{Name: c.def.Name, Version: Version, ProtocolVersion: providers.ProtocolVersion, Description: "OpenAI-compatible chat completions at " + c.def.BaseURL}, nil
}

// Version of the OpenAI-compatible plugins.
const Version = "1.0.0"

// Configure implements providers.Provider.
func (c *Client) Configure(_ context.Context, raw []byte) (providers.Configured, error) {
	cfg := Config{BaseURL: c.def.BaseURL, APIKeyEnv: c.def.APIKeyEnv, Timeout: Duration(5 * time.Minute)}
	if len(raw) > 0 && string(raw) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return providers.Configured{}, fmt.Errorf("providers.%s: %v (known keys: base_url, models, api_key_env, app_name, referer, routing, generation, response_format, timeout)", c.def.Name, err)
		}
	}
	if len(cfg.Models) == 0 {
		return providers.Configured{}, fmt.Errorf("providers.%s.models is empty: name at least one model (pgrules.yaml, or --model)", c.def.Name)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	c.key = ""
	if cfg.APIKeyEnv != "" {
		c.key = os.Getenv(cfg.APIKeyEnv)
	}
	if c.key == "" && c.def.KeyRequired {
		return providers.Configured{}, fmt.Errorf("no API key: set %s in the environment (pgrules never reads keys from its config file)", cfg.APIKeyEnv)
	}
	c.cfg = cfg
	c.http = &http.Client{Timeout: time.Duration(cfg.Timeout)}
	// What changes answers: backend, models, routing, generation, format.
	// Not the key, not timeouts, not the URL of the same service.
	identity, _ := json.Marshal(struct {
		Provider       string          `json:"provider"`
		Models         []string        `json:"models"`
		Routing        json.RawMessage `json:"routing,omitempty"`
		Generation     Generation      `json:"generation"`
		ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	}{c.def.Name, cfg.Models, compact(cfg.Routing), cfg.Generation, compact(cfg.ResponseFormat)})
	return providers.Configured{IdentityJSON: identity, Models: cfg.Models}, nil
}

func compact(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

type chatRequest struct {
	Model          string          `json:"model"`
	Messages       []message       `json:"messages"`
	Temperature    *float64        `json:"temperature,omitempty"`
	TopP           *float64        `json:"top_p,omitempty"`
	MaxTokens      *int            `json:"max_tokens,omitempty"`
	Seed           *int64          `json:"seed,omitempty"`
	Provider       json.RawMessage `json:"provider,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	Usage          *struct {
		Include bool `json:"include"`
	} `json:"usage,omitempty"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		FinishReason string `json:"finish_reason"`
		Message      struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int64    `json:"prompt_tokens"`
		CompletionTokens int64    `json:"completion_tokens"`
		TotalTokens      int64    `json:"total_tokens"`
		Cost             *float64 `json:"cost"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

type apiError struct {
	Message string `json:"message"`
	Code    any    `json:"code"`
	Type    string `json:"type"`
}

// Generate implements providers.Provider: one attempt per model, in order.
func (c *Client) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	start := time.Now()
	var attempts []providers.Attempt
	var last *providers.Error
	for _, model := range c.cfg.Models {
		resp, perr := c.call(ctx, model, req)
		if perr == nil {
			resp.Provider = c.def.Name
			resp.SelectedModel = c.cfg.Models[0]
			for _, a := range attempts {
				resp.AttemptedModels = append(resp.AttemptedModels, a.Model)
			}
			resp.AttemptedModels = append(resp.AttemptedModels, model)
			resp.Fallbacks = attempts
			resp.LatencySeconds = time.Since(start).Seconds()
			return resp, nil
		}
		attempts = append(attempts, providers.Attempt{Model: model, StatusCode: perr.StatusCode, Code: perr.Code, Error: perr.Message})
		last = perr
		// Only what another model might not suffer falls back: capacity,
		// outages, a model that is unavailable. A bad key or a bad request
		// fails the same way everywhere.
		if !fallsBack(perr) || ctx.Err() != nil {
			break
		}
	}
	last.Attempts = attempts
	return providers.Response{}, last
}

func fallsBack(e *providers.Error) bool {
	return e.Kind == providers.KindRetryable || e.Code == "model_unavailable"
}

func (c *Client) call(ctx context.Context, model string, req providers.Request) (providers.Response, *providers.Error) {
	body := chatRequest{
		Model:       model,
		Messages:    []message{{Role: "system", Content: req.System}, {Role: "user", Content: req.Prompt}},
		Temperature: c.cfg.Generation.Temperature, TopP: c.cfg.Generation.TopP,
		MaxTokens: c.cfg.Generation.MaxTokens, Seed: c.cfg.Generation.Seed,
		Provider: c.cfg.Routing, ResponseFormat: c.cfg.ResponseFormat,
	}
	if c.def.Name == "openrouter" {
		// Ask OpenRouter to report the call's cost in usage.cost.
		body.Usage = &struct {
			Include bool `json:"include"`
		}{true}
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "bad_request", Message: err.Error()}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+"/chat/completions", bytes.NewReader(buf))
	if err != nil {
		return providers.Response{}, &providers.Error{Kind: providers.KindFatal, Code: "bad_base_url", Message: c.scrub(err.Error())}
	}
	hreq.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.cfg.AppName != "" {
		hreq.Header.Set("X-Title", c.cfg.AppName)
	}
	if c.cfg.Referer != "" {
		hreq.Header.Set("HTTP-Referer", c.cfg.Referer)
	}
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return providers.Response{}, c.transportError(err)
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, 64<<20))
	if err != nil {
		return providers.Response{}, c.transportError(err)
	}
	if hresp.StatusCode != http.StatusOK {
		return providers.Response{}, c.httpError(hresp, data)
	}
	var cr chatResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return providers.Response{}, &providers.Error{Kind: providers.KindRetryable, Code: "bad_response", StatusCode: 200, Message: "response is not JSON: " + c.scrub(head(string(data)))}
	}
	if cr.Error != nil {
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "api_error", StatusCode: 200, Message: c.scrub(cr.Error.Message)}
	}
	if len(cr.Choices) == 0 {
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "empty_content", StatusCode: 200, Message: "the response has no choices"}
	}
	ch := cr.Choices[0]
	switch ch.FinishReason {
	case "length":
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "finish_length", StatusCode: 200, Message: "the answer was cut at max_tokens (finish_reason length): raise generation.max_tokens"}
	case "content_filter":
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "finish_content_filter", StatusCode: 200, Message: "the answer was withheld by a content filter"}
	case "error":
		return providers.Response{}, &providers.Error{Kind: providers.KindRetryable, Code: "finish_error", StatusCode: 200, Message: "the model stopped with finish_reason error"}
	}
	if ch.Message.Content == nil || strings.TrimSpace(*ch.Message.Content) == "" {
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "empty_content", StatusCode: 200, Message: "the answer is empty"}
	}
	out := providers.Response{Text: *ch.Message.Content, ChosenModel: model, RequestID: cr.ID, FinishReason: ch.FinishReason}
	if cr.Model != "" {
		out.ChosenModel = cr.Model
	}
	if out.RequestID == "" {
		out.RequestID = hresp.Header.Get("X-Request-Id")
	}
	if u := cr.Usage; u != nil {
		out.Usage = providers.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
		out.CostUSD = u.Cost
	}
	return out, nil
}

func (c *Client) transportError(err error) *providers.Error {
	code := "connection_error"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		code = "timeout"
	}
	return &providers.Error{Kind: providers.KindRetryable, Code: code, Message: c.scrub(err.Error())}
}

func (c *Client) httpError(resp *http.Response, body []byte) *providers.Error {
	msg := string(body)
	var wrapped struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(body, &wrapped) == nil && wrapped.Error != nil && wrapped.Error.Message != "" {
		msg = wrapped.Error.Message
	}
	e := &providers.Error{StatusCode: resp.StatusCode, Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: c.scrub(head(msg))}
	switch s := resp.StatusCode; {
	case s == 429 || s >= 500 || s == 408:
		e.Kind = providers.KindRetryable
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case s == 401 || s == 403:
		e.Kind = providers.KindFatal
		if c.cfg.APIKeyEnv != "" {
			e.Message += fmt.Sprintf(" (check the key in %s)", c.cfg.APIKeyEnv)
		}
	case (s == 404 || s == 400) && mentionsModel(msg):
		// An unknown model is a configuration error; a model that exists
		// but is unavailable right now may have a fallback.
		e.Kind = providers.KindFatal
		e.Code = "unknown_model"
		if strings.Contains(strings.ToLower(msg), "unavailable") || strings.Contains(strings.ToLower(msg), "no endpoints") {
			e.Kind, e.Code = providers.KindFailed, "model_unavailable"
		}
	default:
		e.Kind = providers.KindFailed
	}
	return e
}

func mentionsModel(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "model") || strings.Contains(m, "no endpoints")
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// scrub removes the API key from anything that may be logged or recorded,
// even when a server echoes it back.
func (c *Client) scrub(s string) string {
	if c.key != "" {
		s = strings.ReplaceAll(s, c.key, "[redacted]")
	}
	return s
}

func head(s string) string {
	if len(s) > 500 {
		return s[:500] + "…"
	}
	return s
}
