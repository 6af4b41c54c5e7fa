package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
)

// teacherServer is an OpenAI-compatible chat completions server on
// loopback that answers every refine prompt with a schema-valid envelope,
// after a delay, and counts how often it saw each prompt: the tests'
// ground truth for "no teacher call was paid twice".
type teacherServer struct {
	*httptest.Server
	delay time.Duration

	mu    sync.Mutex
	seen  map[string]int
	calls int
	// fail, when set, answers a request instead of the model: it returns
	// the status, headers and body to send, or status 0 to answer normally.
	fail func(prompt string) (int, map[string]string, string)
}

// failWith makes the server answer every request (or those fail selects)
// with an error until it is called again with nil.
func (ts *teacherServer) failWith(f func(prompt string) (int, map[string]string, string)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.fail = f
}

var payloadTypeRE = regexp.MustCompile(`"payload_type": "(checklist|itinerary|decision_tree|procedure)"`)

func newTeacherServer(t *testing.T, delay time.Duration) *teacherServer {
	ts := &teacherServer{delay: delay, seen: map[string]int{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.handle))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *teacherServer) handle(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	prompt := req.Messages[len(req.Messages)-1].Content
	sum := sha256.Sum256([]byte(prompt))
	key := hex.EncodeToString(sum[:])
	ts.mu.Lock()
	ts.seen[key]++
	ts.calls++
	fail := ts.fail
	ts.mu.Unlock()
	if fail != nil {
		if status, headers, body := fail(prompt); status != 0 {
			for k, v := range headers {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
			return
		}
	}
	select {
	case <-time.After(ts.delay):
	case <-r.Context().Done():
		return
	}
	pt := "checklist"
	if m := payloadTypeRE.FindStringSubmatch(prompt); m != nil {
		pt = m[1]
	}
	content := envelopeFor(pt, int(sum[0])%3+1)
	resp := map[string]any{
		"id":      "gen-" + key[:12],
		"object":  "chat.completion",
		"model":   req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": content}}},
		"usage":   map[string]any{"prompt_tokens": len(prompt) / 4, "completion_tokens": len(content) / 4, "total_tokens": (len(prompt) + len(content)) / 4},
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (ts *teacherServer) counts() (calls int, maxPerPrompt int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, n := range ts.seen {
		maxPerPrompt = max(maxPerPrompt, n)
	}
	return ts.calls, maxPerPrompt
}

func (ts *teacherServer) reset() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.seen, ts.calls = map[string]int{}, 0
}

// envelopeFor returns a time-sensitive answer with nVerify verification
// steps, valid for payload type pt.
func envelopeFor(pt string, nVerify int) string {
	payloads := map[string]any{
		"checklist":     map[string]any{"title": "Entry checklist", "groups": []any{map[string]any{"name": "Before you go", "items": []any{map[string]any{"text": "Check passport validity", "priority": "must"}}}}},
		"itinerary":     map[string]any{"title": "Two days", "trip_days": []any{map[string]any{"day": 1, "summary": "Old town", "items": []any{map[string]any{"time_block": "morning", "activity": "Walk the old town"}}}}},
		"decision_tree": map[string]any{"title": "Do I need a visa?", "nodes": []any{map[string]any{"id": "start", "type": "question", "text": "Which passport do you hold?"}}},
		"procedure":     map[string]any{"title": "Apply for a visa", "steps": []any{map[string]any{"step": 1, "instruction": "Gather documents"}}},
	}
	steps := []string{}
	for i := range nVerify {
		steps = append(steps, fmt.Sprintf("Check official source %d for visa rules", i+1))
	}
	b, _ := json.Marshal(map[string]any{
		"summary":            "Visa and entry requirements depend on your nationality.",
		"assumptions":        []string{"Non-EU passport"},
		"uncertainty_notes":  "Visa rules change; confirm before travel.",
		"next_steps":         []string{"Book travel"},
		"verification_steps": steps,
		"payload_type":       pt,
		"payload":            payloads[pt],
	})
	return string(b)
}
