package cache

import (
	"encoding/json"
	"math"
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

// encodeTeacher's block decodes to what json.Marshal's does, and is its
// very bytes where no string needs an HTML escape or a repair; numbers
// JSON cannot hold are refused by both.
func TestEncodeTeacherMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pieces := []string{"a", "gpt-4.1", " ", `"`, `\`, "<", ">", "&", "é", "日本", "\u2028", "\x00", "\n", "\xff", "😀"}
	str := func() string {
		var b strings.Builder
		for range r.IntN(4) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	floats := []float64{0, math.Copysign(0, -1), 1e-7, 1.5e-6, 123.456, 2.345, 1e20, 1e21, 1e300, 5e-324, -3.25, math.NaN(), math.Inf(1)}
	for i := range 5000 {
		resp := providers.Response{Provider: str(), SelectedModel: str(), ChosenModel: str(), RequestID: str(), FinishReason: str(),
			LatencySeconds: floats[r.IntN(len(floats))], SecretsRedacted: r.IntN(3) - 1}
		switch r.IntN(3) {
		case 1:
			resp.AttemptedModels = []string{}
		case 2:
			resp.AttemptedModels = []string{str(), str()}
		}
		if r.IntN(4) == 0 {
			resp.Fallbacks = []providers.Attempt{{Model: str(), StatusCode: 429, Error: str(), Code: str()}}
		}
		if r.IntN(2) == 0 {
			resp.Usage = &providers.Usage{PromptTokens: r.Int64N(1e6), CompletionTokens: r.Int64N(1e6), TotalTokens: -r.Int64N(5)}
		}
		if r.IntN(2) == 0 {
			c := floats[r.IntN(len(floats))]
			resp.CostUSD = &c
		}
		want, werr := json.Marshal(resp)
		got, gerr := encodeTeacher(&resp)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%d: %+v: json.Marshal %v, encodeTeacher %v", i, resp, werr, gerr)
		}
		if werr != nil {
			continue
		}
		var a, b providers.Response
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%d: %s does not decode: %v", i, got, err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%d:\n got %s\nwant %s", i, got, want)
		}
		if !strings.ContainsAny(string(want), `<>&\`) && !strings.Contains(string(want), "\ufffd") && string(got) != string(want) {
			t.Fatalf("%d: bytes differ where no escape does:\n got %s\nwant %s", i, got, want)
		}
	}
}

// A field added to providers.Response reaches the cache: encodeTeacher
// is checked with every field set.
func TestEncodeTeacherWritesEveryField(t *testing.T) {
	var resp providers.Response
	fill(reflect.ValueOf(&resp).Elem())
	resp.Text = "" // not in the block: the answer's bytes have a column
	resp.Fallbacks = nil
	got, err := encodeTeacher(&resp)
	if err != nil {
		t.Fatal(err)
	}
	var back providers.Response
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, resp) {
		t.Errorf("a field was lost:\n got %+v\nwant %+v\n(%s)", back, resp, got)
	}
}

// fill sets every field of v to something other than its zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(3)
	case reflect.Float64:
		v.SetFloat(1.25)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	default:
		panic("fill: " + v.Kind().String())
	}
}
