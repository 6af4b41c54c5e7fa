package cache

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgrules/pgrules/engine/cache/cachetest"
	"github.com/pgrules/pgrules/providers"
)

// An answer given to Store is found by Get at once, marks included, and
// is in the file for another process after Sync.
func TestStoredAnswerIsFoundBeforeAndAfterItsCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	defer c.Close()
	k := Key(KeyParts{Provider: "p", Prompt: "q"})
	e := Entry{Text: "answer", Teacher: providers.Response{Provider: "p", ChosenModel: "m"}, StoredAt: time.Unix(1e9, 0).UTC(), Passed: []byte("check"), Hits: []byte("hits")}
	if err := c.Store(k, e); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(k)
	if !ok || err != nil || got.Text != "answer" || got.Teacher.Text != "answer" || string(got.Passed) != "check" || string(got.Hits) != "hits" {
		t.Fatalf("Get before the commit = %+v %v %v", got, ok, err)
	}
	if many, err := c.GetMany([]string{k}); err != nil || many[k].Text != "answer" || string(many[k].Hits) != "hits" {
		t.Fatalf("GetMany before the commit = %+v %v", many, err)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	other := open(t, path)
	defer other.Close()
	got, ok, err = other.Get(k)
	if !ok || err != nil || got.Text != "answer" || got.Teacher.ChosenModel != "m" || !got.StoredAt.Equal(e.StoredAt) || string(got.Passed) != "check" || string(got.Hits) != "hits" {
		t.Fatalf("another handle after Sync: %+v %v %v", got, ok, err)
	}
	c.mu.Lock()
	n := len(c.unstored)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d answers still held in memory after their commit", n)
	}
}

// The marks stored with an answer join those the row has for the same
// text, and a different text starts from its own.
func TestStoreKeepsTheMarksOfTheSameText(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	k := Key(KeyParts{Provider: "p", Prompt: "q"})
	for i, step := range []struct {
		text, passed, hits   string
		wantPassed, wantHits string
	}{
		{"a", "check", "", "check", ""},
		{"a", "", "hits", "check", "hits"}, // --refresh, same answer
		{"a", "check2", "", "check2", "hits"},
		{"b", "", "", "", ""}, // a new answer: the old marks are not its
		{"b", "", "hits-b", "", "hits-b"},
	} {
		e := Entry{Text: step.text, Teacher: providers.Response{Provider: "p"}}
		if step.passed != "" {
			e.Passed = []byte(step.passed)
		}
		if step.hits != "" {
			e.Hits = []byte(step.hits)
		}
		if err := c.Store(k, e); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(); err != nil {
			t.Fatal(err)
		}
		var passed, hits []byte
		if err := c.db.QueryRow(`SELECT passed, hits FROM answers WHERE key = ?`, mustKey(k)).Scan(&passed, &hits); err != nil {
			t.Fatal(err)
		}
		if string(passed) != step.wantPassed || string(hits) != step.wantHits {
			t.Errorf("step %d (%q): marks %q %q, want %q %q", i, step.text, passed, hits, step.wantPassed, step.wantHits)
		}
	}
}

// A commit that fails loses the answers given to Store; Sync says how
// many, and Get stops serving them from memory.
func TestSyncReportsAnswersNotStored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path) // writes wait 200 ms for another writer
	defer c.Close()
	// Another process's write transaction that outlasts the wait.
	release := cachetest.HoldWrites(t, path)
	keys := []string{}
	for i := range 3 {
		k := Key(KeyParts{Provider: "p", Prompt: fmt.Sprint(i)})
		keys = append(keys, k)
		if err := c.Store(k, Entry{Text: fmt.Sprint("answer ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Sync()
	release()
	var se *StoreError
	if !errors.As(err, &se) || se.Lost != 3 || !strings.Contains(err.Error(), "3 answer(s) not stored") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Sync = %v, want 3 answers not stored, naming %s", err, path)
	}
	for _, k := range keys {
		if _, ok, _ := c.Get(k); ok {
			t.Error("an answer that was never stored is still served")
		}
	}
	if err := c.Sync(); err != nil {
		t.Errorf("a second Sync reports the same loss again: %v", err)
	}
	// The cache works again once the other writer is done.
	if err := c.Store(keys[0], Entry{Text: "again"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestStoredAnswersSurviveAKillAfterStoreDelay SIGKILLs a process that
// stores answers one a millisecond — too slowly to fill a batch — and
// checks that every answer it stored storeDelay (plus room for a busy
// machine) before the kill was committed.
func TestStoredAnswersSurviveAKillAfterStoreDelay(t *testing.T) {
	if path := os.Getenv("PGRULES_CACHE_STORE_CHILD"); path != "" {
		c, err := Open(path, Options{})
		if err != nil {
			os.Exit(3)
		}
		for i := 0; ; i++ {
			if err := c.Store(Key(KeyParts{Prompt: fmt.Sprint(i)}), Entry{Text: strings.Repeat("x", 3000) + fmt.Sprint(i)}); err != nil {
				os.Exit(4)
			}
			fmt.Println(i, time.Now().UnixNano())
			time.Sleep(time.Millisecond)
		}
	}
	const room = 400 * time.Millisecond
	path := filepath.Join(t.TempDir(), "cache.db")
	out, killed := killedChild(t, "TestStoredAnswersSurviveAKillAfterStoreDelay", "PGRULES_CACHE_STORE_CHILD="+path, 1500*time.Millisecond)
	c := open(t, path)
	defer c.Close()
	due, stored := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		stored++
		at, _ := strconv.ParseInt(f[1], 10, 64)
		if killed.Sub(time.Unix(0, at)) < storeDelay+room {
			continue
		}
		due++
		if e, ok, err := c.Get(Key(KeyParts{Prompt: f[0]})); !ok || err != nil || !strings.HasSuffix(e.Text, f[0]) {
			t.Fatalf("answer %s, stored %v before the kill, lost (%v %v)", f[0], killed.Sub(time.Unix(0, at)), ok, err)
		}
	}
	if due < 100 {
		t.Fatalf("only %d of %d answers were stored early enough to check", due, stored)
	}
	t.Logf("%d answers stored, the %d stored %v or more before kill -9 all committed", stored, due, storeDelay+room)
}

// An empty answer is an answer (judged as not JSON): it is stored, not
// refused as a NULL.
func TestAnEmptyAnswerIsStored(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	k := Key(KeyParts{Provider: "p", Prompt: "q"})
	if err := c.Store(k, Entry{Text: ""}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(); err != nil {
		t.Fatalf("storing an empty answer: %v", err)
	}
	var n int
	if err := c.db.QueryRow(`SELECT length(text) FROM answers WHERE key = ?`, mustKey(k)).Scan(&n); err != nil || n != 0 {
		t.Fatalf("stored empty answer: length %d, %v", n, err)
	}
}

// put stores an answer and waits for its commit, as a run does before
// committing its outputs.
func put(c *Cache, key string, e Entry) error {
	if err := c.Store(key, e); err != nil {
		return err
	}
	return c.Sync()
}

// TestAnswersArrivingTogetherShareACommit stores answers for 50 ms, as a
// fast teacher's answers arrive: they share one commit (two if the timer
// fell among them), and so the key index's leaves they land on (see
// storeDelay). Committed every 10 ms, they took five or six.
func TestAnswersArrivingTogetherShareACommit(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	const burst = 50 * time.Millisecond
	start := time.Now()
	n := 0
	for time.Since(start) < burst {
		if err := c.Store(Key(KeyParts{Prompt: fmt.Sprint(n)}), Entry{Text: strings.Repeat("x", 5000)}); err != nil {
			t.Fatal(err)
		}
		n++
		time.Sleep(500 * time.Microsecond)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := c.commits.Load(); got > 2 {
		t.Fatalf("%d answers stored over %v took %d commits, want 1 or 2", n, burst, got)
	}
	for i := range n {
		mustGet(t, c, Key(KeyParts{Prompt: fmt.Sprint(i)}), true)
	}
}

// TestStoreDoesNotWaitForACommitInProgress holds another writer's lock
// while a worker stores more answers than a 100 ms group holds at 8,000
// samples/s: Store returns for each at once. With a queue of 256 the 257th
// waited for the commit, which waits for the lock (and, in a run, for the
// checkpoint's fsync): a first run's 128 workers all stood still in it,
// and the two cores idled 5–10 % of the run.
func TestStoreDoesNotWaitForACommitInProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := Open(path, Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := cachetest.HoldWrites(t, path)
	// A first answer, and time for its commit to start and wait.
	if err := c.Store(Key(KeyParts{Prompt: "first"}), Entry{Text: "first"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * storeDelay)
	const n = 2000
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := c.Store(Key(KeyParts{Prompt: fmt.Sprint(i)}), Entry{Text: fmt.Sprint("answer ", i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		release()
		<-done
		t.Fatalf("Store waited for a commit held up by another writer (%d answers)", n)
	}
	release()
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		mustGet(t, c, Key(KeyParts{Prompt: fmt.Sprint(i)}), true)
	}
}

// Answers are committed in key order within a run of answers, but the
// later of two under one key still wins, and a mark stays between the
// answers it came between.
func TestSortAnswerRunsKeepsWhatCameLater(t *testing.T) {
	ans := func(k byte, text string) *putReq {
		return &putReq{key: text, args: []any{[]byte{k}, text}}
	}
	mark := &putReq{stmt: &sql.Stmt{}, args: []any{"mark"}}
	sync := &putReq{done: make(chan error, 1)}
	batch := []*putReq{ans(3, "c1"), ans(1, "a1"), ans(3, "c2"), ans(2, "b1"), mark, ans(2, "b2"), ans(1, "a2"), sync, ans(9, "z"), ans(0, "0")}
	sortAnswerRuns(batch)
	var got []string
	for _, r := range batch {
		switch r {
		case mark:
			got = append(got, "mark")
		case sync:
			got = append(got, "sync")
		default:
			got = append(got, r.key)
		}
	}
	want := "a1 b1 c1 c2 mark a2 b2 sync 0 z"
	if g := strings.Join(got, " "); g != want {
		t.Fatalf("committed in the order %s, want %s", g, want)
	}
}

// A group as large as a first run's holds answers under the same key far
// apart: they stay in the order they came (an unstable sort of 2,000
// answers over 50 keys swaps some).
func TestSortAnswerRunsIsStableInALargeGroup(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]*putReq, 2000)
	for i := range batch {
		k := byte(rng.IntN(50))
		batch[i] = &putReq{key: fmt.Sprint(i), args: []any{[]byte{k}}}
	}
	sortAnswerRuns(batch)
	for i := 1; i < len(batch); i++ {
		a, b := batch[i-1], batch[i]
		ka, kb := a.args[0].([]byte)[0], b.args[0].([]byte)[0]
		na, _ := strconv.Atoi(a.key)
		nb, _ := strconv.Atoi(b.key)
		if ka > kb || ka == kb && na > nb {
			t.Fatalf("position %d: key %d (answer %d) before key %d (answer %d)", i, ka, na, kb, nb)
		}
	}
}

// Two answers under one key in one group: the later is the one kept.
// (A machine that stalls past storeDelay splits the group: it is stored
// again under new keys, as the WAL test does.)
func TestTheLaterAnswerOfAGroupWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	for attempt := range 5 {
		c := open(t, path)
		key := Key(KeyParts{Prompt: fmt.Sprint("same ", attempt)})
		for i := range 50 {
			if err := c.Store(Key(KeyParts{Prompt: fmt.Sprint(attempt, " ", i)}), Entry{Text: "other"}); err != nil {
				t.Fatal(err)
			}
			if i == 10 || i == 40 {
				if err := c.Store(key, Entry{Text: fmt.Sprint("answer ", i)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := c.Sync(); err != nil {
			t.Fatal(err)
		}
		commits := c.commits.Load()
		c.Close()
		if commits != 1 {
			t.Logf("attempt %d: the group took %d commits; again", attempt, commits)
			continue
		}
		c = open(t, path)
		defer c.Close()
		e, ok, err := c.Get(key)
		if err != nil || !ok || e.Text != "answer 40" {
			t.Fatalf("Get = %q, %v, %v; want the later answer", e.Text, ok, err)
		}
		return
	}
	t.Fatal("the group was split into several commits five times: nothing measured")
}
