package cache

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgrules/pgrules/providers"
)

// BenchmarkStore measures answers stored by 4 concurrent workers (a
// run's default concurrency), ~4 KB each, until all are committed.
func BenchmarkStore(b *testing.B) {
	c, err := Open(filepath.Join(b.TempDir(), "c.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	text := strings.Repeat("x", 4096)
	b.SetBytes(4096)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/4 + 1
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				key := Key(KeyParts{Provider: "bench", Prompt: fmt.Sprint(w, "-", i)})
				if err := c.Store(key, Entry{Text: text, Teacher: providers.Response{Provider: "bench"}, StoredAt: time.Now()}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := c.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGetMany reads answers one statement each (Get: one) and
// GetManyBatch a statement (many), over a cache of 20,000 answers shaped
// like real ones (5 KB), in random order as a run meets them.
func BenchmarkGetMany(b *testing.B) {
	c, err := Open(filepath.Join(b.TempDir(), "c.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	text := strings.Repeat("The old town is best on foot; check the fees. ", 110)
	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = Key(KeyParts{Provider: "bench", Prompt: fmt.Sprint(i)})
		if err := c.Store(keys[i], Entry{Text: text, Teacher: providers.Response{Provider: "bench"}}); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Sync(); err != nil {
		b.Fatal(err)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	b.Run("one", func(b *testing.B) {
		for i := range b.N {
			if _, ok, err := c.Get(keys[i%len(keys)]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	// A first run looks up every prompt before it asks the teacher: misses.
	b.Run("miss", func(b *testing.B) {
		for i := range b.N {
			if _, ok, err := c.Get(Key(KeyParts{Provider: "bench", Prompt: fmt.Sprint("absent ", i)})); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	// What each of those misses cost before known (absent.go): the
	// statement alone.
	b.Run("miss-file", func(b *testing.B) {
		for i := range b.N {
			rows, err := c.get.Query(mustKey(Key(KeyParts{Provider: "bench", Prompt: fmt.Sprint("absent ", i)})))
			if err != nil {
				b.Fatal(err)
			}
			if rows.Next() {
				b.Fatal("found")
			}
			rows.Close()
		}
	})
	// What known pays, a row, to read every key: worth it once the
	// misses reach a twentieth of the rows if this is a twentieth of
	// miss-file.
	b.Run("read-keys", func(b *testing.B) {
		for b.Loop() {
			c.getMu.Lock()
			c.known.mu.Lock()
			err := c.readAllKeys()
			n := c.known.fps.len()
			c.known.mu.Unlock()
			c.getMu.Unlock()
			if err != nil || n < len(keys)*99/100 {
				b.Fatal(n, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/row")
	})
	b.Run("many", func(b *testing.B) {
		for i := 0; i < b.N; i += GetManyBatch {
			batch := make([]string, 0, GetManyBatch)
			for j := range min(GetManyBatch, b.N-i) {
				batch = append(batch, keys[(i+j)%len(keys)])
			}
			if got, err := c.GetMany(batch); err != nil || len(got) != len(batch) {
				b.Fatal(len(got), err)
			}
		}
	})
}

func mustKey(k string) []byte {
	b, err := keyBytes(k)
	if err != nil {
		panic(err)
	}
	return b
}
