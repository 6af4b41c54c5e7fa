package cache

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgrules/pgrules/providers"
)

// BenchmarkPut measures durable puts from 4 concurrent workers (a run's
// default concurrency), ~4 KB answers.
func BenchmarkPut(b *testing.B) {
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
				if err := c.Put(key, Entry{Text: text, Teacher: providers.Response{Provider: "bench"}, StoredAt: time.Now()}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkGet(b *testing.B) {
	c, err := Open(filepath.Join(b.TempDir(), "c.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	text := strings.Repeat("x", 4096)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = Key(KeyParts{Provider: "bench", Prompt: fmt.Sprint(i)})
		if err := c.Put(keys[i], Entry{Text: text}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(4096)
	b.ResetTimer()
	for i := range b.N {
		if _, ok, err := c.Get(keys[i%len(keys)]); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
