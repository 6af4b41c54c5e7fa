package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/engine/teacher"
	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/providers/plugintest"
)

// fakeOpenRouter answers like OpenRouter on loopback, after latency, and
// enforces a per-second rate limit server-side (429 beyond it).
type fakeOpenRouter struct {
	*httptest.Server
	latency   time.Duration
	perSecond int64
	status    func(model string) int
	calls     atomic.Int64
	limited   atomic.Int64
	mu        sync.Mutex
	window    int64
	inWindow  int64
}

func newFake(t testing.TB, latency time.Duration, perSecond int64) *fakeOpenRouter {
	f := &fakeOpenRouter{latency: latency, perSecond: perSecond}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Model string }
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		f.calls.Add(1)
		if f.perSecond > 0 {
			f.mu.Lock()
			sec := time.Now().Unix()
			if sec != f.window {
				f.window, f.inWindow = sec, 0
			}
			f.inWindow++
			over := f.inWindow > f.perSecond
			f.mu.Unlock()
			if over {
				f.limited.Add(1)
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(429)
				io.WriteString(w, `{"error": {"message": "rate limited"}}`)
				return
			}
		}
		if f.status != nil {
			if s := f.status(body.Model); s != 200 {
				w.WriteHeader(s)
				io.WriteString(w, `{"error": {"message": "scripted failure"}}`)
				return
			}
		}
		time.Sleep(f.latency)
		fmt.Fprintf(w, `{"id": "gen-%d", "model": %q, "choices": [{"finish_reason": "stop", "message": {"content": "{\"summary\": \"ok\"}"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "cost": 0.0001}}`, f.calls.Load(), body.Model)
	}))
	t.Cleanup(f.Close)
	return f
}

func startPlugin(t testing.TB, name, baseURL string, models ...string) *providers.Client {
	t.Setenv("OPENROUTER_API_KEY", "sk-or-v1-e2e-secret-value-000000000000")
	cfg, _ := json.Marshal(map[string]any{"base_url": baseURL + "/v1", "models": models})
	c, err := providers.Start(context.Background(), providers.HostOptions{Name: name, Dirs: []string{plugintest.Build(t, name)}, ConfigJSON: cfg, MaxRestarts: 3, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRealPluginFallsBackAndReportsProvenance(t *testing.T) {
	f := newFake(t, 0, 0)
	f.status = func(model string) int {
		if model == "first/model" {
			return 503
		}
		return 200
	}
	c := startPlugin(t, "openrouter", f.URL, "first/model", "second/model")
	resp, err := c.Generate(context.Background(), providers.Request{ID: "a", Prompt: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Provider != "openrouter" || resp.ChosenModel != "second/model" || len(resp.Fallbacks) != 1 || resp.Fallbacks[0].StatusCode != 503 || resp.CostUSD == nil {
		t.Errorf("response %+v", resp)
	}
}

func TestUnauthorizedStopsTheRunEarly(t *testing.T) {
	f := newFake(t, 0, 0)
	f.status = func(string) int { return 401 }
	c := startPlugin(t, "openrouter", f.URL, "m")
	caller := teacher.New(c, teacher.Policy{FatalAfter: 3, MaxRetries: 3}, zerolog.Nop())
	var err error
	for i := range 10 {
		if _, err = caller.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)}); errors.Is(err, teacher.ErrStopRun) {
			break
		}
	}
	if !errors.Is(err, teacher.ErrStopRun) || !strings.Contains(err.Error(), "OPENROUTER_API_KEY") || strings.Contains(err.Error(), "e2e-secret") {
		t.Fatalf("err = %v", err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("%d calls reached the server; the run should stop after 3", n)
	}
}

func TestPluginKilledMidRunStillCompletes(t *testing.T) {
	f := newFake(t, 20*time.Millisecond, 0)
	c := startPlugin(t, "local", f.URL, "llama")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)}); err != nil {
				failed.Add(1)
				t.Log(err)
			}
		}()
		if i == 10 {
			syscall.Kill(c.Pid(), syscall.SIGKILL)
		}
	}
	wg.Wait()
	if failed.Load() != 0 || c.Restarts() != 1 {
		t.Errorf("%d calls failed, %d restarts", failed.Load(), c.Restarts())
	}
}

// BenchmarkRateLimitUtilisation runs 16 workers against a server with
// 200 ms latency and a server-side limit of 12 requests per second, with
// pgrules' limit at 600 rpm (10/s): it reports achieved rpm as a fraction
// of the configured limit and the number of 429s.
func BenchmarkRateLimitUtilisation(b *testing.B) {
	f := newFake(b, 200*time.Millisecond, 12)
	c := startPlugin(b, "openrouter", f.URL, "m")
	const rpm = 600
	caller := teacher.New(c, teacher.Policy{RPM: rpm, MaxRetries: 5, BaseDelay: 100 * time.Millisecond}, zerolog.Nop())
	n := max(b.N, 100)
	jobs := make(chan int)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				caller.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)})
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	el := time.Since(start)
	achieved := float64(n) / el.Minutes()
	b.ReportMetric(achieved/rpm, "rpm_fraction")
	b.ReportMetric(float64(f.limited.Load()), "429s")
}

// BenchmarkPluginRoundTrip is the per-call overhead of the gRPC plugin
// boundary against a zero-latency server; compare BenchmarkInProcess.
func BenchmarkPluginRoundTrip(b *testing.B) {
	f := newFake(b, 0, 0)
	c := startPlugin(b, "openrouter", f.URL, "m")
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i), Prompt: strings.Repeat("x", 4000)}); err != nil {
			b.Fatal(err)
		}
	}
}
