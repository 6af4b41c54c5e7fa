// Package answer is the answer stage of a run: it gets the teacher's text
// for a rendered prompt from the response cache when it holds one, and
// otherwise from the teacher. A teacher's answer goes to the cache once it
// is judged (Keep), with what judging found out; the cache commits it
// within milliseconds, and a run commits its outputs only after the cache
// has committed every answer or said which it could not.
package answer

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/prompt"
	"github.com/pgrules/pgrules/providers"
)

// Teacher is the provider behind the call policy.
type Teacher interface {
	Generate(ctx context.Context, req providers.Request) (providers.Response, error)
}

// ErrNoCachedAnswer is an offline run's miss: the cache has no answer and
// no teacher may be asked.
var ErrNoCachedAnswer = errors.New("no cached answer")

// Answer is the teacher's text and how it was obtained.
type Answer struct {
	Text     string
	Response providers.Response
	// CacheHit: the answer came from the cache; Called: from a teacher call.
	CacheHit, Called bool
	// Passed is the digest of the check a cached answer is known to pass,
	// Hits its word-list hits as remembered (nil: none; see cache.Mark).
	Passed, Hits []byte
	// received is when a teacher's answer arrived.
	received time.Time
}

// Source answers prompts. It is safe for concurrent use.
type Source struct {
	// Cache is nil when caching is off.
	Cache *cache.Cache
	// Teacher is nil in an offline run.
	Teacher Teacher
	// Provider and Identity name the teacher in cache keys.
	Provider string
	Identity []byte
	// KeyByID adds the sample id to cache keys, for providers whose
	// answers depend on it (dryrun).
	KeyByID bool
	// Refresh skips cache reads but still stores new answers.
	Refresh bool
	// notStored counts the answers Keep could not hand to the cache.
	notStored atomic.Int64
	// NoPrompt and WantsDraft are what the provider said it reads: the
	// prompt is not joined or sent to one that answers without it, the
	// draft not sent to one that does not edit it.
	NoPrompt, WantsDraft bool
	Log                  zerolog.Logger
}

// Key is the cache key of req, whose prompt is given as its pieces; ""
// when there is no cache.
func (s *Source) Key(req providers.Request, prompt prompt.Rendered) string {
	if s.Cache == nil {
		return ""
	}
	parts := cache.KeyParts{Provider: s.Provider, IdentityJSON: s.Identity, System: req.System, PromptParts: prompt}
	if s.KeyByID {
		parts.SampleID = req.ID
	}
	return cache.Key(parts)
}

// Cached returns the answer the cache holds under key; false when there
// is none (or the cache is not read: off, or --refresh).
func (s *Source) Cached(id, key string) (Answer, bool) {
	if s.Cache == nil || s.Refresh || key == "" {
		return Answer{}, false
	}
	e, ok, err := s.Cache.Get(key)
	if err != nil {
		msg := "cache read failed; asking the teacher"
		if s.Teacher == nil {
			msg = "cache read failed; offline, so this sample has no answer"
		}
		s.Log.Warn().Err(err).Str("id", id).Msg(msg)
		return Answer{}, false
	}
	if !ok {
		return Answer{}, false
	}
	return cachedAnswer(e), true
}

// Prefetch reads from the cache the answers under the keys ("" for
// none) as Cached would, in as few statements as it can: the answers
// found, by key. A key with no answer here is looked up again by Cached
// when its sample gets to it, so an answer stored meanwhile is found then.
func (s *Source) Prefetch(keys []string) map[string]Answer {
	if s.Cache == nil || s.Refresh {
		return nil
	}
	es, err := s.Cache.GetMany(slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "" }))
	if err != nil {
		s.Log.Debug().Err(err).Msg("cache prefetch failed; each sample reads its own answer")
		return nil
	}
	out := make(map[string]Answer, len(es))
	for k, e := range es {
		out[k] = cachedAnswer(e)
	}
	return out
}

// cachedAnswer is the answer an entry of the cache holds.
func cachedAnswer(e cache.Entry) Answer {
	return Answer{Text: e.Text, Response: e.Teacher, CacheHit: true, Passed: e.Passed, Hits: e.Hits}
}

// Keep records a judged answer in the cache under key: an answer the
// teacher just gave is stored with what judging it found out (the check it
// passes, its word-list hits: nil when not worked out), so it costs one
// write; of a cached answer only what is new is recorded.
func (s *Source) Keep(id, key string, a Answer, passed, hits []byte) {
	if s.Cache == nil || key == "" {
		return
	}
	if a.Called {
		e := cache.Entry{Text: a.Text, Teacher: a.Response, StoredAt: a.received, Passed: passed, Hits: hits}
		if err := s.Cache.Store(key, e); err != nil {
			s.notStored.Add(1)
			s.Log.Warn().Err(err).Str("id", id).Msg("cache write failed; this answer will be paid for again on a rerun")
		}
		return
	}
	if passed == nil && hits == nil {
		return
	}
	if err := s.Cache.Mark(key, a.Text, passed, hits); err != nil {
		s.Log.Debug().Err(err).Msg("facts about an answer not remembered")
	}
}

// Ask asks the teacher for req, whose prompt is given as its pieces: they
// are joined into req.Prompt only here. The caller looks in the cache
// before asking (Cached) and stores the answer with Keep once it is
// judged. A teacher failure is returned as is (typed *providers.Error
// where the provider classified it); with no teacher (offline) it is
// ErrNoCachedAnswer.
func (s *Source) Ask(ctx context.Context, req providers.Request, prompt prompt.Rendered) (Answer, error) {
	if s.Teacher == nil {
		return Answer{}, ErrNoCachedAnswer
	}
	if err := ctx.Err(); err != nil {
		// Interrupted: a worker that picks up one more sample on its way
		// out must not start a call that would be paid for and dropped.
		return Answer{}, err
	}
	req.PromptBytes = int64(prompt.Len())
	if !s.NoPrompt {
		req.Prompt = prompt.String()
	}
	if !s.WantsDraft {
		req.Draft = ""
	}
	resp, err := s.Teacher.Generate(ctx, req)
	if err != nil {
		return Answer{Called: true}, err
	}
	// Wall-clock time even under SOURCE_DATE_EPOCH: it is what `cache
	// prune --older-than` measures.
	return Answer{Text: resp.Text, Response: resp, Called: true, received: time.Now().UTC()}, nil
}

// NotStored is how many of the teacher's answers Keep could not hand to
// the cache (see also cache.StoreError: those it was handed and lost).
func (s *Source) NotStored() int { return int(s.notStored.Load()) }
