package cache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pgrules/pgrules/providers"
)

func open(t *testing.T, path string) *Cache {
	t.Helper()
	c, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripStatsClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "cache.db")
	c := open(t, path)
	cost := 0.5
	e := Entry{Text: "answer é", Teacher: providers.Response{Provider: "openrouter", ChosenModel: "m", Usage: &providers.Usage{TotalTokens: 10}, CostUSD: &cost, LatencySeconds: 2}, StoredAt: time.Unix(100, 0).UTC()}
	k := Key(KeyParts{Provider: "openrouter", Prompt: "p"})
	if err := put(c, k, e); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = open(t, path)
	defer c.Close()
	got, ok, err := c.Get(k)
	if err != nil || !ok || got.Text != e.Text || got.Teacher.ChosenModel != "m" || *got.Teacher.CostUSD != 0.5 || !got.StoredAt.Equal(e.StoredAt) {
		t.Fatalf("Get = %+v %v %v", got, ok, err)
	}
	if _, ok, _ := c.Get(Key(KeyParts{Provider: "openrouter", Prompt: "other"})); ok {
		t.Error("a different prompt found an answer")
	}
	s, err := c.Stats()
	if err != nil || s.Entries != 1 || s.ByProvider["openrouter"] != 1 || s.Tokens != 10 || s.CostUSD != 0.5 || s.CostReported != 1 {
		t.Errorf("stats %+v %v", s, err)
	}
	if n, err := c.Clear(); n != 1 || err != nil {
		t.Errorf("Clear = %d, %v", n, err)
	}
	if _, ok, _ := c.Get(k); ok {
		t.Error("entry survived Clear")
	}
}

func TestKeyCoversExactlyWhatChangesTheAnswer(t *testing.T) {
	base := KeyParts{Provider: "openrouter", IdentityJSON: []byte(`{"models":["a"]}`), System: "sys", Prompt: "prompt"}
	k := Key(base)
	if k != Key(base) {
		t.Fatal("key not stable")
	}
	for name, p := range map[string]KeyParts{
		"provider": {Provider: "local", IdentityJSON: base.IdentityJSON, System: "sys", Prompt: "prompt"},
		"identity": {Provider: "openrouter", IdentityJSON: []byte(`{"models":["b"]}`), System: "sys", Prompt: "prompt"},
		"system":   {Provider: "openrouter", IdentityJSON: base.IdentityJSON, System: "sys2", Prompt: "prompt"},
		"prompt":   {Provider: "openrouter", IdentityJSON: base.IdentityJSON, System: "sys", Prompt: "prompt2"},
		"id":       {Provider: "openrouter", IdentityJSON: base.IdentityJSON, System: "sys", Prompt: "prompt", SampleID: "x"},
	} {
		if Key(p) == k {
			t.Errorf("changing %s did not change the key", name)
		}
	}
	// Field boundaries are unambiguous.
	if Key(KeyParts{System: "ab", Prompt: "c"}) == Key(KeyParts{System: "a", Prompt: "bc"}) {
		t.Error("system/prompt boundary is ambiguous")
	}
}

// Two processes writing to one cache at once both succeed, and every
// answer either wrote is there afterwards: runs into different out dirs
// share the user's cache.
func TestTwoProcessesShareOneCache(t *testing.T) {
	if path := os.Getenv("PGRULES_CACHE_SHARE_CHILD"); path != "" {
		c, err := Open(path, Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		who := os.Getenv("PGRULES_CACHE_SHARE_WHO")
		for i := range 300 {
			if err := put(c, Key(KeyParts{Prompt: who + fmt.Sprint(i)}), Entry{Text: strings.Repeat(who, 2000)}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(4)
			}
			if _, ok, err := c.Get(Key(KeyParts{Prompt: who + fmt.Sprint(i)})); !ok || err != nil {
				os.Exit(5)
			}
		}
		c.Close()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "cache.db")
	var cmds []*exec.Cmd
	for _, who := range []string{"a", "b"} {
		cmd := exec.Command(os.Args[0], "-test.run=TestTwoProcessesShareOneCache")
		cmd.Env = append(os.Environ(), "PGRULES_CACHE_SHARE_CHILD="+path, "PGRULES_CACHE_SHARE_WHO="+who)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		defer func() {
			if stderr.Len() > 0 {
				t.Log(stderr.String())
			}
		}()
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("a writer failed while another wrote: %v", err)
		}
	}
	c := open(t, path)
	defer c.Close()
	s, err := c.Stats()
	if err != nil || s.Entries != 600 {
		t.Fatalf("entries = %d, %v; want 600", s.Entries, err)
	}
}

// Processes that open a cache file that does not exist yet, all at the
// same instant, all get a working cache: one sets it up (WAL), the others
// wait for it instead of failing "database is locked".
func TestManyProcessesCreateOneCacheAtOnce(t *testing.T) {
	if path := os.Getenv("PGRULES_CACHE_RACE_CHILD"); path != "" {
		for {
			if _, err := os.Stat(path + ".go"); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		c, err := Open(path, Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if err := put(c, Key(KeyParts{Prompt: os.Getenv("PGRULES_CACHE_RACE_WHO")}), Entry{Text: "x"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		c.Close()
		os.Exit(0)
	}
	const procs = 8
	for round := range 4 {
		path := filepath.Join(t.TempDir(), "cache.db")
		var cmds []*exec.Cmd
		var outs []*strings.Builder
		for i := range procs {
			cmd := exec.Command(os.Args[0], "-test.run=TestManyProcessesCreateOneCacheAtOnce")
			cmd.Env = append(os.Environ(), "PGRULES_CACHE_RACE_CHILD="+path, fmt.Sprintf("PGRULES_CACHE_RACE_WHO=%d", i))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, &stderr)
		}
		time.Sleep(300 * time.Millisecond) // every child is waiting
		if err := os.WriteFile(path+".go", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("round %d: process %d could not open the new cache: %v\n%s", round, i, err, outs[i])
			}
		}
		c := open(t, path)
		s, err := c.Stats()
		c.Close()
		if err != nil || s.Entries != procs {
			t.Fatalf("round %d: %d entries, %v; want %d", round, s.Entries, err, procs)
		}
	}
}

func TestPruneRemovesOnlyOldAnswers(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	now := time.Now()
	put(c, Key(KeyParts{Prompt: "old"}), Entry{Text: "x", StoredAt: now.Add(-40 * 24 * time.Hour)})
	put(c, Key(KeyParts{Prompt: "new"}), Entry{Text: "y", StoredAt: now.Add(-time.Hour)})
	// What prune asks about before it removes anything.
	if n, err := c.StoredBefore(now.Add(-30 * 24 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("StoredBefore = %d, %v", n, err)
	}
	if n, err := c.Prune(now.Add(-30 * 24 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if _, ok, _ := c.Get(Key(KeyParts{Prompt: "old"})); ok {
		t.Error("an old answer survived")
	}
	if _, ok, _ := c.Get(Key(KeyParts{Prompt: "new"})); !ok {
		t.Error("a recent answer was pruned")
	}
}

// Merge gathers answers from another cache, and from a cache file of an
// older pgrules (bbolt), without overwriting what is there.
func TestMergeFromCachesOldAndNew(t *testing.T) {
	dir := t.TempDir()
	src := open(t, filepath.Join(dir, "src.db"))
	put(src, Key(KeyParts{Prompt: "s1"}), Entry{Text: "from src", Teacher: providers.Response{Provider: "local", ChosenModel: "m"}})
	src.Close()

	old := filepath.Join(dir, "old.db")
	db, err := bolt.Open(old, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(map[string]any{"teacher": map[string]any{"provider": "openrouter", "chosen_model": "x/y"}, "stored_at": time.Unix(1700000000, 0)})
	val := binary.BigEndian.AppendUint32(nil, uint32(len(meta)))
	val = append(append(val, meta...), "from bbolt"...)
	oldKey := Key(KeyParts{Prompt: "o1"})
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("answers"))
		return b.Put([]byte(oldKey), val)
	})
	db.Close()

	dst := open(t, filepath.Join(dir, "dst.db"))
	defer dst.Close()
	put(dst, Key(KeyParts{Prompt: "s1"}), Entry{Text: "already here"})
	if _, err := Open(old, Options{}); !errors.Is(err, ErrNotCache) {
		t.Errorf("opening a bbolt cache: %v, want ErrNotCache", err)
	}
	for path, want := range map[string]int{filepath.Join(dir, "src.db"): 0, old: 1} {
		if m, err := dst.Merge(context.Background(), path); m.Added != want || m.Damaged != 0 || err != nil {
			t.Errorf("Merge(%s) = %+v, %v; want %d added", filepath.Base(path), m, err, want)
		}
	}
	if e, _, _ := dst.Get(Key(KeyParts{Prompt: "s1"})); e.Text != "already here" {
		t.Errorf("merge overwrote an answer: %q", e.Text)
	}
	if e, ok, _ := dst.Get(oldKey); !ok || e.Text != "from bbolt" || e.Teacher.ChosenModel != "x/y" {
		t.Errorf("bbolt answer: %+v %v", e, ok)
	}
}

func TestConcurrentStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := put(c, Key(KeyParts{Prompt: fmt.Sprint(w, "/", i)}), Entry{Text: fmt.Sprint(w, "/", i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	c = open(t, path)
	defer c.Close()
	for w := range 32 {
		for i := range 20 {
			e, ok, err := c.Get(Key(KeyParts{Prompt: fmt.Sprint(w, "/", i)}))
			if !ok || err != nil || e.Text != fmt.Sprint(w, "/", i) {
				t.Fatalf("entry %d/%d: %v %v %q", w, i, ok, err, e.Text)
			}
		}
	}
}

// TestKilledWriterLeavesAUsableCache SIGKILLs a process that is writing
// and checks that every answer whose Sync had returned is there and
// decodes.
func TestKilledWriterLeavesAUsableCache(t *testing.T) {
	if path := os.Getenv("PGRULES_CACHE_CRASH_CHILD"); path != "" {
		c, err := Open(path, Options{})
		if err != nil {
			os.Exit(3)
		}
		for i := 0; ; i++ {
			if err := put(c, Key(KeyParts{Prompt: fmt.Sprint(i)}), Entry{Text: strings.Repeat("x", 3000) + fmt.Sprint(i)}); err != nil {
				os.Exit(4)
			}
			fmt.Println(i) // acknowledged
		}
	}
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "cache.db")
		out, _ := killedChild(t, "TestKilledWriterLeavesAUsableCache", "PGRULES_CACHE_CRASH_CHILD="+path, time.Duration(100+rand.IntN(300))*time.Millisecond)
		lines := strings.Fields(out)
		c := open(t, path)
		s, err := c.Stats()
		if err != nil {
			t.Fatalf("round %d: cache unreadable after kill -9: %v", round, err)
		}
		if s.Entries < len(lines) {
			t.Errorf("round %d: %d puts acknowledged, %d entries survived", round, len(lines), s.Entries)
		}
		for _, l := range lines {
			if e, ok, err := c.Get(Key(KeyParts{Prompt: l})); !ok || err != nil || !strings.HasSuffix(e.Text, l) {
				t.Fatalf("round %d: acknowledged entry %s lost or damaged", round, l)
			}
		}
		c.Close()
		t.Logf("round %d: %d entries acknowledged before kill -9, all present", round, len(lines))
	}
}

// killedChild runs test in a child process of this test binary with env
// added, SIGKILLs it after d, and returns what it printed and when it was
// killed.
func killedChild(t *testing.T, test, env string, d time.Duration) (string, time.Time) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	killed := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	return out.String(), killed
}

// A prompt hashed as its pieces has the key of the joined prompt: caches
// written before keep answering.
func TestKeyOfPromptPiecesIsTheKeyOfThePrompt(t *testing.T) {
	base := KeyParts{Provider: "p", IdentityJSON: []byte(`{"m":1}`), System: "s", SampleID: "id"}
	joined, pieces := base, base
	joined.Prompt = "Refine this: draft body. Critique: {}"
	pieces.PromptParts = []string{"Refine this: ", "draft body", ". Critique: ", "{}"}
	if Key(joined) != Key(pieces) {
		t.Error("the key of a prompt's pieces differs from the key of the prompt")
	}
	// A shift of bytes between the system message and the prompt is
	// another key (lengths are part of the hash).
	shifted := pieces
	shifted.System, shifted.PromptParts = "sR", []string{"efine this: ", "draft body", ". Critique: ", "{}"}
	if Key(shifted) == Key(pieces) {
		t.Error("moving a byte from the prompt to the system message kept the key")
	}
}

// GetMany finds what Get finds, key by key: in any number of keys (40 take
// two statements), with repeats and keys that are not there, and an entry
// that cannot be read is left out for Get to explain, not failing the
// others.
func TestGetManyIsGetForEachKey(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	var keys []string
	for i := range 40 {
		k := Key(KeyParts{Provider: "p", Prompt: fmt.Sprint("prompt ", i)})
		keys = append(keys, k)
		if i%3 == 2 {
			continue // not cached
		}
		if err := put(c, k, Entry{Text: fmt.Sprint("answer ", i), Teacher: providers.Response{Provider: "p", ChosenModel: fmt.Sprint("m", i)}, StoredAt: time.Unix(int64(1e9+i), 0)}); err != nil {
			t.Fatal(err)
		}
	}
	c.Mark(keys[0], "answer 0", []byte("check"), []byte("hits"))
	c.Sync()
	if _, err := c.db.Exec(`UPDATE answers SET teacher = x'7b' WHERE key = ?`, mustKey(keys[4])); err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]string{keys[:1], keys[:GetManyBatch], keys[8:20], {keys[0], keys[0], keys[2], keys[3]}, keys} {
		got, err := c.GetMany(batch)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]Entry{}
		for _, k := range batch {
			if e, ok, _ := c.Get(k); ok {
				want[k] = e
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetMany of %d keys found %d entries, Get %d:\n%v\n%v", len(batch), len(got), len(want), got, want)
		}
	}
	if got, _ := c.GetMany(keys[:8]); len(got) != 5 {
		t.Errorf("keys 0-7 (2 and 5 not cached, 4 unreadable): %d entries, want 5", len(got))
	}
	if _, _, err := c.Get(keys[4]); err == nil {
		t.Error("Get of the unreadable entry: no error")
	}
	if got, err := c.GetMany(nil); err != nil || len(got) != 0 {
		t.Errorf("GetMany of no keys: %v, %v", got, err)
	}
}

// A cache file cut short (a copy interrupted, a disk that filled under
// another tool) is reported as damaged, so the user is told to move it
// aside rather than that it is not a cache.
func TestACacheCutShortIsReportedDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	text := strings.Repeat("Check the opening hours before you go. ", 130)
	for i := range 2000 {
		c.Store(Key(KeyParts{Prompt: fmt.Sprint("p", i)}), Entry{Text: text})
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrDamaged) || errors.Is(err, ErrNotCache) {
		t.Fatalf("opening a cache cut in half: %v, want ErrDamaged", err)
	}
}
