package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/pgrules/pgrules/engine"
)

// The run's last log line carries the anonymous and file-backed memory
// peaks where the system tells them apart (Linux), and leaves both out
// where it does not (macOS: no /proc), rather than logging a 0 MB that
// reads as a measurement.
func TestRunEndLogsMemoryPeaksOnlyWhenMeasured(t *testing.T) {
	for _, tc := range []struct {
		anon, file float64
		want       bool
	}{{173, 1090, true}, {0, 0, false}} {
		var logged bytes.Buffer
		cmd := &cobra.Command{}
		cmd.SetErr(&bytes.Buffer{})
		printRunEnd(cmd, zerolog.New(&logged), &Config{OutDir: "out"}, &engine.Result{Committed: true}, time.Second, tc.anon, tc.file)
		line := logged.String()
		if !strings.Contains(line, `"message":"run finished"`) {
			t.Fatalf("no run-finished line: %s", line)
		}
		has := strings.Contains(line, `"peak_rss_anon":"173 MB","peak_rss_file":"1090 MB"`)
		if has != tc.want || !tc.want && strings.Contains(line, "peak_rss_anon") {
			t.Errorf("anon %v MB, file %v MB: logged %s", tc.anon, tc.file, line)
		}
	}
}
