package teacher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/providers"
)

type scripted struct {
	calls atomic.Int64
	mu    sync.Mutex
	times []time.Time
	fn    func(n int64) error
}

func (s *scripted) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	n := s.calls.Add(1)
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	if s.fn != nil {
		if err := s.fn(n); err != nil {
			return providers.Response{}, err
		}
	}
	return providers.Response{Text: "ok"}, nil
}

func TestRetriesRetryableFailuresOnly(t *testing.T) {
	s := &scripted{fn: func(n int64) error {
		if n < 3 {
			return &providers.Error{Kind: providers.KindRetryable, Code: "http_503", StatusCode: 503}
		}
		return nil
	}}
	c := New(s, Policy{MaxRetries: 5, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}, zerolog.Nop())
	if _, err := c.Generate(context.Background(), providers.Request{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); s.calls.Load() != 3 || st.Retries != 2 || st.Succeeded != 1 {
		t.Errorf("calls %d stats %+v", s.calls.Load(), st)
	}
	s2 := &scripted{fn: func(int64) error { return &providers.Error{Kind: providers.KindFailed, Code: "finish_length"} }}
	c2 := New(s2, Policy{MaxRetries: 5, BaseDelay: time.Millisecond}, zerolog.Nop())
	if _, err := c2.Generate(context.Background(), providers.Request{}); err == nil || s2.calls.Load() != 1 {
		t.Errorf("a per-sample failure was retried: %d calls", s2.calls.Load())
	}
	s3 := &scripted{fn: func(int64) error { return &providers.Error{Kind: providers.KindRetryable, Code: "timeout"} }}
	c3 := New(s3, Policy{MaxRetries: 2, BaseDelay: time.Millisecond}, zerolog.Nop())
	if _, err := c3.Generate(context.Background(), providers.Request{}); err == nil || s3.calls.Load() != 3 {
		t.Errorf("retries not bounded: %d calls", s3.calls.Load())
	}
}

func TestRetryAfterIsAFloorSharedByAllWorkers(t *testing.T) {
	var first atomic.Bool
	s := &scripted{fn: func(n int64) error {
		if n == 1 && first.CompareAndSwap(false, true) {
			return &providers.Error{Kind: providers.KindRetryable, Code: "http_429", StatusCode: 429, RetryAfter: 300 * time.Millisecond}
		}
		return nil
	}}
	c := New(s, Policy{MaxRetries: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}, zerolog.Nop())
	start := time.Now()
	if _, err := c.Generate(context.Background(), providers.Request{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("retried after %v, before the server's Retry-After of 300ms", el)
	}
	// Another worker starting now is not held back any more; one that
	// started during the pause would have been.
	c.mu.Lock()
	c.notBefore = time.Now().Add(200 * time.Millisecond)
	c.mu.Unlock()
	t0 := time.Now()
	c.Generate(context.Background(), providers.Request{ID: "b"})
	if el := time.Since(t0); el < 200*time.Millisecond {
		t.Errorf("a second worker did not wait for the shared Retry-After (%v)", el)
	}
	if st := c.Stats(); st.RateLimited != 1 {
		t.Errorf("rate_limited = %d", st.RateLimited)
	}
}

func TestRateLimitPacesRequests(t *testing.T) {
	s := &scripted{}
	c := New(s, Policy{RPM: 600}, zerolog.Nop()) // 10 per second
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)})
		}()
	}
	wg.Wait()
	// 8 requests at 10/s with a burst of 1 take at least 0.7 s.
	if el := time.Since(start); el < 650*time.Millisecond {
		t.Errorf("8 requests at 600 rpm took %v", el)
	}
}

func TestStopsEarlyOnRepeatedFatalFailure(t *testing.T) {
	s := &scripted{fn: func(int64) error {
		return &providers.Error{Kind: providers.KindFatal, Code: "http_401", StatusCode: 401, Message: "No auth credentials (check the key in OPENROUTER_API_KEY)"}
	}}
	c := New(s, Policy{FatalAfter: 3}, zerolog.Nop())
	var last error
	for i := range 10 {
		_, last = c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)})
	}
	if !errors.Is(last, ErrStopRun) || !strings.Contains(last.Error(), "OPENROUTER_API_KEY") || !strings.Contains(last.Error(), "first 3") {
		t.Fatalf("err = %v", last)
	}
	if n := s.calls.Load(); n != 3 {
		t.Errorf("%d calls made; after the stop no call should reach the provider", n)
	}
	// One success first means the key works: later fatal failures are
	// per-sample, not a reason to stop.
	ok := &scripted{fn: func(n int64) error {
		if n == 1 {
			return nil
		}
		return &providers.Error{Kind: providers.KindFatal, Code: "http_403"}
	}}
	c2 := New(ok, Policy{FatalAfter: 2}, zerolog.Nop())
	for i := range 5 {
		if _, err := c2.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)}); errors.Is(err, ErrStopRun) {
			t.Fatal("stopped although a call had succeeded")
		}
	}
}

// A teacher that is down fails every call the same retryable way: once
// the first FatalAfter calls have spent their retries, the run stops
// instead of retrying every sample for hours. Failures about one sample
// (FAILED) never stop it.
func TestStopsEarlyWhenTheTeacherIsDown(t *testing.T) {
	down := &scripted{fn: func(int64) error {
		return &providers.Error{Kind: providers.KindRetryable, Code: "connection_refused", Message: "dial tcp 127.0.0.1:9: connect: connection refused"}
	}}
	c := New(down, Policy{FatalAfter: 3, MaxRetries: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}, zerolog.Nop())
	var last error
	for i := range 10 {
		_, last = c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)})
	}
	if !errors.Is(last, ErrStopRun) || !strings.Contains(last.Error(), "first 3 teacher calls all failed with connection_refused after their retries: dial tcp") {
		t.Fatalf("err = %v", last)
	}
	if n := down.calls.Load(); n != 3*3 {
		t.Errorf("%d calls reached the teacher: want 3 samples × 3 attempts, then none", n)
	}

	filtered := &scripted{fn: func(int64) error {
		return &providers.Error{Kind: providers.KindFailed, Code: "content_filter", Message: "refused"}
	}}
	c2 := New(filtered, Policy{FatalAfter: 3}, zerolog.Nop())
	for i := range 10 {
		if _, err := c2.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)}); errors.Is(err, ErrStopRun) {
			t.Fatalf("a failure about its own sample stopped the run: %v", err)
		}
	}
}

func TestTokensPerMinuteChargesActualUsage(t *testing.T) {
	big := &scriptedUsage{tokens: 600}
	c := New(big, Policy{TPM: 6000}, zerolog.Nop()) // 100 tokens/s, burst 1000
	start := time.Now()
	for i := range 3 {
		if _, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i), Prompt: "short"}); err != nil {
			t.Fatal(err)
		}
	}
	// 3 × 600 reported tokens against a 1000-token burst at 100/s: the
	// third call waits for ≈ 2 s of refill; estimates alone would not wait.
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Errorf("3 calls of 600 tokens at 6000 tpm took %v; reported usage was not charged", el)
	}
}

type scriptedUsage struct{ tokens int64 }

func (s *scriptedUsage) Generate(context.Context, providers.Request) (providers.Response, error) {
	return providers.Response{Usage: &providers.Usage{TotalTokens: s.tokens}}, nil
}

func TestRetryAfterLongerThanMaxRetryWaitFailsAfterTheCap(t *testing.T) {
	s := &scripted{fn: func(int64) error {
		return &providers.Error{Kind: providers.KindRetryable, Code: "http_429", StatusCode: 429, RetryAfter: 100000 * time.Second, Message: "slow down"}
	}}
	var logs strings.Builder
	c := New(s, Policy{MaxRetries: 5, BaseDelay: time.Millisecond, MaxRetryWait: 200 * time.Millisecond}, zerolog.New(&logs))
	start := time.Now()
	_, err := c.Generate(context.Background(), providers.Request{ID: "a"})
	took := time.Since(start)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != "http_429" || !strings.Contains(pe.Message, "longer than max_retry_wait 200ms") {
		t.Fatalf("err = %v", err)
	}
	if took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %s, want the capped wait of 200ms", took)
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("no warn line:\n%s", logs.String())
	}
	// While the server's Retry-After lasts, other calls fail at once
	// without asking it again.
	start = time.Now()
	if _, err := c.Generate(context.Background(), providers.Request{ID: "b"}); err == nil {
		t.Error("a call during the refused period succeeded")
	}
	if time.Since(start) > 100*time.Millisecond || s.calls.Load() != 1 {
		t.Errorf("a call during the refused period waited %s / asked the server (%d calls)", time.Since(start), s.calls.Load())
	}
	if st := c.Stats(); st.Failed != 2 {
		t.Errorf("stats %+v: both calls count as failures", st)
	}
}

func TestBackoffNeverWaitsLongerThanMaxRetryWait(t *testing.T) {
	s := &scripted{fn: func(n int64) error {
		if n == 1 {
			return &providers.Error{Kind: providers.KindRetryable, Code: "http_503", RetryAfter: 150 * time.Millisecond}
		}
		return nil
	}}
	c := New(s, Policy{MaxRetries: 3, BaseDelay: time.Hour, MaxDelay: time.Hour, MaxRetryWait: 300 * time.Millisecond}, zerolog.Nop())
	start := time.Now()
	if _, err := c.Generate(context.Background(), providers.Request{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a backoff of an hour was not capped at 300ms: took %s", took)
	}
}

func TestPluginCrashBudgetSpentStopsTheRun(t *testing.T) {
	s := &scripted{fn: func(int64) error {
		return &providers.Error{Kind: providers.KindFatal, Code: providers.CodePluginCrashed, Message: "plugin died 4 times"}
	}}
	// Calls had succeeded before: the fatal_after rule alone would not stop.
	c := New(s, Policy{FatalAfter: 5}, zerolog.Nop())
	c.anyOK = true
	_, err := c.Generate(context.Background(), providers.Request{})
	if !errors.Is(err, ErrStopRun) || !strings.Contains(err.Error(), "plugin died 4 times") {
		t.Fatalf("err = %v, want ErrStopRun", err)
	}
	if _, err := c.Generate(context.Background(), providers.Request{}); !errors.Is(err, ErrStopRun) || s.calls.Load() != 1 {
		t.Errorf("after the stop: err=%v calls=%d", err, s.calls.Load())
	}
}

func TestLongRateLimitPauseIsLoggedOnce(t *testing.T) {
	var logs strings.Builder
	c := New(&scripted{}, Policy{RPM: 60.0 / 6}, zerolog.New(&logs)) // one call per 6 s
	c.Generate(context.Background(), providers.Request{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c.Generate(ctx, providers.Request{}) // waits ~6 s: cancelled, but logged first
	if n := strings.Count(logs.String(), "pausing teacher calls"); n != 1 {
		t.Errorf("%d pause lines, want 1:\n%s", n, logs.String())
	}
}

type noUsage struct{}

func (noUsage) Generate(context.Context, providers.Request) (providers.Response, error) {
	return providers.Response{Text: "ok"}, nil
}

// Unknown usage keeps the estimate: the tokens charged before the call
// stay charged, nothing is refunded or doubled.
func TestUnknownUsageKeepsTheTokenEstimate(t *testing.T) {
	c := New(noUsage{}, Policy{TPM: 6000}, zerolog.Nop())      // burst 1000
	req := providers.Request{Prompt: strings.Repeat("x", 800)} // estimate 400 tokens
	before := c.tok.TokensAt(time.Now())
	if _, err := c.Generate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	charged := before - c.tok.TokensAt(time.Now())
	if charged < 390 || charged > 410 {
		t.Errorf("charged %.0f tokens for a call with unknown usage, want the estimate of 400", charged)
	}
}

func TestBadResponseIsRetriedOnceOnly(t *testing.T) {
	s := &scripted{fn: func(int64) error {
		return &providers.Error{Kind: providers.KindRetryable, Code: "bad_response", StatusCode: 200, Message: "text/html"}
	}}
	c := New(s, Policy{MaxRetries: 5, BaseDelay: time.Millisecond}, zerolog.Nop())
	if _, err := c.Generate(context.Background(), providers.Request{}); err == nil || s.calls.Load() != 2 {
		t.Errorf("an HTML answer was asked %d times, want 2 (one retry)", s.calls.Load())
	}
}

// MaxCalls caps the samples asked about, from 8 workers at once: exactly
// MaxCalls reach the provider, retries do not count as samples, and every
// call after the cap stops the run with an error that says so.
func TestMaxCallsCapsTheSamplesAsked(t *testing.T) {
	s := &scripted{fn: func(n int64) error {
		if n == 1 { // the first call is retried once: still one sample
			return &providers.Error{Kind: providers.KindRetryable, Code: "http_503"}
		}
		return nil
	}}
	c := New(s, Policy{MaxCalls: 10, MaxRetries: 2, BaseDelay: time.Millisecond}, zerolog.Nop())
	var ok, capped atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				_, err := c.Generate(context.Background(), providers.Request{ID: fmt.Sprint(w, "-", i)})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrStopRun) && errors.Is(err, ErrMaxCalls):
					capped.Add(1)
				default:
					t.Errorf("unexpected error %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 10 || capped.Load() != 30 || s.calls.Load() != 11 {
		t.Errorf("%d answered, %d stopped, %d provider calls: want 10, 30 and 11 (10 samples, one retry)", ok.Load(), capped.Load(), s.calls.Load())
	}
	_, err := c.Generate(context.Background(), providers.Request{ID: "late"})
	if want := "it needs more than 10 teacher calls (max_calls 10)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
	// No cap: nothing stops.
	free := New(&scripted{}, Policy{}, zerolog.Nop())
	for i := range 50 {
		if _, err := free.Generate(context.Background(), providers.Request{ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// A plugin that hangs would stall the run forever: CallTimeout ends the
// attempt (the provider sees its context end), retries it once, then
// fails it as call_timeout. The run's own cancel is not a timeout.
func TestCallTimeoutEndsAHungCall(t *testing.T) {
	var sawDeadline atomic.Int64
	hung := GeneratorFunc(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			sawDeadline.Add(1)
		}
		return providers.Response{}, ctx.Err()
	})
	c := New(hung, Policy{CallTimeout: 30 * time.Millisecond, MaxRetries: 5, BaseDelay: time.Millisecond}, zerolog.Nop())
	start := time.Now()
	_, err := c.Generate(context.Background(), providers.Request{ID: "a"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != CodeCallTimeout || pe.Kind != providers.KindRetryable || !strings.Contains(pe.Message, "within 30ms (call_timeout)") {
		t.Fatalf("err = %v, want a retryable call_timeout", err)
	}
	if n := sawDeadline.Load(); n != 2 {
		t.Errorf("the provider saw %d attempts end by their deadline, want 2 (one retry)", n)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	slow := New(hung, Policy{CallTimeout: time.Hour}, zerolog.Nop())
	if _, err := slow.Generate(ctx, providers.Request{ID: "b"}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled run's call: err = %v, want context.Canceled", err)
	}
}

// GeneratorFunc adapts a function to Generator.
type GeneratorFunc func(ctx context.Context, req providers.Request) (providers.Response, error)

func (f GeneratorFunc) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	return f(ctx, req)
}
