package engine

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/rs/zerolog"
)

// The soft limit is raised above what the run holds, never lowered, and
// left alone when there is none.
func TestFitMemoryLimitLeavesRoomAboveTheLiveHeap(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	held := make([]byte, 64<<20)
	for i := range held {
		held[i] = byte(i)
	}
	debug.SetMemoryLimit(8 << 20)
	fitMemoryLimit(16<<20, zerolog.Nop())
	if got := debug.SetMemoryLimit(-1); got < 64<<20+16<<20 {
		t.Errorf("limit %d MiB with 64 MiB live and 16 MiB of room asked", got>>20)
	}
	debug.SetMemoryLimit(1 << 40)
	fitMemoryLimit(16<<20, zerolog.Nop())
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("a higher limit was changed to %d", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	fitMemoryLimit(16<<20, zerolog.Nop())
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("no limit became %d", got)
	}
	runtime.KeepAlive(held)
}
