package providers_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/providers"
	"github.com/pgrules/pgrules/providers/plugintest"
)

func start(t *testing.T, opts providers.HostOptions) *providers.Client {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "dryrun"
	}
	if opts.Dirs == nil {
		opts.Dirs = []string{plugintest.Build(t, "dryrun")}
	}
	c, err := providers.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestDryrunOverGRPC(t *testing.T) {
	c := start(t, providers.HostOptions{ConfigJSON: []byte(`{"mix": {"valid": 1, "error": 1}, "seed": "s"}`)})
	if c.Info().Name != "dryrun" || c.Info().ProtocolVersion != providers.ProtocolVersion {
		t.Errorf("info = %+v", c.Info())
	}
	if !strings.Contains(string(c.Configured().IdentityJSON), `"seed":"s"`) {
		t.Errorf("identity = %s", c.Configured().IdentityJSON)
	}
	var okN, errN int
	for i := range 40 {
		resp, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprintf("id-%d", i), PayloadType: "itinerary", Prompt: "p"})
		var pe *providers.Error
		switch {
		case err == nil:
			okN++
			if resp.Text == "" || resp.ChosenModel != "dryrun-v1" || resp.Usage.TotalTokens == 0 {
				t.Errorf("response %+v", resp)
			}
		case errors.As(err, &pe) && pe.Code == "dryrun_error" && pe.Kind == providers.KindFailed && len(pe.Attempts) == 1:
			errN++ // the classified error crossed the gRPC boundary intact
		default:
			t.Fatalf("unexpected error %#v", err)
		}
	}
	if okN == 0 || errN == 0 {
		t.Errorf("mix of 1:1 gave %d answers and %d errors", okN, errN)
	}
}

func TestBadConfigIsReportedWithItsKey(t *testing.T) {
	_, err := providers.Start(context.Background(), providers.HostOptions{Name: "dryrun", Dirs: []string{plugintest.Build(t, "dryrun")}, ConfigJSON: []byte(`{"mix": {"vaild": 1}}`)})
	var rej *providers.ConfigRejected
	if !errors.As(err, &rej) || rej.Provider != "dryrun" || rej.Err.Path != "mix.vaild" || !strings.Contains(rej.Err.Msg, "did you mean valid?") {
		t.Fatalf("err = %#v: want the path of the bad key across the gRPC boundary", err)
	}
}

func TestFindSearchOrderAndNotFound(t *testing.T) {
	built := plugintest.Build(t, "dryrun")
	first, second := t.TempDir(), t.TempDir()
	data, _ := os.ReadFile(filepath.Join(built, "pgrules-provider-dryrun"))
	os.WriteFile(filepath.Join(second, "pgrules-provider-dryrun"), data, 0o755)
	os.WriteFile(filepath.Join(first, "pgrules-provider-dryrun"), []byte("not executable"), 0o644)
	got, err := providers.Find("dryrun", []string{first, second})
	if err != nil || got != filepath.Join(second, "pgrules-provider-dryrun") {
		t.Errorf("Find = %q, %v (non-executable files are skipped)", got, err)
	}
	t.Setenv("PGRULES_PLUGIN_DIR", second)
	if dirs := providers.SearchDirs(first); dirs[0] != first || dirs[1] != second {
		t.Errorf("SearchDirs = %v: --plugin-dir first, then $PGRULES_PLUGIN_DIR", dirs)
	}
	t.Setenv("PATH", second+string(os.PathListSeparator)+first+string(os.PathListSeparator)+second)
	if dirs := providers.SearchDirs(second); slices.Index(dirs, second) != 0 || slices.Index(dirs, first) < 0 || len(dirs) != len(slices.Compact(slices.Sorted(slices.Values(dirs)))) {
		t.Errorf("SearchDirs = %v: each directory once, in first-seen order", dirs)
	}
	_, err = providers.Find("nosuch", []string{first})
	var nf *providers.NotFoundError
	if !errors.As(err, &nf) || nf.Binary != "pgrules-provider-nosuch" || !strings.Contains(err.Error(), first) {
		t.Errorf("not found error = %v", err)
	}
	list := providers.List([]string{second})
	if len(list) != 1 || list[0].Name != "dryrun" || list[0].Version != "1.0.0" || len(list[0].SHA256) != 64 {
		t.Errorf("List = %+v", list)
	}
}

func TestPinnedChecksumRefusesAnotherBinary(t *testing.T) {
	_, err := providers.Start(context.Background(), providers.HostOptions{Name: "dryrun", Dirs: []string{plugintest.Build(t, "dryrun")}, SHA256: strings.Repeat("ab", 32)})
	if err == nil || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), strings.Repeat("ab", 32)) {
		t.Fatalf("err = %v", err)
	}
	c := start(t, providers.HostOptions{})
	pinned := start(t, providers.HostOptions{SHA256: c.SHA256()})
	if pinned.SHA256() != c.SHA256() {
		t.Error("pinned start reports another checksum")
	}
}

func TestCrashedPluginIsRestartedAndCallsRetried(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := zerolog.New(zerolog.SyncWriter(&lockedWriter{&mu, &logs}))
	c := start(t, providers.HostOptions{MaxRestarts: 2, Logger: log, ConfigJSON: []byte(`{"mix": {"valid": 1}}`)})
	pid := c.Pid()
	if !alive(pid) {
		t.Fatalf("plugin pid %d not running", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for alive(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i), PayloadType: "checklist"}); err != nil {
				t.Errorf("call after crash: %v", err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	relayed := strings.Contains(logs.String(), `"message":"configured"`) && strings.Contains(logs.String(), `"module":"pgrules-provider-dryrun`)
	mu.Unlock()
	if !relayed {
		t.Errorf("the plugin's own log line did not reach the host's log: %s", logs.String())
	}
	if c.Restarts() != 1 || c.Pid() == pid || !alive(c.Pid()) {
		t.Errorf("restarts = %d, pid %d -> %d", c.Restarts(), pid, c.Pid())
	}
	mu.Lock()
	if !strings.Contains(logs.String(), "restarting it") {
		t.Errorf("restart not logged: %s", logs.String())
	}
	mu.Unlock()
	newPid := c.Pid()
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for alive(newPid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(newPid) {
		t.Errorf("plugin %d still running after Close", newPid)
	}
}

func TestRestartsAreBounded(t *testing.T) {
	c := start(t, providers.HostOptions{MaxRestarts: 1})
	for range 2 {
		syscall.Kill(c.Pid(), syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
		_, err := c.Generate(context.Background(), providers.Request{ID: "x", PayloadType: "checklist"})
		var pe *providers.Error
		if err != nil && errors.As(err, &pe) && pe.Code == "plugin_crashed" {
			return
		}
	}
	t.Fatal("a plugin that keeps dying was restarted without bound")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkPluginRoundTrip times Generate through the real dryrun plugin
// subprocess over gRPC, with a draft of the real size (~7.8 KB) going out
// and coming back as the answer, one call at a time: what the plugin
// boundary itself costs, without the run's own work competing for the
// cores. `make bench` prints it next to the round trip a first run saw.
func BenchmarkPluginRoundTrip(b *testing.B) {
	c, err := providers.Start(context.Background(), providers.HostOptions{Name: "dryrun", Dirs: []string{plugintest.Build(b, "dryrun")}, ConfigJSON: []byte(`{"from_draft": true}`)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	draft := `{"summary": "` + strings.Repeat("Check the opening hours before you go. ", 200) + `"}`
	prompt := strings.Repeat("Rewrite the draft following the critique. ", 50) + draft
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		_, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprintf("id-%d", i), PayloadType: "itinerary", Prompt: prompt, Draft: draft, PromptBytes: int64(len(prompt))})
		times = append(times, time.Since(start))
		var pe *providers.Error
		if err != nil && !errors.As(err, &pe) {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*9/10].Microseconds()), "p90-µs")
}

// A plugin killed while calls are in flight on its streams, and with idle
// streams in the pool, costs a restart: every call still gets its answer.
func TestPluginKilledMidCallsIsRestartedAndTheCallsRetried(t *testing.T) {
	c := start(t, providers.HostOptions{MaxRestarts: 2, ConfigJSON: []byte(`{"mix": {"valid": 1}}`)})
	pid := c.Pid()
	var done atomic.Int32
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				if _, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(w, "-", i), PayloadType: "checklist"}); err != nil {
					t.Errorf("call %d-%d: %v", w, i, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	for done.Load() < 400 {
		time.Sleep(time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	wg.Wait()
	if c.Restarts() != 1 || c.Pid() == pid {
		t.Errorf("restarts = %d, pid %d -> %d: want one restart", c.Restarts(), pid, c.Pid())
	}
	if n := done.Load(); n != 8*300 {
		t.Errorf("%d of %d calls answered", n, 8*300)
	}
}

// A draft and an answer larger than gRPC's 4 MB default message limit
// cross the plugin boundary both ways.
func TestMessagesLargerThanGRPCsDefaultCross(t *testing.T) {
	c := start(t, providers.HostOptions{ConfigJSON: []byte(`{"from_draft": true, "mix": {"valid": 1}}`)})
	draft := `{"summary": "` + strings.Repeat("Check the opening hours before you go. ", 150_000) + `"}`
	resp, err := c.Generate(context.Background(), providers.Request{ID: "big", PayloadType: "itinerary", Draft: draft})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Text) < 5<<20 || !strings.Contains(resp.Text, "Check the opening hours") {
		t.Errorf("answer of %d bytes: want the %d-byte draft back", len(resp.Text), len(draft))
	}
}

// TestPluginWritesItsCPUProfile asks the dryrun plugin for a CPU profile
// and checks that, once the plugin is stopped, the file is a CPU profile
// of the plugin's own binary (its mapping names the executable).
func TestPluginWritesItsCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin.pprof")
	c := start(t, providers.HostOptions{CPUProfile: path, ConfigJSON: []byte(`{"mix": {"valid": 1}}`)})
	for i := range 200 {
		if _, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint("id-", i), PayloadType: "checklist"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not a pprof profile (gzip): %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nanoseconds", "pgrules-provider-dryrun"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the profile does not name %q", want)
		}
	}
}
