package engine

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pgrules/pgrules/engine/answer"
	"github.com/pgrules/pgrules/engine/cache"
	"github.com/pgrules/pgrules/engine/memo"
	"github.com/pgrules/pgrules/providers"
)

// Read-ahead attaches to each job the cached answer under its remembered
// key, across batch boundaries and in job order; a job with no key, no
// answer or a kept record gets none; --refresh reads nothing ahead.
func TestReadAheadAttachesCachedAnswers(t *testing.T) {
	c, err := cache.Open(filepath.Join(t.TempDir(), "cache.db"), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 2*cache.GetManyBatch + 7
	keys, err := memo.LoadPromptKeys(nil, nil, n)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []job
	for i := range n {
		k := cache.Key(cache.KeyParts{Provider: "p", Prompt: fmt.Sprint(i)})
		if i%5 != 1 { // 1, 6, 11...: no key remembered
			keys.Set(i, k)
		}
		if i%7 != 3 { // 3, 10, 17...: no answer cached
			if err := c.Store(k, cache.Entry{Text: fmt.Sprint("answer ", i), Teacher: providers.Response{Provider: "p"}}); err != nil {
				t.Fatal(err)
			}
		}
		j := job{seq: int32(i), ord: int32(i)}
		if i == 12 {
			j.keep = 1
		}
		jobs = append(jobs, j)
	}
	if err := c.Sync(); err != nil { // the read-ahead reads the file
		t.Fatal(err)
	}
	st := &stages{keys: keys, answers: &answer.Source{Cache: c}}
	var got []int32
	for j := range st.readAhead(slices.Values(jobs)) {
		got = append(got, j.seq)
		i := int(j.ord)
		want := i%5 != 1 && i%7 != 3 && i != 12
		switch {
		case want && (j.cached == nil || j.cached.Text != fmt.Sprint("answer ", i) || !j.cached.CacheHit):
			t.Errorf("job %d: read ahead %+v, want its answer", i, j.cached)
		case !want && j.cached != nil:
			t.Errorf("job %d: read ahead %q, want none", i, j.cached.Text)
		}
	}
	if len(got) != n || !slices.IsSorted(got) {
		t.Errorf("jobs came out as %v", got)
	}
	st.answers.Refresh = true
	for j := range st.readAhead(slices.Values(jobs)) {
		if j.cached != nil {
			t.Fatalf("--refresh read job %d's answer ahead", j.ord)
		}
	}
	// A consumer that stops early stops the reading (an iterator that
	// went on would make the range loop panic).
	st.answers.Refresh = false
	seen := 0
	for range st.readAhead(slices.Values(jobs)) {
		if seen++; seen == 3 {
			break
		}
	}
}
