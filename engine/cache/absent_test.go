package cache

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

func storeAll(t *testing.T, c *Cache, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := c.Store(k, Entry{Text: "answer to " + k}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
}

func keyN(prefix string, i int) string { return Key(KeyParts{Prompt: fmt.Sprint(prefix, i)}) }

func mustGet(t *testing.T, c *Cache, key string, want bool) {
	t.Helper()
	if _, ok, err := c.Get(key); err != nil || ok != want {
		t.Fatalf("Get(%.12s) = %v, %v; want %v", key, ok, err, want)
	}
}

// A first run looks up every prompt and finds nothing: after the first
// miss, keys the cache knows are absent are not looked up in the file,
// and keys stored since are.
func TestAbsentKeysAreNotLookedUp(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	defer c.Close()
	for i := range 200 {
		mustGet(t, c, keyN("absent", i), false)
	}
	if n := c.lookups.Load(); n > 1 {
		t.Fatalf("200 absent keys in a new cache took %d lookups in the file; want 1", n)
	}
	storeAll(t, c, keyN("stored", 1))
	before := c.lookups.Load()
	mustGet(t, c, keyN("stored", 1), true)
	if c.lookups.Load() != before+1 {
		t.Fatal("a stored key was not looked up in the file")
	}
}

// An answer another process stores is found once rereadAfter has passed.
func TestAnAnswerAnotherProcessStoresIsFound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	mustGet(t, a, keyN("absent", 0), false) // a now knows the keys
	if a.known.fps == nil {
		t.Fatal("a miss in a new cache did not make the fingerprints")
	}
	storeAll(t, b, keyN("b", 1))
	time.Sleep(rereadAfter + 10*time.Millisecond)
	mustGet(t, a, keyN("b", 1), true)
}

// While answers arrive, the commits keep the fingerprints caught up:
// lookups in between do not read the file to catch up themselves.
func TestLookupsBetweenCommitsDoNotCatchUp(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	defer c.Close()
	mustGet(t, c, keyN("absent", 0), false) // the fingerprints are made
	if c.known.fps == nil {
		t.Fatal("a miss in a new cache did not make the fingerprints")
	}
	before := c.catchUps.Load()
	for i := range 120 { // 0.6 s: six commits or so
		if i%4 == 0 {
			if err := c.Store(keyN("new", i), Entry{Text: "answer"}); err != nil {
				t.Fatal(err)
			}
		}
		mustGet(t, c, keyN("absent", i+1), false)
		time.Sleep(5 * time.Millisecond)
	}
	// Caught up at 50 ms, every gap between two commits cost one or two.
	if n := c.catchUps.Load() - before; n > 2 {
		t.Errorf("lookups between commits caught up %d times in 0.6 s (%d commits)", n, c.commits.Load())
	}
}

// topRowsReplaced gives a fingerprints of five rows, then has another
// process clear the cache and store two rows, which get ids a has read.
func topRowsReplaced(t *testing.T) (a *Cache) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, b := open(t, path), open(t, path)
	t.Cleanup(func() { a.Close() })
	defer b.Close()
	storeAll(t, a, keyN("a", 1), keyN("a", 2), keyN("a", 3), keyN("a", 4), keyN("a", 5))
	mustGet(t, a, keyN("absent", 0), false)
	if _, err := b.Clear(); err != nil {
		t.Fatal(err)
	}
	storeAll(t, b, keyN("b", 1), keyN("b", 2))
	var top int64
	if err := b.db.QueryRow(`SELECT max(id) FROM answers`).Scan(&top); err != nil || top > 5 {
		t.Fatalf("the new rows did not reuse ids (top %d, %v): the test tests nothing", top, err)
	}
	return a
}

// After the rows at the top are deleted (cache clear) and other rows get
// their ids, every key is read again: those rows are found.
func TestKeysAreReadAgainWhenTheTopRowsWereDeleted(t *testing.T) {
	a := topRowsReplaced(t)
	time.Sleep(rereadAfter + 10*time.Millisecond)
	mustGet(t, a, keyN("b", 2), true)
	mustGet(t, a, keyN("a", 1), false)
}

// Reading every key costs about a twentieth of a lookup a row: it is done
// only once the misses have cost that much, and never by a run whose
// lookups find their answers (a re-gate).
func TestEveryKeyIsReadOnlyOnceMissesPayForIt(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "c.db"))
	defer c.Close()
	var keys []string
	for i := range 100 {
		keys = append(keys, keyN("k", i))
	}
	storeAll(t, c, keys...)
	for _, k := range keys {
		mustGet(t, c, k, true)
	}
	if c.known.fps != nil {
		t.Fatal("a run that found every answer read every key")
	}
	for i := range 4 {
		mustGet(t, c, keyN("absent", i), false)
	}
	if c.known.fps != nil {
		t.Fatal("4 misses in 100 rows read every key")
	}
	mustGet(t, c, keyN("absent", 4), false)
	if c.known.fps.len() != 100 {
		t.Fatalf("after 5 misses in 100 rows, %d keys known; want 100", c.known.fps.len())
	}
	for _, k := range keys {
		mustGet(t, c, k, true)
	}
}

// Each commit catches known up in its own transaction: with the rows
// another process added (found at once, without waiting rereadAfter)
// and its own (never read back from the file).
func TestCommitsKeepTheKeysUpToDate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	mustGet(t, a, keyN("absent", 0), false)
	storeAll(t, b, keyN("b", 1))
	var mine []string
	for i := range 100 {
		mine = append(mine, keyN("a", i))
	}
	storeAll(t, a, mine...)
	k, _ := keyBytes(keyN("b", 1))
	a.known.mu.Lock()
	hasB := a.known.fps.has(fingerprint(k))
	maxID := a.known.maxID
	a.known.mu.Unlock()
	if !hasB {
		t.Fatal("a commit did not add the key another process stored")
	}
	var top int64
	if err := a.db.QueryRow(`SELECT max(id) FROM answers`).Scan(&top); err != nil || maxID != top {
		t.Fatalf("known has read up to id %d, the file's top is %d (%v): a catch-up would read the commit's own rows back", maxID, top, err)
	}
}

// Answers stored but not committed while every key is read are kept:
// once committed they are found.
func TestKeysNotCommittedWhileEveryKeyIsReadAreKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, err := Open(path, Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := open(t, path)
	defer b.Close()
	// b holds the write lock, so a's answers wait uncommitted.
	conn, err := b.db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 50 {
		keys = append(keys, keyN("a", i))
		if err := a.Store(keys[i], Entry{Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * storeDelay) // the commit has begun and waits
	mustGet(t, a, keyN("absent", 0), false)
	if a.known.fps == nil {
		t.Fatal("every key was not read")
	}
	if _, err := conn.ExecContext(t.Context(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		mustGet(t, a, k, true)
	}
}

// The same, noticed by a commit: its transaction finds the top below
// what was read, and the next lookup reads every key again.
func TestACommitNoticesTheTopRowsWereDeleted(t *testing.T) {
	a := topRowsReplaced(t)
	storeAll(t, a, keyN("a", 6))
	mustGet(t, a, keyN("b", 2), true) // at once: no rereadAfter to wait out
	mustGet(t, a, keyN("a", 6), true)
}

// fpSet holds what a map would, through its growth, 0 included, in 4
// bytes a slot at most 3/4 full.
func TestFPSetIsASet(t *testing.T) {
	s, m := newFPSet(), map[uint32]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300_000 {
		fp := rng.Uint32()
		switch i % 7 {
		case 0:
			fp = uint32(i % 50) // repeats, and 0
		case 1:
			fp = fp &^ 0xffff // the same low bits: one long probe run
		}
		s.add(fp)
		m[max(fp, 1)] = true
		if probe := rng.Uint32(); s.has(probe) != m[max(probe, 1)] {
			t.Fatalf("has(%d) = %v after %d adds", probe, s.has(probe), i+1)
		}
	}
	for fp := range m {
		if !s.has(fp) {
			t.Fatalf("%d added, not found", fp)
		}
	}
	if s.len() != len(m) || len(s.slots) > 4*len(m)*2/3+1 && len(s.slots) > 1024 {
		t.Fatalf("%d fingerprints in %d slots; %d distinct", s.len(), len(s.slots), len(m))
	}
}
