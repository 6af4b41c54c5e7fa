// Package teacher is the host-side call policy every provider gets: a
// rate limit in requests (and tokens) per minute, retries with jittered
// exponential backoff for retryable failures, Retry-After honoured as a
// floor shared by all workers, and an early stop when the first calls all
// fail the same non-retryable way.
package teacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/pgrules/pgrules/providers"
)

// ErrStopRun wraps the cause when no further call can succeed.
var ErrStopRun = errors.New("stopping the run early")

// ErrMaxCalls marks the stop of a run that needed more teacher calls than
// Policy.MaxCalls allows.
var ErrMaxCalls = errors.New("more teacher calls than max_calls")

// DefaultMaxRetryWait caps a single wait when the policy names none.
const DefaultMaxRetryWait = 60 * time.Second

// pauseWorthLogging is how long a wait must be before the run says why it
// is not moving.
const pauseWorthLogging = 5 * time.Second

// Policy is how calls are made. Concurrency is the engine's (its number
// of workers); the policy paces whatever calls reach it.
type Policy struct {
	RPM        float64 // requests per minute; 0 = unlimited
	TPM        float64 // tokens per minute; 0 = unlimited
	MaxRetries int
	BaseDelay  time.Duration
	MaxDelay   time.Duration
	// MaxRetryWait caps any single wait, a server's Retry-After included.
	// A call told to wait longer fails after waiting MaxRetryWait, and so
	// do the calls that start while that longer wait lasts, at once.
	MaxRetryWait time.Duration
	// FatalAfter stops the run when the first N calls all failed with the
	// same code, fatal or retryable with its retries spent: a bad key, or a
	// teacher that is down. Without it an unreachable teacher would keep
	// the run retrying every sample for hours before the failure rate
	// makes it unhealthy.
	FatalAfter int
	// MaxCalls stops the run before it asks the teacher about more than
	// MaxCalls samples (0: no cap). With a paid teacher, a rerun that
	// should cost nothing (a gate edited) but would buy every answer again
	// (the template or the system message changed too, or another
	// provider configuration) is then a stopped run, not a bill.
	MaxCalls int
	// CallTimeout bounds one attempt, plugin included (0: none). The
	// built-in plugins time their HTTP calls out themselves; this is for
	// a plugin that does not and hangs: the run would stall forever. An
	// attempt that times out is retryable, code call_timeout.
	CallTimeout time.Duration
}

// DefaultCallTimeout is above what the built-in plugins take at most for
// one call (5 minutes a model, a few models in fallback).
const DefaultCallTimeout = 30 * time.Minute

// Stats count what happened to calls.
type Stats struct {
	Calls       int            `json:"calls"`
	Succeeded   int            `json:"succeeded"`
	Failed      int            `json:"failed"`
	Retries     int            `json:"retries"`
	RateLimited int            `json:"rate_limited"`
	ByCode      map[string]int `json:"failures_by_code,omitempty"`
}

// Generator is the one method of a provider the policy needs.
type Generator interface {
	Generate(ctx context.Context, req providers.Request) (providers.Response, error)
}

// Caller applies the policy around a provider. It is safe for concurrent
// use by the engine's workers.
type Caller struct {
	p   Generator
	pol Policy
	log zerolog.Logger
	req *rate.Limiter
	tok *rate.Limiter

	mu        sync.Mutex
	notBefore time.Time // shared Retry-After floor
	// refusedUntil is the end of a Retry-After longer than MaxRetryWait.
	refusedUntil time.Time
	refusal      *providers.Error
	lastPauseLog time.Time
	// roundTrips are the wall times of successful calls as the host saw
	// them (plugin and network included), for the final log line.
	roundTrips []time.Duration
	stats      Stats
	fatalCode  string
	fatalCount int
	anyOK      bool
	stopped    error
	// asked counts the samples the teacher was asked about (retries are
	// not new samples), for MaxCalls.
	asked int
}

// New wraps p.
func New(p Generator, pol Policy, log zerolog.Logger) *Caller {
	if pol.BaseDelay <= 0 {
		pol.BaseDelay = 500 * time.Millisecond
	}
	if pol.MaxDelay <= 0 {
		pol.MaxDelay = time.Minute
	}
	if pol.MaxRetryWait <= 0 {
		pol.MaxRetryWait = DefaultMaxRetryWait
	}
	pol.MaxDelay = min(pol.MaxDelay, pol.MaxRetryWait)
	c := &Caller{p: p, pol: pol, log: log, stats: Stats{ByCode: map[string]int{}}}
	if pol.RPM > 0 {
		// A burst of one keeps the pace even from the first second, so a
		// server-side per-minute limit is never hit by a start-up spike.
		c.req = rate.NewLimiter(rate.Limit(pol.RPM/60), 1)
	}
	if pol.TPM > 0 {
		c.tok = rate.NewLimiter(rate.Limit(pol.TPM/60), int(max(pol.TPM/6, 1)))
	}
	return c
}

// Generate makes one call under the policy.
func (c *Caller) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	if err := c.admit(); err != nil {
		return providers.Response{}, err
	}
	if err := c.refused(); err != nil {
		c.noteFailure(err)
		return providers.Response{}, err
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.RandomizationFactor = c.pol.BaseDelay, c.pol.MaxDelay, 0.5
	for attempt := 0; ; attempt++ {
		if err := c.wait(ctx, req); err != nil {
			return providers.Response{}, err
		}
		t0 := time.Now()
		resp, err := c.attempt(ctx, req)
		took := time.Since(t0)
		c.account(resp, err)
		if err == nil {
			c.mu.Lock()
			c.roundTrips = append(c.roundTrips, took)
			c.mu.Unlock()
		}
		if err == nil {
			c.correctTokens(req, resp)
			return resp, nil
		}
		if ctx.Err() != nil {
			return providers.Response{}, ctx.Err()
		}
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindRetryable || attempt >= c.maxRetries(pe.Code) {
			if stop := c.noteFailure(err); stop != nil {
				return providers.Response{}, stop
			}
			return providers.Response{}, err
		}
		delay := bo.NextBackOff()
		if pe.RetryAfter > c.pol.MaxRetryWait {
			return providers.Response{}, c.refuse(ctx, req, pe)
		}
		if pe.RetryAfter > 0 {
			c.mu.Lock()
			// Every worker waits for the server's Retry-After, not just
			// this one: the next request of any worker would meet the same
			// 429.
			if t := time.Now().Add(pe.RetryAfter); t.After(c.notBefore) {
				c.notBefore = t
			}
			c.mu.Unlock()
			delay = max(delay, pe.RetryAfter)
		}
		delay = min(delay, c.pol.MaxRetryWait)
		c.mu.Lock()
		c.stats.Retries++
		c.mu.Unlock()
		c.log.Debug().Str("id", req.ID).Str("code", pe.Code).Dur("delay", delay).Int("attempt", attempt+1).Msg("retrying teacher call")
		if delay > pauseWorthLogging {
			c.log.Warn().Str("id", req.ID).Str("code", pe.Code).Str("wait", delay.Round(time.Second).String()).Int("attempt", attempt+1).
				Msgf("teacher call failed (%s); waiting %s before retrying", pe.Error(), delay.Round(time.Second))
		}
		if err := sleep(ctx, delay); err != nil {
			return providers.Response{}, err
		}
	}
}

// attempt makes one call, bounded by CallTimeout.
func (c *Caller) attempt(ctx context.Context, req providers.Request) (providers.Response, error) {
	if c.pol.CallTimeout <= 0 {
		return c.p.Generate(ctx, req)
	}
	actx, cancel := context.WithTimeout(ctx, c.pol.CallTimeout)
	defer cancel()
	resp, err := c.p.Generate(actx, req)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return resp, &providers.Error{Kind: providers.KindRetryable, Code: CodeCallTimeout,
			Message: fmt.Sprintf("no answer from the provider plugin within %s (call_timeout)", c.pol.CallTimeout)}
	}
	return resp, err
}

// CodeCallTimeout is the failure code of an attempt that outlived
// Policy.CallTimeout.
const CodeCallTimeout = "call_timeout"

// retryCaps bound the retries of failures that a retry rarely cures: a
// server that answered HTML or an event stream once will likely again, and
// a plugin that hung for call_timeout likely hangs again.
var retryCaps = map[string]int{"bad_response": 1, CodeCallTimeout: 1}

func (c *Caller) maxRetries(code string) int {
	if n, ok := retryCaps[code]; ok {
		return min(n, c.pol.MaxRetries)
	}
	return c.pol.MaxRetries
}

// refuse handles a Retry-After longer than MaxRetryWait: this call waits
// MaxRetryWait and fails; calls starting before the server's time is up
// fail at once (see refused) instead of each waiting again.
func (c *Caller) refuse(ctx context.Context, req providers.Request, pe *providers.Error) error {
	wait := c.pol.MaxRetryWait
	err := &providers.Error{
		Kind: providers.KindFailed, Code: pe.Code, StatusCode: pe.StatusCode, Attempts: pe.Attempts,
		Message: fmt.Sprintf("the server asked to wait %s (Retry-After), longer than max_retry_wait %s: %s", pe.RetryAfter.Round(time.Second), wait, pe.Message),
	}
	c.mu.Lock()
	if until := time.Now().Add(pe.RetryAfter); until.After(c.refusedUntil) {
		c.refusedUntil, c.refusal = until, err
	}
	c.mu.Unlock()
	c.log.Warn().Str("id", req.ID).Str("code", pe.Code).Str("retry_after", pe.RetryAfter.Round(time.Second).String()).Str("wait", wait.String()).
		Msgf("the teacher asked to wait %s, longer than max_retry_wait %s: waiting %s, then failing the calls it refuses", pe.RetryAfter.Round(time.Second), wait, wait)
	if serr := sleep(ctx, wait); serr != nil {
		return serr
	}
	c.noteFailure(err)
	return err
}

// refused fails a call at once while a Retry-After longer than
// MaxRetryWait lasts.
func (c *Caller) refused() *providers.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refusal != nil && time.Now().Before(c.refusedUntil) {
		return c.refusal
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logPause says why the run is not moving, once per pause of all workers
// rather than once per worker.
func (c *Caller) logPause(d time.Duration, why string) {
	if d <= pauseWorthLogging {
		return
	}
	c.mu.Lock()
	quiet := time.Since(c.lastPauseLog) < d
	if !quiet {
		c.lastPauseLog = time.Now()
	}
	c.mu.Unlock()
	if !quiet {
		c.log.Warn().Str("wait", d.Round(time.Second).String()).Msgf("pausing teacher calls for %s: %s", d.Round(time.Second), why)
	}
}

// estimateTokens guesses a call's tokens before it is made: four
// characters a token for the prompt, and an answer of similar size.
func (c *Caller) estimateTokens(req providers.Request) int {
	return min(max((len(req.System)+len(req.Prompt))/2, 1), c.tok.Burst())
}

// correctTokens charges the bucket for tokens the estimate missed, so the
// next calls wait for what this one really used.
func (c *Caller) correctTokens(req providers.Request, resp providers.Response) {
	if c.tok == nil {
		return
	}
	if resp.Usage == nil {
		return // unknown usage: the estimate charged before the call stands
	}
	if extra := int(resp.Usage.TotalTokens) - c.estimateTokens(req); extra > 0 {
		c.tok.ReserveN(time.Now(), min(extra, c.tok.Burst()))
	}
}

func (c *Caller) wait(ctx context.Context, req providers.Request) error {
	c.mu.Lock()
	until := time.Until(c.notBefore)
	c.mu.Unlock()
	if until > 0 {
		// Jitter spreads the workers released by one Retry-After.
		until = min(until+time.Duration(rand.Int64N(int64(until/10)+1)), c.pol.MaxRetryWait)
		c.logPause(until, "the teacher asked every worker to wait (Retry-After)")
		if err := sleep(ctx, until); err != nil {
			return err
		}
	}
	if c.req != nil {
		r := c.req.Reserve()
		if d := r.Delay(); d > 0 {
			c.logPause(d, fmt.Sprintf("rate limit of %g requests per minute", c.pol.RPM))
			if err := sleep(ctx, d); err != nil {
				r.Cancel()
				return err
			}
		}
	}
	if c.tok != nil {
		if err := c.tok.WaitN(ctx, c.estimateTokens(req)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Caller) account(resp providers.Response, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Calls++
	if err == nil {
		c.stats.Succeeded++
		c.anyOK = true
		return
	}
	var pe *providers.Error
	if errors.As(err, &pe) {
		c.stats.ByCode[pe.Code]++
		if pe.StatusCode == 429 {
			c.stats.RateLimited++
		}
	}
}

// noteFailure counts a final failure and decides whether the run should
// stop: the first FatalAfter calls all failed with one fatal or retryable
// code. A FAILED call is about its own sample and never stops the run.
func (c *Caller) noteFailure(err error) error {
	var pe *providers.Error
	errors.As(err, &pe)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Failed++
	if c.stopped != nil {
		return c.stopped
	}
	if pe != nil && pe.Code == providers.CodePluginCrashed {
		// The restart budget is spent: every further call would fail.
		c.stopped = fmt.Errorf("%w: %s", ErrStopRun, pe.Message)
		return c.stopped
	}
	if pe == nil || pe.Kind == providers.KindFailed || c.anyOK || c.pol.FatalAfter <= 0 {
		return nil
	}
	if c.fatalCode != "" && c.fatalCode != pe.Code {
		c.anyOK = true // mixed causes: not one misconfiguration
		return nil
	}
	c.fatalCode = pe.Code
	c.fatalCount++
	if c.fatalCount >= c.pol.FatalAfter {
		how := pe.Code
		if pe.Kind == providers.KindRetryable {
			how += " after their retries"
		}
		c.stopped = fmt.Errorf("%w: the first %d teacher calls all failed with %s: %s", ErrStopRun, c.fatalCount, how, pe.Message)
		return c.stopped
	}
	return nil
}

// maxCallsError is the stop at MaxCalls: both ErrStopRun and ErrMaxCalls.
type maxCallsError struct{ n int }

func (e *maxCallsError) Error() string {
	return fmt.Sprintf("%v: it needs more than %d teacher calls (max_calls %d); the calls made were let finish, and their answers are cached", ErrStopRun, e.n, e.n)
}

func (e *maxCallsError) Is(target error) bool { return target == ErrStopRun || target == ErrMaxCalls }

// admit counts a sample about to be asked, or says why the run stops
// instead: an earlier stop, or MaxCalls reached.
func (c *Caller) admit() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped != nil {
		return c.stopped
	}
	if n := c.pol.MaxCalls; n > 0 && c.asked >= n {
		c.stopped = &maxCallsError{n: n}
		return c.stopped
	}
	c.asked++
	return nil
}

// Stats returns the counters so far.
func (c *Caller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.ByCode = map[string]int{}
	for k, v := range c.stats.ByCode {
		s.ByCode[k] = v
	}
	return s
}

// RoundTrip returns percentiles (0–100) of the successful calls' wall
// times, or nil when there were none.
func (c *Caller) RoundTrip(percentiles ...float64) []time.Duration {
	c.mu.Lock()
	rt := slices.Clone(c.roundTrips)
	c.mu.Unlock()
	if len(rt) == 0 {
		return nil
	}
	slices.Sort(rt)
	out := make([]time.Duration, len(percentiles))
	for i, p := range percentiles {
		k := int(math.Ceil(p/100*float64(len(rt)))) - 1
		out[i] = rt[max(k, 0)]
	}
	return out
}

// StatsJSON is the engine's hook for the stats file.
func (c *Caller) StatsJSON() []byte {
	b, _ := json.Marshal(c.Stats())
	return b
}
