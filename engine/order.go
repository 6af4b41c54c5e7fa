package engine

import (
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/pgrules/pgrules/engine/teacher"
)

// stopped says why runInOrder ended before the last job, if it did.
type stopped struct {
	// stop is the teacher's early stop (teacher.ErrStopRun).
	stop error
	// ioErr is a failure to read an input or write an output.
	ioErr error
	// drained: drain closed before the last job was handed out.
	drained bool
}

// runInOrder takes jobs through process on `workers` goroutines and hands
// the results to consume one at a time, in job order. A window bounds how
// far workers run ahead of consume, so memory stays bounded when one
// sample is slow. It returns when every job is consumed, or early when ctx
// ends, a result carries the teacher's early stop, or consume fails. When
// drain closes, no job is handed out any more and those taken finish.
func runInOrder(ctx context.Context, jobs iter.Seq[job], workers int, drain <-chan struct{}, process func(context.Context, job) *result, consume func(*result) error) stopped {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// feed stops handing out jobs; cancel also ends the calls in flight.
	feed, stopFeeding := context.WithCancel(ctx)
	defer stopFeeding()
	var st stopped
	var once sync.Once
	halt := func(stop, ioErr error) {
		once.Do(func() {
			st.stop, st.ioErr = stop, ioErr
			stopFeeding()
			// At max_calls the calls in flight were admitted under the
			// cap and are being paid for: they finish, so that their
			// answers reach the cache. Any other stop ends them.
			if !errors.Is(stop, teacher.ErrMaxCalls) {
				cancel()
			}
		})
	}

	drained := make(chan struct{}) // closed once drain stopped the feed
	if drain != nil {
		go func() {
			select {
			case <-drain:
				close(drained) // first: whoever sees the feed stop sees why
				stopFeeding()
			case <-feed.Done():
			}
		}()
	}

	window := make(chan struct{}, max(64, 8*workers))
	queue := make(chan job)
	results := make(chan *result, workers)
	go func() {
		defer close(queue)
		for j := range jobs {
			select {
			case window <- struct{}{}:
			case <-feed.Done():
				return
			}
			select {
			case queue <- j:
			case <-feed.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				r := process(ctx, j)
				switch {
				case errors.Is(r.err, teacher.ErrStopRun):
					halt(r.err, nil)
				case r.err != nil:
					halt(nil, r.err)
				}
				results <- r
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	pending := map[int]*result{}
	next := 0
	for r := range results {
		pending[r.seq] = r
		for {
			rr, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-window
			if rr.interrupted || rr.err != nil || ctx.Err() != nil {
				continue // drained, never written: nothing is committed
			}
			if err := consume(rr); err != nil {
				halt(nil, err)
			}
		}
	}
	select {
	case <-drained:
		st.drained = true
	default:
	}
	return st
}
