package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pgrules/pgrules/providers"
)

const secret = "sk-or-v1-test-0123456789abcdefghijklmnop"

// server is a loopback OpenAI/OpenRouter-compatible endpoint whose
// behaviour per model is scripted by the test.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	heads  []http.Header
	reply  func(model string, n int) (status int, header map[string]string, body string)
	count  map[string]int
}

func newServer(t *testing.T, reply func(model string, n int) (int, map[string]string, string)) *server {
	s := &server{reply: reply, count: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		model, _ := body["model"].(string)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.heads = append(s.heads, r.Header.Clone())
		s.count[model]++
		n := s.count[model]
		s.mu.Unlock()
		status, hdr, out := s.reply(model, n)
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(s.Close)
	return s
}

func ok(content, model string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "gen-123", "model": model,
		"choices": []any{map[string]any{"finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": content}}},
		"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.00042},
	})
	return string(b)
}

func client(t *testing.T, s *server, cfg string) *Client {
	t.Helper()
	t.Setenv("OPENROUTER_API_KEY", secret)
	c := New(Defaults{Name: "openrouter", BaseURL: s.URL + "/v1", APIKeyEnv: "OPENROUTER_API_KEY", KeyRequired: true})
	if _, err := c.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	return c
}

var req = providers.Request{ID: "s1", System: "JSON only", Prompt: "refine", PayloadType: "checklist"}

func TestFallbackModelAnswersAfter429And503(t *testing.T) {
	for _, status := range []int{429, 503} {
		s := newServer(t, func(model string, n int) (int, map[string]string, string) {
			if model == "a/first" {
				return status, map[string]string{"Retry-After": "3"}, `{"error": {"message": "busy"}}`
			}
			return 200, nil, ok(`{"summary": "x"}`, model)
		})
		c := client(t, s, `{"models": ["a/first", "b/second"], "app_name": "pgrules-test", "referer": "https://example.test",
			"routing": {"order": ["p1"], "allow_fallbacks": false, "require_parameters": true, "data_collection": "deny", "max_price": {"prompt": 1}},
			"generation": {"temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "seed": 7}}`)
		resp, err := c.Generate(context.Background(), req)
		if err != nil {
			t.Fatalf("%d: %v", status, err)
		}
		if resp.ChosenModel != "b/second" || resp.SelectedModel != "a/first" || strings.Join(resp.AttemptedModels, ",") != "a/first,b/second" {
			t.Errorf("%d: models %+v", status, resp)
		}
		if len(resp.Fallbacks) != 1 || resp.Fallbacks[0].StatusCode != status || resp.Fallbacks[0].Error == "" {
			t.Errorf("%d: fallbacks %+v", status, resp.Fallbacks)
		}
		if resp.RequestID != "gen-123" || resp.Usage.TotalTokens != 15 || resp.CostUSD == nil || *resp.CostUSD != 0.00042 {
			t.Errorf("%d: provenance %+v", status, resp)
		}
		body, head := s.bodies[1], s.heads[1]
		prov, _ := body["provider"].(map[string]any)
		if prov["data_collection"] != "deny" || prov["allow_fallbacks"] != false || body["seed"] != float64(7) || body["temperature"] != 0.2 {
			t.Errorf("routing/generation not passed through: %v", body)
		}
		if head.Get("Authorization") != "Bearer "+secret || head.Get("X-Title") != "pgrules-test" || head.Get("HTTP-Referer") != "https://example.test" {
			t.Errorf("headers %v", head)
		}
	}
}

func TestFailureTaxonomy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		hdr    map[string]string
		body   string
		kind   providers.ErrorKind
		code   string
		after  time.Duration
	}{
		{"429 with Retry-After seconds", 429, map[string]string{"Retry-After": "7"}, `{"error": {"message": "rate limited"}}`, providers.KindRetryable, "http_429", 7 * time.Second},
		{"503", 503, nil, `oops`, providers.KindRetryable, "http_503", 0},
		{"401", 401, nil, `{"error": {"message": "No auth credentials found"}}`, providers.KindFatal, "http_401", 0},
		{"403", 403, nil, `{"error": {"message": "forbidden"}}`, providers.KindFatal, "http_403", 0},
		{"unknown model", 400, nil, `{"error": {"message": "x/nope is not a valid model ID"}}`, providers.KindFatal, "unknown_model", 0},
		{"other 4xx", 422, nil, `{"error": {"message": "bad"}}`, providers.KindFailed, "http_422", 0},
		{"200 with an upstream 502 (OpenRouter)", 200, nil, `{"error": {"message": "upstream provider failed", "code": 502}}`, providers.KindRetryable, "upstream_502", 0},
		{"200 with an upstream 503 as a string code", 200, nil, `{"error": {"message": "overloaded", "code": "503"}}`, providers.KindRetryable, "upstream_503", 0},
		{"200 with a client error object", 200, nil, `{"error": {"message": "invalid request", "code": 400}}`, providers.KindFailed, "api_error", 0},
		{"200 with an HTML page", 200, map[string]string{"Content-Type": "text/html; charset=utf-8"}, `<html><body>Welcome to nginx</body></html>`, providers.KindRetryable, "bad_response", 0},
		{"200 with an event stream", 200, map[string]string{"Content-Type": "text/event-stream"}, "data: {\"choices\": []}\n\n", providers.KindRetryable, "bad_response", 0},
		// The error shapes of the servers people run.
		{"vLLM context length", 400, nil, `{"object": "error", "message": "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens (2500 in the messages, 500 in the completion).", "type": "BadRequestError", "param": null, "code": 400}`, providers.KindFailed, "context_length_exceeded", 0},
		{"vLLM unknown model", 404, nil, `{"object": "error", "message": "The model ` + "`qwen-nope`" + ` does not exist.", "type": "NotFoundError", "param": null, "code": 404}`, providers.KindFatal, "unknown_model", 0},
		{"llama.cpp context size", 400, nil, `{"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 4096}}`, providers.KindFailed, "context_length_exceeded", 0},
		{"Ollama unknown model (OpenAI endpoint)", 404, nil, `{"error": {"message": "model \"qwen9:7b\" not found, try pulling it first", "type": "api_error", "param": null, "code": null}}`, providers.KindFatal, "unknown_model", 0},
		{"Ollama error as a string", 404, nil, `{"error": "model 'qwen9' not found"}`, providers.KindFatal, "unknown_model", 0},
		{"OpenRouter context length", 400, nil, `{"error": {"code": 400, "message": "This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens.", "metadata": {"provider_name": null}}}`, providers.KindFailed, "context_length_exceeded", 0},
		{"OpenAI context length code", 400, nil, `{"error": {"message": "Please reduce the length of the messages.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}`, providers.KindFailed, "context_length_exceeded", 0},
		{"a bad request that mentions the model is not an unknown model", 400, nil, `{"error": {"message": "model parameters: temperature must be <= 2"}}`, providers.KindFailed, "http_400", 0},
		{"finish_reason length", 200, nil, `{"choices": [{"finish_reason": "length", "message": {"content": "{\"sum"}}]}`, providers.KindFailed, "finish_length", 0},
		{"finish_reason content_filter", 200, nil, `{"choices": [{"finish_reason": "content_filter", "message": {"content": ""}}]}`, providers.KindFailed, "finish_content_filter", 0},
		{"finish_reason error", 200, nil, `{"choices": [{"finish_reason": "error", "message": {"content": ""}}]}`, providers.KindRetryable, "finish_error", 0},
		{"empty content", 200, nil, `{"choices": [{"finish_reason": "stop", "message": {"content": "  "}}]}`, providers.KindFailed, "empty_content", 0},
		{"no choices", 200, nil, `{"choices": []}`, providers.KindFailed, "empty_content", 0},
		{"a refusal", 200, nil, `{"choices": [{"finish_reason": "stop", "message": {"content": null, "refusal": "I can't help with that."}}]}`, providers.KindFailed, "refusal", 0},
		// JSON of another shape is what this server sends: a retry would
		// pay for another answer that cannot be read either.
		{"content of another shape", 200, nil, `{"choices": [{"finish_reason": "stop", "message": {"content": {"text": "x"}}}]}`, providers.KindFatal, "bad_response", 0},
		{"choices of another shape", 200, nil, `{"choices": {"0": {}}}`, providers.KindFatal, "bad_response", 0},
		{"JSON cut short", 200, nil, `{"choices": [{"finish_reason": "stop", "message": {"content": "{\"sum`, providers.KindRetryable, "bad_response", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(string, int) (int, map[string]string, string) { return tc.status, tc.hdr, tc.body })
			_, err := client(t, s, `{"models": ["m"]}`).Generate(context.Background(), req)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Code != tc.code || pe.RetryAfter != tc.after {
				t.Fatalf("err = %#v, want kind %v code %s retry-after %v", err, tc.kind, tc.code, tc.after)
			}
			if pe.Message == "" || !utf8.ValidString(pe.Message) {
				t.Errorf("message %q: empty or not UTF-8", pe.Message)
			}
			if tc.status == 401 && !strings.Contains(pe.Message, "OPENROUTER_API_KEY") {
				t.Errorf("401 message does not say what to fix: %s", pe.Message)
			}
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	if got := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); got != 90*time.Second {
		t.Errorf("HTTP date: %v", got)
	}
	if got := retryAfter("1.5", now); got != 1500*time.Millisecond {
		t.Errorf("seconds: %v", got)
	}
	if got := retryAfter("soon", now); got != 0 {
		t.Errorf("garbage: %v", got)
	}
}

func TestKeyNeverLeaks(t *testing.T) {
	s := newServer(t, func(string, int) (int, map[string]string, string) {
		return 401, nil, `{"error": {"message": "invalid key ` + secret + `"}}`
	})
	c := client(t, s, `{"models": ["m"]}`)
	_, err := c.Generate(context.Background(), req)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("err = %v", err)
	}
	conf, _ := c.Configure(context.Background(), []byte(`{"models": ["m"]}`))
	if strings.Contains(string(conf.IdentityJSON), secret) {
		t.Error("the key is in the cache identity")
	}
	t.Setenv("OPENROUTER_API_KEY", "")
	_, err = New(Defaults{Name: "openrouter", BaseURL: "https://openrouter.ai/api/v1", APIKeyEnv: "OPENROUTER_API_KEY", KeyRequired: true}).Configure(context.Background(), []byte(`{"models": ["m"]}`))
	if err == nil || !strings.Contains(err.Error(), "set OPENROUTER_API_KEY") {
		t.Errorf("missing key: %v", err)
	}
}

func TestIdentityCoversWhatChangesAnswers(t *testing.T) {
	s := newServer(t, func(string, int) (int, map[string]string, string) { return 200, nil, ok("x", "m") })
	id := func(cfg string) string {
		conf, err := client(t, s, cfg).Configure(context.Background(), []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return string(conf.IdentityJSON)
	}
	base := id(`{"models": ["m"], "generation": {"temperature": 0.2}, "base_url": "http://127.0.0.1:9/v1"}`)
	for _, same := range []string{
		`{"models": ["m"], "generation": {"temperature": 0.2}, "base_url": "http://127.0.0.1:9/v1", "timeout": "30s", "app_name": "x"}`,
		`{"models": ["m"], "generation": {"temperature": 0.2}, "base_url": "HTTP://127.0.0.1:9/v1/"}`,
	} {
		if id(same) != base {
			t.Errorf("%s: timeout, app name or the spelling of the URL changed the cache identity", same)
		}
	}
	for _, cfg := range []string{`{"models": ["m2"], "generation": {"temperature": 0.2}, "base_url": "http://127.0.0.1:9/v1"}`, `{"models": ["m"], "generation": {"temperature": 0.3}, "base_url": "http://127.0.0.1:9/v1"}`, `{"models": ["m"], "generation": {"temperature": 0.2}, "routing": {"order": ["x"]}, "base_url": "http://127.0.0.1:9/v1"}`,
		`{"models": ["m"], "generation": {"temperature": 0.2}, "base_url": "http://10.0.0.2:9/v1"}`} {
		if id(cfg) == base {
			t.Errorf("%s did not change the cache identity", cfg)
		}
	}
}

// Some OpenAI-compatible servers send the content as a list of parts, and
// token counts as 12.0: the answer is their text parts, in order, and
// the counts are read. Such a response used to read as "not JSON" and was
// asked again, paid again.
func TestContentAsPartsAndFloatCounts(t *testing.T) {
	s := newServer(t, func(string, int) (int, map[string]string, string) {
		return 200, nil, `{"id": "g", "model": "m", "choices": [{"finish_reason": "stop", "message": {"content": [{"type": "text", "text": "{\"summary\": "}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "\"caf\u00e9\"}"}]}}], "usage": {"prompt_tokens": 10.0, "completion_tokens": 5, "total_tokens": 15.0, "cost": "0.0012"}}`
	})
	resp, err := client(t, s, `{"models": ["m"]}`).Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != `{"summary": "café"}` || resp.Usage == nil || resp.Usage.TotalTokens != 15 || resp.Usage.PromptTokens != 10 || resp.CostUSD == nil || *resp.CostUSD != 0.0012 {
		t.Errorf("text %q, usage %+v", resp.Text, resp.Usage)
	}
	// Invalid UTF-8 in a part is kept, as in a string content.
	s = newServer(t, func(string, int) (int, map[string]string, string) {
		return 200, nil, `{"id": "g", "model": "m", "choices": [{"finish_reason": "stop", "message": {"content": [{"type": "text", "text": "caf` + "\xff" + `"}]}}]}`
	})
	if resp, err = client(t, s, `{"models": ["m"]}`).Generate(context.Background(), req); err != nil || resp.Text != "caf\xff" {
		t.Errorf("text %q, %v; want the part's own bytes", resp.Text, err)
	}
}

func TestInvalidUTF8InTheAnswerIsKept(t *testing.T) {
	content := `{"summary": "caf` + "\xff\xfe" + `"}`
	s := newServer(t, func(string, int) (int, map[string]string, string) {
		lit, _ := json.Marshal("x") // shape only
		_ = lit
		return 200, nil, `{"id": "g", "model": "m", "choices": [{"finish_reason": "stop", "message": {"content": "` + strings.ReplaceAll(content, `"`, `\"`) + `"}}]}`
	})
	resp, err := client(t, s, `{"models": ["m"]}`).Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != content {
		t.Errorf("text = %q, want the answer's own bytes %q (not U+FFFD)", resp.Text, content)
	}
}

func TestUnquoteKeepingBytes(t *testing.T) {
	for lit, want := range map[string]string{
		`"a\"b\\c\/d\n\t"`:     "a\"b\\c/d\n\t",
		`"\u00e9\ud83d\ude00"`: "é😀",
		"\"x\xffy\"":           "x\xffy",
		`"a\ud800b"`:           "a\xed\xa0\x80b", // a lone surrogate: invalid UTF-8, not U+FFFD
	} {
		got, ok := unquoteKeepingBytes([]byte(lit))
		if !ok || got != want {
			t.Errorf("unquote(%q) = %q, %v; want %q", lit, got, ok, want)
		}
	}
	for _, bad := range []string{`"\u12"`, `"abc\"`, `abc`, `"\q"`} {
		if _, ok := unquoteKeepingBytes([]byte(bad)); ok {
			t.Errorf("unquote(%q) accepted", bad)
		}
	}
}

func TestMissingUsageIsUnknownNotZero(t *testing.T) {
	s := newServer(t, func(string, int) (int, map[string]string, string) {
		return 200, nil, `{"id": "g", "model": "m", "choices": [{"finish_reason": "stop", "message": {"content": "{}"}}]}`
	})
	resp, err := client(t, s, `{"models": ["m"]}`).Generate(context.Background(), req)
	if err != nil || resp.Usage != nil {
		t.Errorf("usage = %+v, %v; want nil when the server reports none", resp.Usage, err)
	}
}

func TestBodyLargerThanMaxResponseBytesIsNotBuffered(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	s := newServer(t, func(string, int) (int, map[string]string, string) { return 200, nil, ok(big, "m") })
	_, err := client(t, s, `{"models": ["m"], "max_response_bytes": 65536}`).Generate(context.Background(), req)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "response_too_large" || pe.Kind != providers.KindFailed {
		t.Fatalf("err = %v", err)
	}
}

func TestAnswerEchoingTheKeyIsScrubbedAndCounted(t *testing.T) {
	s := newServer(t, func(string, int) (int, map[string]string, string) {
		return 200, nil, ok(`{"summary": "your key is `+secret+` and again `+secret+`"}`, "m")
	})
	resp, err := client(t, s, `{"models": ["m"]}`).Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(resp.Text, secret) || resp.SecretsRedacted != 2 || !strings.Contains(resp.Text, "[redacted]") {
		t.Errorf("text %q redacted %d", resp.Text, resp.SecretsRedacted)
	}
}

// A key that straddles the 500-byte cut of an error message must not leak
// a prefix: scrub first, then cut.
func TestKeyAcrossTheMessageCutDoesNotLeak(t *testing.T) {
	pad := strings.Repeat("p", 490)
	s := newServer(t, func(string, int) (int, map[string]string, string) {
		return 422, nil, `{"error": {"message": "` + pad + `Bearer ` + secret + `"}}`
	})
	_, err := client(t, s, `{"models": ["m"]}`).Generate(context.Background(), req)
	if err == nil || strings.Contains(err.Error(), secret[:10]) {
		t.Errorf("a prefix of the key leaked: %v", err)
	}
}

func TestConfigureRejectsBadSettingsByPath(t *testing.T) {
	for cfg, want := range map[string]string{
		`{"models": ["m"], "timeout": "-5s"}`:                     "timeout: must be more than 0, got -5s",
		`{"models": ["m"], "generation": {"temprature": 0.2}}`:    "generation.temprature: unknown setting; did you mean temperature? (known under generation: max_tokens, seed, temperature, top_p)",
		`{"models": ["m"], "generation": {"max_tokens": "many"}}`: `generation.max_tokens: expected a whole number, got the text "many"`,
		`{"models": ["m"], "generation": {"temperature": 3}}`:     "generation.temperature: must be between 0 and 2, got 3",
		`{"models": []}`:   "models: is empty",
		`{"model": ["m"]}`: "model: unknown setting; did you mean models?",
		`{"models": ["m"], "base_url": "localhost:8080/v1"}`: `base_url: "localhost:8080/v1" is not an http(s) URL`,
		`{"models": ["m"], "max_response_bytes": 0}`:         "max_response_bytes: must be more than 0",
		`{"models": "a, b", "timeout": 30}`:                  "",
	} {
		_, err := New(Defaults{Name: "local", BaseURL: "http://127.0.0.1:1/v1"}).Configure(context.Background(), []byte(cfg))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", cfg, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err = %v, want %q", cfg, err, want)
		}
		var ce *providers.ConfigError
		if want != "" && !errors.As(err, &ce) {
			t.Errorf("%s: %T is not a *providers.ConfigError", cfg, err)
		}
	}
}

// A remote teacher's calls in flight are set by its rate limits and its
// user: the OpenAI-compatible plugins (openrouter, local) suggest none,
// so pgrules keeps its default of 4 (README, Benchmarks).
func TestRemoteTeachersSuggestNoConcurrency(t *testing.T) {
	s := newServer(t, func(string, int) (int, map[string]string, string) { return 200, nil, ok("x", "m") })
	conf, err := client(t, s, `{"models": ["m"]}`).Configure(context.Background(), []byte(`{"models": ["m"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if conf.SuggestedConcurrency != 0 {
		t.Errorf("suggested concurrency %d, want none", conf.SuggestedConcurrency)
	}
}
