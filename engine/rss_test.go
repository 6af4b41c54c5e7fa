package engine

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

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

// The sampler tells anonymous memory from mapped file pages: 64 MiB
// allocated and touched show in the first, 32 MiB of a mapped file read
// through in the second.
func TestMemorySamplerSeparatesAnonymousFromFileBacked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapped")
	if err := os.WriteFile(path, make([]byte, 32<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	anon0, file0 := SampleMemory(time.Hour).Stop()
	m := SampleMemory(5 * time.Millisecond)
	mapped, err := syscall.Mmap(int(f.Fd()), 0, 32<<20, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mapped)
	sum := 0
	for i := 0; i < len(mapped); i += 4096 {
		sum += int(mapped[i])
	}
	held := make([]byte, 64<<20)
	for i := range held {
		held[i] = byte(i)
	}
	time.Sleep(20 * time.Millisecond)
	anon, file := m.Stop()
	runtime.KeepAlive(held)
	if anon-anon0 < 60 {
		t.Errorf("anonymous peak %.0f MB (%.0f at the start) with 64 MiB held", anon, anon0)
	}
	if file-file0 < 30 {
		t.Errorf("file-backed peak %.0f MB (%.0f at the start) with 32 MiB mapped and read (sum %d)", file, file0, sum)
	}
}
