package engine

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / (1 << 20) // bytes on macOS
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux and the BSDs
}

// MemorySampler records the peaks of the process's anonymous and
// file-backed resident memory. Peak RSS alone misleads: it counts each
// memory-mapped page of the inputs and of the cache (once per SQLite
// connection that maps it), pages the kernel reclaims at will.
type MemorySampler struct {
	stop       chan struct{}
	done       sync.WaitGroup
	anon, file int64 // kB
}

// SampleMemory samples /proc/self/status every interval until Stop.
func SampleMemory(every time.Duration) *MemorySampler {
	m := &MemorySampler{stop: make(chan struct{})}
	m.sample()
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				m.sample()
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m
}

// Stop ends sampling and returns the peaks in MB (0 where the system does
// not tell).
func (m *MemorySampler) Stop() (anonMB, fileMB float64) {
	close(m.stop)
	m.done.Wait()
	return float64(m.anon) / 1024, float64(m.file) / 1024
}

func (m *MemorySampler) sample() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		var peak *int64
		switch {
		case bytes.HasPrefix(line, []byte("RssAnon:")):
			peak = &m.anon
		case bytes.HasPrefix(line, []byte("RssFile:")):
			peak = &m.file
		default:
			continue
		}
		fields := bytes.Fields(line)
		if len(fields) < 2 {
			continue
		}
		if kb, err := strconv.ParseInt(string(fields[1]), 10, 64); err == nil && kb > *peak {
			*peak = kb
		}
	}
}

// fitMemoryLimit raises the soft memory limit to the live heap plus room
// when it is lower. Live is measured after a collection: the tables a run
// holds for its whole length (id index, input locations, previous records,
// prompt keys, the stats' latencies) are then all that is live.
func fitMemoryLimit(room int64, log zerolog.Logger) {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		return
	}
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	live := int64(sample[0].Value.Uint64())
	if want := live + room; want > limit {
		debug.SetMemoryLimit(want)
		log.Debug().Int64("live_heap_mb", live>>20).Int64("memory_limit_mb", want>>20).Msg("soft memory limit raised above the run's tables")
	}
}
