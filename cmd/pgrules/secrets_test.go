package main

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgrules/pgrules/providers/plugintest"
)

// TestAPIKeyNeverLeaks runs the real pgrules and openrouter plugin with a
// key in the environment against a server that echoes the key back in
// its errors, then searches every byte pgrules wrote or printed.
func TestAPIKeyNeverLeaks(t *testing.T) {
	const key = "sk-or-v1-leakcheck-0123456789abcdefghijklmnopqrstuv"
	bin := buildPgrules(t)
	plugintest.Build(t, "openrouter") // next to pgrules, where it looks first
	good := newTeacherServer(t, 0)
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		switch n % 3 {
		case 0:
			w.WriteHeader(422)
			io.WriteString(w, `{"error": {"message": "bad request from `+r.Header.Get("Authorization")+`"}}`)
		case 1:
			// A 200 whose answer echoes the key: it must not reach the
			// dataset or the cache.
			rec := httptest.NewRecorder()
			good.Config.Handler.ServeHTTP(rec, r)
			body := strings.Replace(rec.Body.String(), `Visa rules change; confirm before travel.`, `Visa rules change; confirm before travel. Your key is `+key+`.`, 1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		default:
			good.Config.Handler.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	work := t.TempDir()
	cfg := filepath.Join(work, "pgrules.yaml")
	os.WriteFile(cfg, []byte("providers:\n  openrouter:\n    base_url: "+srv.URL+"/v1\n    models: [m]\n"), 0o644)
	sample, _ := filepath.Abs("../../testdata/sample")
	cmd := exec.Command(bin, "run", "--config", cfg, "--provider", "openrouter", "--concurrency", "1", "--log-level", "debug",
		"--plan", filepath.Join(sample, "prompt_plan_v1.jsonl"), "--drafts", filepath.Join(sample, "drafts_v1.jsonl"),
		"--critiques", filepath.Join(sample, "critiques_v1.jsonl"), "--out-dir", filepath.Join(work, "out"),
		// Every other call fails: commit anyway, so the records are there to search.
		"--allow-unhealthy")
	cmd.Env = append(os.Environ(), "OPENROUTER_API_KEY="+key, "XDG_CACHE_HOME="+filepath.Join(work, ".cache"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if strings.Contains(string(out), key) {
		t.Errorf("the API key is in pgrules' output")
	}
	var files []string
	filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	rejected := ""
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), key) || strings.Contains(string(b), "leakcheck") {
			t.Errorf("the API key is in %s", filepath.Base(f))
		}
		if strings.HasSuffix(f, "rejected.jsonl") {
			rejected = string(b)
		}
	}
	if !strings.Contains(rejected, "[redacted]") {
		t.Error("the echoed key was not redacted in a teacher_error record (or no such record was written)")
	}
	dataset := string(must(os.ReadFile(filepath.Join(work, "out", "dataset_v1.jsonl"))))
	stats := string(must(os.ReadFile(filepath.Join(work, "out", "dataset_v1_stats.json"))))
	if !strings.Contains(dataset, "Your key is [redacted].") || !strings.Contains(dataset, `"secrets_redacted": 1`) || !regexp.MustCompile(`"secrets_redacted": [1-9]`).MatchString(stats) {
		t.Errorf("an answer echoing the key was not scrubbed and counted (dataset has the redacted text: %v; stats: %v)",
			strings.Contains(dataset, "Your key is [redacted]."), regexp.MustCompile(`"secrets_redacted": \d+`).FindString(stats))
	}
}
