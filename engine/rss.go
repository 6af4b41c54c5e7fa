package engine

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"syscall"

	"github.com/rs/zerolog"
)

func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	// Linux reports ru_maxrss in KiB.
	return float64(ru.Maxrss) / 1024
}

// fitMemoryLimit raises the soft memory limit to the live heap plus room
// when it is lower. Live is measured after a collection: the tables a run
// holds for its whole length (id index, previous records, work plan) are
// then all that is live.
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
