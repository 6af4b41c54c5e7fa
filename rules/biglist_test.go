package rules

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bigList writes a word list of n distinct realistic entries (words and
// two- or three-word phrases from a travel vocabulary) and returns its path
// and size.
func bigList(tb testing.TB, n int) (string, int) {
	tb.Helper()
	words := strings.Fields(`visa entry border fee price cost opening hour regulation embassy consulate airport customs safety travel advisory permit vaccination quarantine insurance requirement ticket museum train bus ferry metro taxi hotel hostel passport currency exchange rate tourist office holiday season weather forecast schedule timetable route closure strike protest curfew`)
	rng := rand.New(rand.NewPCG(7, 11))
	seen := map[string]bool{}
	var b strings.Builder
	for len(seen) < n {
		k := 1 + rng.IntN(3)
		parts := make([]string, k)
		for i := range parts {
			parts[i] = words[rng.IntN(len(words))] + fmt.Sprint(rng.IntN(200))
		}
		e := strings.Join(parts, " ")
		if !seen[e] {
			seen[e] = true
			b.WriteString(e + "\n")
		}
	}
	dir := tb.TempDir()
	path := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path, b.Len()
}

func (m *matcher) sizeBytes() int {
	return 4*len(m.first) + len(m.labels) + 4*len(m.targets) + 4*len(m.fail) + 4*len(m.term) + 4*len(m.dict) + 4*len(m.lens) + 4*256
}

// A 200,000-entry list compiles into an automaton a small multiple of the
// list's own size (a map-based trie took ~600 MB).
func TestLargeWordListIsCompact(t *testing.T) {
	path, size := bigList(t, 200_000)
	data, _ := os.ReadFile(path)
	terms, err := parseList(path, data)
	if err != nil {
		t.Fatal(err)
	}
	m := compileTerms(terms)
	if got := m.sizeBytes(); got > 12*size {
		t.Errorf("automaton of a %d-byte list takes %d bytes (%.1f×)", size, got, float64(got)/float64(size))
	} else {
		t.Logf("automaton of a %d-byte list: %d bytes (%.1f×)", size, got, float64(got)/float64(size))
	}
	if hits := spans(m, normalize(terms[123].Raw+" and "+terms[4567].Raw)); len(hits) != 2 {
		t.Errorf("hits = %v", hits)
	}
}

// BenchmarkLoadLargeWordList measures start-up with a 200,000-entry list:
// parse, normalise, compile, and the heap it leaves.
func BenchmarkLoadLargeWordList(b *testing.B) {
	path, size := bigList(b, 200_000)
	data, _ := os.ReadFile(path)
	var ms runtime.MemStats
	for b.Loop() {
		start := time.Now()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		terms, _ := parseList(path, data)
		m := compileTerms(terms)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/float64(size), "heap/listbyte")
		b.ReportMetric(time.Since(start).Seconds(), "s/load")
		runtime.KeepAlive(m)
		runtime.KeepAlive(terms)
	}
}
