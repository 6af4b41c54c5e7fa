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
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/pgrules/pgrules/providers"
)

// ErrStopRun wraps the cause when no further call can succeed.
var ErrStopRun = errors.New("stopping the run early")

// Policy is how calls are made.
type Policy struct {
	Concurrency int
	RPM         float64 // requests per minute; 0 = unlimited
	TPM         float64 // tokens per minute; 0 = unlimited
	MaxRetries  int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
	// FatalAfter stops the run when the first N calls all failed with the
	// same non-retryable (fatal) code.
	FatalAfter int
}

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

	mu         sync.Mutex
	notBefore  time.Time // shared Retry-After floor
	stats      Stats
	fatalCode  string
	fatalCount int
	anyOK      bool
	stopped    error
}

// New wraps p.
func New(p Generator, pol Policy, log zerolog.Logger) *Caller {
	if pol.BaseDelay <= 0 {
		pol.BaseDelay = 500 * time.Millisecond
	}
	if pol.MaxDelay <= 0 {
		pol.MaxDelay = time.Minute
	}
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
	if err := c.stoppedErr(); err != nil {
		return providers.Response{}, err
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.RandomizationFactor = c.pol.BaseDelay, c.pol.MaxDelay, 0.5
	for attempt := 0; ; attempt++ {
		if err := c.wait(ctx, req); err != nil {
			return providers.Response{}, err
		}
		resp, err := c.p.Generate(ctx, req)
		c.account(resp, err)
		if err == nil {
			c.correctTokens(req, resp)
			return resp, nil
		}
		if ctx.Err() != nil {
			return providers.Response{}, ctx.Err()
		}
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != providers.KindRetryable || attempt >= c.pol.MaxRetries {
			if stop := c.noteFailure(pe); stop != nil {
				return providers.Response{}, stop
			}
			return providers.Response{}, err
		}
		delay := bo.NextBackOff()
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
		c.mu.Lock()
		c.stats.Retries++
		c.mu.Unlock()
		c.log.Debug().Str("id", req.ID).Str("code", pe.Code).Dur("delay", delay).Int("attempt", attempt+1).Msg("retrying teacher call")
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return providers.Response{}, ctx.Err()
		}
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
		until += time.Duration(rand.Int64N(int64(until/10) + 1))
		select {
		case <-time.After(until):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.req != nil {
		if err := c.req.Wait(ctx); err != nil {
			return err
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
// stop: the first FatalAfter calls all failed fatally with one code.
func (c *Caller) noteFailure(pe *providers.Error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Failed++
	if c.stopped != nil {
		return c.stopped
	}
	if pe == nil || pe.Kind != providers.KindFatal || c.anyOK || c.pol.FatalAfter <= 0 {
		return nil
	}
	if c.fatalCode != "" && c.fatalCode != pe.Code {
		c.anyOK = true // mixed causes: not one misconfiguration
		return nil
	}
	c.fatalCode = pe.Code
	c.fatalCount++
	if c.fatalCount >= c.pol.FatalAfter {
		c.stopped = fmt.Errorf("%w: the first %d teacher calls all failed with %s: %s", ErrStopRun, c.fatalCount, pe.Code, pe.Message)
		return c.stopped
	}
	return nil
}

func (c *Caller) stoppedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
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

// StatsJSON is the engine's hook for the stats file.
func (c *Caller) StatsJSON() []byte {
	b, _ := json.Marshal(c.Stats())
	return b
}
