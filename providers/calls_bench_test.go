package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pgrules/pgrules/providers/plugintest"
)

// BenchmarkPluginCalls makes calls through the real dryrun plugin from 16
// workers, as a first run does, over GenerateStream and over unary
// Generate, and reports the CPU both processes spent per call: with a
// teacher this fast the boundary is what a first run pays for.
func BenchmarkPluginCalls(b *testing.B) {
	for _, mode := range []string{"stream", "unary"} {
		b.Run(mode, func(b *testing.B) {
			c, err := Start(context.Background(), HostOptions{Name: "dryrun", Dirs: []string{plugintest.Build(b, "dryrun")}, ConfigJSON: []byte(`{"from_draft": true}`)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.p.(*grpcClient).unary.Store(mode == "unary")
			draft := `{"summary": "` + strings.Repeat("Check the opening hours before you go. ", 200) + `"}`
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime(b, c.Pid())
			b.ResetTimer()
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						_, err := c.Generate(context.Background(), Request{ID: fmt.Sprint("id-", i), PayloadType: "itinerary", Draft: draft, PromptBytes: 9000})
						var pe *Error
						if err != nil && !errors.As(err, &pe) {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b, c.Pid())-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the CPU this process and the plugin process pid have used.
func cpuTime(b *testing.B, pid int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// utime and stime are fields 14 and 15, counted after the command
	// name's closing parenthesis (the name may hold spaces).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + time.Duration(ut+st)*tick
}
