package cache

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/pgrules/pgrules/providers"
)

// decodeTeacher gives what json.Unmarshal gives — the same Response, or
// an error when it errs — for teacher blocks as pgrules writes them and
// for every kind of block it does not: other keys, other cases, other
// types, nulls, fallbacks, escapes, invalid UTF-8, numbers out of range.
func TestDecodeTeacherMatchesEncodingJSON(t *testing.T) {
	cost, usage := 0.0125, &providers.Usage{PromptTokens: 1200, CompletionTokens: 800, TotalTokens: 2000}
	written := []providers.Response{
		{},
		{Provider: "openrouter", SelectedModel: "x-ai/grok-4.1-fast", ChosenModel: "x-ai/grok-4.1-fast", AttemptedModels: []string{"x-ai/grok-4.1-fast"}, LatencySeconds: 2.345, Usage: usage, CostUSD: &cost, FinishReason: "stop", RequestID: "gen-1"},
		{Provider: "dryrun", ChosenModel: "dryrun-v1", AttemptedModels: []string{}, LatencySeconds: 0.001, SecretsRedacted: 2},
		{Provider: "p", Fallbacks: []providers.Attempt{{Model: "a", StatusCode: 429, Error: "rate"}}, AttemptedModels: []string{"a", "b"}},
		{Provider: `quo"te <b> \ é 日本` + "\u2028", ChosenModel: "m"},
	}
	var blocks []string
	for _, r := range written {
		b, _ := json.Marshal(r)
		blocks = append(blocks, string(b))
	}
	blocks = append(blocks,
		`{"Provider": "case"}`, `{"provider": 1}`, `{"provider": null, "usage": null, "cost_usd": null, "attempted_models": null}`,
		`{"usage": {"prompt_tokens": 1.5}}`, `{"usage": {"prompt_tokens": null}}`, `{"usage": {"extra": 1}}`, `{"usage": {"Prompt_Tokens": 5}}`, `{"usage": 3}`,
		`{"latency_s": "1.5"}`, `{"latency_s": 1e400}`, `{"cost_usd": -0.0}`, `{"secrets_redacted": 1e3}`, `{"secrets_redacted": 99999999999999999999}`,
		`{"attempted_models": ["a", null, "b"]}`, `{"attempted_models": [1]}`, `{"fallbacks": null}`, `{"provider": "a", "provider": "b"}`,
		"{\"provider\": \"bad\xff\"}", `{"provider": "\ud800"}`, `{"unknown": {"deep": [1, 2]}}`, `[]`, `{`, ``, `null`, `{"provider": "x",}`)
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		// A written block cut at a random place, or with a byte changed.
		b := []byte(blocks[1+r.IntN(len(written)-1)])
		if r.IntN(2) == 0 {
			b = b[:r.IntN(len(b))]
		} else {
			const alphabet = "{}[]\":,0 ae.-\\"
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		}
		blocks = append(blocks, string(b))
	}
	fast := 0
	for _, b := range blocks {
		var want, got providers.Response
		werr := json.Unmarshal([]byte(b), &want)
		gerr := decodeTeacher([]byte(b), &got)
		if (werr == nil) != (gerr == nil) || werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v, %v\nwant %+v, %v", b, got, gerr, want, werr)
		}
		var probe providers.Response
		if fastTeacher([]byte(b), &probe) {
			fast++
		}
	}
	// The blocks pgrules writes take the fast path (fallbacks excepted).
	for i, r := range written {
		b, _ := json.Marshal(r)
		var probe providers.Response
		if fastTeacher(b, &probe) != (len(r.Fallbacks) == 0) {
			t.Errorf("written block %d (%s) fast path %v", i, strings.TrimSpace(string(b)), !(len(r.Fallbacks) == 0))
		}
	}
	t.Logf("%d of %d blocks decoded by the fast path", fast, len(blocks))
}
