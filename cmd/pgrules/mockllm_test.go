package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mockLLM starts @dwmkerr/mock-llm, an OpenAI-compatible server written
// by others, on a free loopback port with rules (evaluated in order, the
// last match wins) and returns its base URL.
func mockLLM(t *testing.T, rules []any) string {
	t.Helper()
	modules := nodeModules(t, "@dwmkerr/mock-llm")
	dir := t.TempDir()
	// The config is YAML; JSON is YAML, and json.Marshal escapes for us.
	cfg, err := json.Marshal(map[string]any{"rules": rules})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mock-llm.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("node", filepath.Join(modules, "@dwmkerr", "mock-llm", "dist", "main.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", fmt.Sprintf("PORT=%d", port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mock-llm did not come up on %s:\n%s", base, out.String())
		}
	}
}

// mockRule answers requests to the chat completions endpoint that match
// (a JMESPath expression on the request) with status and body.
func mockRule(match string, status int, body map[string]any) map[string]any {
	b, _ := json.Marshal(body)
	return map[string]any{"path": "/v1/chat/completions", "method": "POST", "match": match,
		"response": map[string]any{"status": status, "content": string(b)}}
}

// The local teacher against a server we did not write: mock-llm answers
// each refine prompt with a schema-valid envelope of the payload type the
// prompt asks for, and answers prompts about Lisbon with an OpenAI-style
// 503. The run goes through the real plugin subprocess and real HTTP.
func TestLocalTeacherAgainstMockLLM(t *testing.T) {
	bin := buildPgrules(t)
	completion := func(pt string) map[string]any {
		return map[string]any{"id": "chatcmpl-{{timestamp}}", "object": "chat.completion", "model": "{{jmes request body.model}}",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": envelopeFor(pt, 2)}}}}
	}
	rules := []any{mockRule("@", 200, completion("checklist"))}
	for _, pt := range []string{"itinerary", "decision_tree", "procedure"} {
		rules = append(rules, mockRule(fmt.Sprintf(`contains(body.messages[-1].content, '"payload_type": "%s"')`, pt), 200, completion(pt)))
	}
	rules = append(rules, mockRule(`contains(body.messages[-1].content, 'Lisbon')`, 503,
		map[string]any{"error": map[string]any{"message": "mock-llm is overloaded", "type": "server_error"}}))
	base := mockLLM(t, rules)

	work := t.TempDir()
	cfg := fmt.Sprintf("providers:\n  local:\n    base_url: %s/v1\n    models: [mock-model]\n", base)
	if err := os.WriteFile(filepath.Join(work, "pgrules.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "out")
	b, err := localRun(t, bin, work, out, nil, "--max-retries", "0", "--allow-unhealthy").CombinedOutput()
	if err != nil {
		t.Fatalf("run against mock-llm: %v\n%s", err, b)
	}
	dataset := string(must(os.ReadFile(filepath.Join(out, "dataset_v1.jsonl"))))
	if n := strings.Count(dataset, "\n"); n < 10 {
		t.Errorf("%d records accepted from mock-llm's schema-valid answers, want at least 10\n%s", n, b)
	}
	for _, want := range []string{`"provider": "local"`, `"chosen_model": "mock-model"`, `"usage": null`} {
		if !strings.Contains(dataset, want) {
			t.Errorf("accepted records do not say %s:\n%.600s", want, dataset)
		}
	}
	failed := idsWithReason(t, filepath.Join(out, "dataset_v1_rejected.jsonl"), "teacher_error")
	rejected := string(must(os.ReadFile(filepath.Join(out, "dataset_v1_rejected.jsonl"))))
	if len(failed) == 0 || !strings.Contains(rejected, `"code": "http_503"`) || !strings.Contains(rejected, "mock-llm is overloaded") {
		t.Errorf("the Lisbon samples are not rejected teacher_error http_503 with the server's message (%v):\n%s", failed, rejected)
	}
	for _, id := range failed {
		if strings.Contains(dataset, `"id": "`+id+`"`) {
			t.Errorf("%s failed and is also accepted", id)
		}
	}
}
