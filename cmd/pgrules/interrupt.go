package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// interrupt turns signals into the two ways a command stops. A run's
// teacher calls are paid for as they are made, so the first Ctrl-C while
// a run judges samples drains it: no new sample starts, and the calls in
// flight finish so that their answers reach the cache (nothing is
// committed either way). A second Ctrl-C, SIGTERM, or a Ctrl-C outside a
// run's samples cancels at once.
type interrupt struct {
	drain chan struct{}
	// drainable: a run is judging samples and watches drain.
	drainable atomic.Bool
}

type interruptKey struct{}

// interruptOf is the interrupt execute set up (nil in a bare context).
func interruptOf(ctx context.Context) *interrupt {
	in, _ := ctx.Value(interruptKey{}).(*interrupt)
	return in
}

// notifyInterrupt returns a context that ends at the stop signals, with
// the interrupt in it, and a function that stops listening.
func notifyInterrupt(stderr io.Writer) (context.Context, func()) {
	in := &interrupt{drain: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), interruptKey{}, in))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		draining := false
		for {
			select {
			case sig := <-sigs:
				if sig == os.Interrupt && !draining && in.drainable.Load() {
					draining = true
					close(in.drain)
					fmt.Fprintln(stderr, "\npgrules: stopping: no new sample starts, and the teacher calls in flight, if any, finish so that their answers, already paid for, reach the cache; nothing is committed. Press Ctrl-C again to abandon them")
					continue
				}
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}
