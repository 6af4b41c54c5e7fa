package output

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Each 32 MB is sent to disk once written, and let go from the page cache
// one interval later, never before: every byte is let go once, in order,
// and the last two intervals stay cached.
func TestRecordsAreLetGoOneIntervalAfterTheirWriteback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "records"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type span struct{ off, n int64 }
	var sent, dropped []span
	var total int64
	sentAt := map[int64]int64{} // a range's start: bytes written when it was sent
	var w *flushing
	w = &flushing{f: f,
		writeback: func(_ *os.File, off, n int64) { sent = append(sent, span{off, n}); sentAt[off] = off + n },
		drop: func(_ *os.File, off, n int64) {
			at, ok := sentAt[off]
			if !ok || w.off-at < writebackEvery {
				t.Errorf("let go [%d, %d) %d bytes after its writeback started (sent: %v)", off, off+n, w.off-at, ok)
			}
			dropped = append(dropped, span{off, n})
		}}
	chunk := make([]byte, 5<<20+123) // not a divisor of the interval
	for total < 5*writebackEvery+1 {
		n, err := w.Write(chunk)
		if err != nil {
			t.Fatal(err)
		}
		total += int64(n)
	}
	if len(sent) < 4 || len(dropped) != len(sent)-1 {
		t.Fatalf("%d ranges sent to disk, %d let go; want one let go for each but the last", len(sent), len(dropped))
	}
	next := int64(0)
	for i, d := range dropped {
		if d.off != next || d.n <= 0 {
			t.Fatalf("let go %+v after %d: ranges must follow one another", d, next)
		}
		next = d.off + d.n
		if d != sent[i] {
			t.Errorf("let go %+v, sent %+v", d, sent[i])
		}
	}
	if kept := total - next; kept < writebackEvery || kept >= 3*writebackEvery {
		t.Errorf("%d bytes left cached at the end, want one to two intervals' worth", kept)
	}
	if !slices.IsSortedFunc(sent, func(a, b span) int { return int(a.off - b.off) }) {
		t.Errorf("writeback out of order: %v", sent)
	}
}
