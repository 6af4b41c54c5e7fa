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
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pgrules/pgrules/internal/jsonstr"
	"github.com/pgrules/pgrules/providers"
)

// Config is a provider's section of pgrules.yaml.
type Config struct {
	BaseURL string `json:"base_url"`
	// Models accepts a list or "a,b" (as an environment variable has it).
	Models    providers.StringList `json:"models"`
	APIKeyEnv string               `json:"api_key_env"`
	// AppName and Referer identify the app to OpenRouter (X-Title,
	// HTTP-Referer).
	AppName    string          `json:"app_name"`
	Referer    string          `json:"referer"`
	Routing    json.RawMessage `json:"routing"`
	Generation Generation      `json:"generation"`
	// ResponseFormat is passed through as the request's response_format
	// (e.g. {"type": "json_object"}).
	ResponseFormat json.RawMessage    `json:"response_format"`
	Timeout        providers.Duration `json:"timeout"`
	// MaxResponseBytes bounds the body read from the server: a runaway or
	// hostile server cannot make the plugin buffer more than this.
	MaxResponseBytes int64 `json:"max_response_bytes"`
}

// DefaultMaxResponseBytes is 8 MiB: a long itinerary is tens of KB.
const DefaultMaxResponseBytes = 8 << 20

// validate checks values a server would reject only after a paid call, or
// never (a negative timeout).
func (c *Config) validate() error {
	bad := func(path, format string, args ...any) error {
		return &providers.ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	switch g := c.Generation; {
	case len(c.Models) == 0:
		return bad("models", "is empty: name at least one model")
	case c.Timeout <= 0:
		return bad("timeout", "must be more than 0, got %s", time.Duration(c.Timeout))
	case c.MaxResponseBytes <= 0:
		return bad("max_response_bytes", "must be more than 0, got %d", c.MaxResponseBytes)
	case g.Temperature != nil && (*g.Temperature < 0 || *g.Temperature > 2):
		return bad("generation.temperature", "must be between 0 and 2, got %g", *g.Temperature)
	case g.TopP != nil && (*g.TopP <= 0 || *g.TopP > 1):
		return bad("generation.top_p", "must be more than 0 and at most 1, got %g", *g.TopP)
	case g.MaxTokens != nil && *g.MaxTokens < 1:
		return bad("generation.max_tokens", "must be at least 1, got %d", *g.MaxTokens)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" || !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") {
		return bad("base_url", "%q is not an http(s) URL", c.BaseURL)
	}
	return nil
}

// Generation is the sampling configuration.
type Generation struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
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
	cfg := Config{BaseURL: c.def.BaseURL, APIKeyEnv: c.def.APIKeyEnv, Timeout: providers.Duration(5 * time.Minute), MaxResponseBytes: DefaultMaxResponseBytes}
	if err := providers.DecodeConfig(raw, &cfg); err != nil {
		return providers.Configured{}, err
	}
	if err := cfg.validate(); err != nil {
		return providers.Configured{}, err
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
	// What changes answers: backend, the server, models, routing,
	// generation, format. Not the key, not timeouts. The server is part
	// of it: the same model name on another server (another vLLM, a
	// different quantisation behind Ollama) is another teacher.
	identity, _ := json.Marshal(struct {
		Provider       string          `json:"provider"`
		BaseURL        string          `json:"base_url"`
		Models         []string        `json:"models"`
		Routing        json.RawMessage `json:"routing,omitempty"`
		Generation     Generation      `json:"generation"`
		ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	}{c.def.Name, normalizeURL(cfg.BaseURL), cfg.Models, compact(cfg.Routing), cfg.Generation, compact(cfg.ResponseFormat)})
	return providers.Configured{IdentityJSON: identity, Models: cfg.Models}, nil
}

// normalizeURL spells one server one way: lower-case scheme and host, no
// default port, no trailing slash.
func normalizeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return raw
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if port := u.Port(); port == "80" && u.Scheme == "http" || port == "443" && u.Scheme == "https" {
		u.Host = u.Hostname()
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String()
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
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		FinishReason string `json:"finish_reason"`
		Message      struct {
			Content content `json:"content"`
			// Refusal is why the model declined (OpenAI's structured
			// outputs), when it did.
			Refusal string `json:"refusal"`
		} `json:"message"`
	} `json:"choices"`
	Usage *struct {
		// Counts as numbers of any form: some servers write 12.0.
		PromptTokens     tokens `json:"prompt_tokens"`
		CompletionTokens tokens `json:"completion_tokens"`
		TotalTokens      tokens `json:"total_tokens"`
		Cost             *cost  `json:"cost"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// content is a message's content: a string, or (from some
// OpenAI-compatible servers) a list of parts whose text parts make it up.
// Null leaves it nil. Its bytes are kept as sent, invalid UTF-8 and lone
// surrogates included, where encoding/json would write U+FFFD: the
// answer's UTF-8 check then refuses what would have been repaired.
type content struct{ text *string }

func (c *content) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		s, ok := unquoteKeepingBytes(b)
		if !ok {
			return errors.New("message.content is not a JSON string")
		}
		c.text = &s
		return nil
	}
	var parts []struct {
		Type string          `json:"type"`
		Text json.RawMessage `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("message.content is neither text nor a list of parts")
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" || len(p.Text) == 0 || string(p.Text) == "null" {
			continue
		}
		t, ok := unquoteKeepingBytes(p.Text)
		if !ok {
			return errors.New("a text part of message.content is not a JSON string")
		}
		sb.WriteString(t)
	}
	s := sb.String()
	c.text = &s
	return nil
}

// tokens is a token count written as any JSON number.
type tokens int64

func (t *tokens) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return errors.New("a usage token count is not a number")
	}
	*t = tokens(f)
	return nil
}

// cost is a cost in USD written as a JSON number or as a number in a
// string ("0.0012"), as some gateways write it.
type cost float64

func (c *cost) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(strings.Trim(string(b), `"`), 64)
	if err != nil {
		return errors.New("usage.cost is not a number")
	}
	*c = cost(f)
	return nil
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
		return providers.Response{}, &providers.Error{Kind: providers.KindFatal, Code: "bad_base_url", Message: c.head(err.Error())}
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
	// Read at most one byte more than allowed, so "too large" is known
	// without buffering the rest.
	data, err := io.ReadAll(io.LimitReader(hresp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return providers.Response{}, c.transportError(err)
	}
	if int64(len(data)) > c.cfg.MaxResponseBytes {
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "response_too_large", StatusCode: hresp.StatusCode,
			Message: fmt.Sprintf("the response body is larger than max_response_bytes (%d bytes); raise providers.%s.max_response_bytes if that is expected", c.cfg.MaxResponseBytes, c.def.Name)}
	}
	if hresp.StatusCode != http.StatusOK {
		return providers.Response{}, c.httpError(hresp, data)
	}
	if ct := hresp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") || strings.HasPrefix(ct, "text/html") {
		return providers.Response{}, &providers.Error{Kind: providers.KindRetryable, Code: "bad_response", StatusCode: 200,
			Message: fmt.Sprintf("the server answered %s, not a JSON chat completion (is base_url %s the API, ending in /v1?): %s", ct, c.cfg.BaseURL, c.head(string(data)))}
	}
	var cr chatResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		if !json.Valid(data) {
			// Cut short on the way, most likely: another try may do.
			return providers.Response{}, &providers.Error{Kind: providers.KindRetryable, Code: "bad_response", StatusCode: 200, Message: "response is not JSON: " + c.head(string(data))}
		}
		// Whole JSON of another shape is what this server sends: asking
		// again pays for another answer that cannot be read either.
		return providers.Response{}, &providers.Error{Kind: providers.KindFatal, Code: "bad_response", StatusCode: 200,
			Message: fmt.Sprintf("the response is JSON but not a chat completion pgrules can read (%v; is base_url %s an OpenAI-compatible API?): %s", err, c.cfg.BaseURL, c.head(string(data)))}
	}
	if (len(cr.Error) > 0 && string(cr.Error) != "null") || cr.Object == "error" {
		return providers.Response{}, c.errorIn200(data)
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
	if ch.Message.Content.text == nil || strings.TrimSpace(*ch.Message.Content.text) == "" {
		if r := strings.TrimSpace(ch.Message.Refusal); r != "" {
			return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "refusal", StatusCode: 200, Message: "the model declined to answer: " + c.head(r)}
		}
		return providers.Response{}, &providers.Error{Kind: providers.KindFailed, Code: "empty_content", StatusCode: 200, Message: "the answer is empty"}
	}
	text, redacted := c.scrubCount(*ch.Message.Content.text)
	out := providers.Response{Text: text, ChosenModel: model, RequestID: cr.ID, FinishReason: ch.FinishReason, SecretsRedacted: redacted}
	if cr.Model != "" {
		out.ChosenModel = cr.Model
	}
	if out.RequestID == "" {
		out.RequestID = hresp.Header.Get("X-Request-Id")
	}
	if u := cr.Usage; u != nil {
		out.Usage = &providers.Usage{PromptTokens: int64(u.PromptTokens), CompletionTokens: int64(u.CompletionTokens), TotalTokens: int64(u.TotalTokens)}
		if u.Cost != nil {
			c := float64(*u.Cost)
			out.CostUSD = &c
		}
	}
	return out, nil
}

func (c *Client) transportError(err error) *providers.Error {
	code := "connection_error"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		code = "timeout"
	}
	return &providers.Error{Kind: providers.KindRetryable, Code: code, Message: c.head(err.Error())}
}

func (c *Client) httpError(resp *http.Response, body []byte) *providers.Error {
	ae := parseAPIError(body)
	msg := ae.Message
	if msg == "" {
		msg = string(body)
	}
	e := &providers.Error{StatusCode: resp.StatusCode, Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: c.head(msg)}
	switch s := resp.StatusCode; {
	case s == 429 || s >= 500 || s == 408:
		e.Kind = providers.KindRetryable
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case s == 401 || s == 403:
		e.Kind = providers.KindFatal
		if c.cfg.APIKeyEnv != "" {
			e.Message += fmt.Sprintf(" (check the key in %s)", c.cfg.APIKeyEnv)
		}
	case ae.contextLength():
		// Too long a prompt for this model is this sample's problem, not
		// the configuration's: the run goes on.
		e.Kind, e.Code = providers.KindFailed, "context_length_exceeded"
	case (s == 404 || s == 400) && ae.unknownModel():
		// An unknown model is a configuration error; a model that exists
		// but is unavailable right now may have a fallback.
		e.Kind, e.Code = providers.KindFatal, "unknown_model"
		if m := strings.ToLower(msg); strings.Contains(m, "unavailable") || strings.Contains(m, "no endpoints") {
			e.Kind, e.Code = providers.KindFailed, "model_unavailable"
		}
	default:
		e.Kind = providers.KindFailed
	}
	return e
}

// errorIn200 classifies an error object in an HTTP 200 body: OpenRouter
// reports an upstream provider's failure this way, with the upstream's
// status as the code.
func (c *Client) errorIn200(body []byte) *providers.Error {
	ae := parseAPIError(body)
	e := &providers.Error{Kind: providers.KindFailed, Code: "api_error", StatusCode: 200, Message: c.head(ae.Message)}
	switch n := ae.status(); {
	case n == 429 || n == 408 || n >= 500:
		e.Kind, e.Code = providers.KindRetryable, fmt.Sprintf("upstream_%d", n)
	case ae.contextLength():
		e.Code = "context_length_exceeded"
	}
	return e
}

// apiError is an error body in any of the shapes OpenAI-compatible
// servers use:
//
//	OpenAI, OpenRouter, llama.cpp: {"error": {"message", "code", "type"}}
//	Ollama (native endpoints):     {"error": "message"}
//	vLLM:                          {"object": "error", "message", "type", "code"}
type apiError struct {
	Message string
	Code    string
	Type    string
}

func parseAPIError(body []byte) apiError {
	var top struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Code    json.RawMessage `json:"code"`
		Type    string          `json:"type"`
	}
	if json.Unmarshal(body, &top) != nil {
		return apiError{}
	}
	out := apiError{Message: top.Message, Code: rawCode(top.Code), Type: top.Type}
	var s string
	var obj struct {
		Message string          `json:"message"`
		Code    json.RawMessage `json:"code"`
		Type    string          `json:"type"`
	}
	switch {
	case len(top.Error) == 0 || string(top.Error) == "null":
	case json.Unmarshal(top.Error, &s) == nil:
		out.Message = s
	case json.Unmarshal(top.Error, &obj) == nil:
		out.Message, out.Type = obj.Message, obj.Type
		if c := rawCode(obj.Code); c != "" {
			out.Code = c
		}
	}
	return out
}

// rawCode reads a code that servers send as a number or a string.
func rawCode(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

func (a apiError) status() int {
	n, _ := strconv.Atoi(a.Code)
	return n
}

func (a apiError) contextLength() bool {
	m := strings.ToLower(a.Message + " " + a.Code + " " + a.Type)
	for _, frag := range []string{"context_length_exceeded", "maximum context length", "context length", "exceed_context_size", "context size", "context window", "too many tokens", "prompt is too long"} {
		if strings.Contains(m, frag) {
			return true
		}
	}
	return false
}

func (a apiError) unknownModel() bool {
	m := strings.ToLower(a.Message + " " + a.Code + " " + a.Type)
	if strings.Contains(m, "model_not_found") || strings.Contains(m, "no endpoints") {
		return true
	}
	if !strings.Contains(m, "model") {
		return false
	}
	for _, frag := range []string{"not found", "does not exist", "not a valid model", "unknown model", "invalid model", "unavailable", "not exist", "no such model"} {
		if strings.Contains(m, frag) {
			return true
		}
	}
	return false
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
	s, _ = c.scrubCount(s)
	return s
}

func (c *Client) scrubCount(s string) (string, int) {
	if c.key == "" {
		return s, 0
	}
	n := strings.Count(s, c.key)
	if n == 0 {
		return s, 0
	}
	return strings.ReplaceAll(s, c.key, "[redacted]"), n
}

// head scrubs, then cuts: cutting first could leave a prefix of the key
// that no longer matches it. The cut falls on a character boundary.
func (c *Client) head(s string) string {
	s = strings.ToValidUTF8(c.scrub(s), "\uFFFD")
	if len(s) <= 500 {
		return s
	}
	cut := 500
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// unquoteKeepingBytes decodes a JSON string literal, copying bytes that are
// not valid UTF-8 as they are, and writing a lone surrogate escape as
// invalid UTF-8 too: the answer's UTF-8 check then refuses what U+FFFD
// would have repaired.
func unquoteKeepingBytes(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	return jsonstr.UnescapeKeeping(lit[1 : len(lit)-1])
}
