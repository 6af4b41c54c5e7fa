package cache

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAGroupIsWrittenToTheWALOnce commits a group of answers larger than
// a connection's page cache (a first run's groups are 5-20 MB) over a key
// index of a 100k run's size: each page reaches the WAL once. SQLite
// writes some of a large group's dirty pages before the commit; in
// arrival order the random keys came back to key-index leaves already
// written, which were written again (a 100k first run wrote 805 MB to the
// WAL for a 634 MB cache; 691 MB in key order).
func TestAGroupIsWrittenToTheWALOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	defer c.Close()
	// A key index of a 100k run's size first: the group's random keys
	// change its leaves all through the commit, and it is those a spill
	// wrote early and then again.
	const keys = 100_000
	for i := range keys {
		if err := c.Store(Key(KeyParts{Prompt: fmt.Sprint("key ", i)}), Entry{Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	const n = 1000 // 6 MB of answers: more than a page cache (4 MB), less than a checkpoint waits for (16)
	// The group is the answers Stored within storeDelay; a machine that
	// stalls for longer splits it, and then the group is stored again
	// under new keys: the test measures one commit.
	for attempt := range 5 {
		if _, err := c.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		commits := c.commits.Load()
		walBefore := fileSize(t, path+"-wal")
		keyOf := func(i int) string { return Key(KeyParts{Prompt: fmt.Sprint(attempt, " ", i)}) }
		for i := range n {
			text := fmt.Sprintf(`{"summary": "answer %d", "body": "%s"}`, i, strings.Repeat("word ", 1200))
			if err := c.Store(keyOf(i), Entry{Text: text}); err != nil {
				t.Fatal(err)
			}
		}
		before := procIO(t)
		if err := c.Sync(); err != nil {
			t.Fatal(err)
		}
		after := procIO(t)
		if got := c.commits.Load() - commits; got != 1 {
			t.Logf("attempt %d: the group took %d commits; again", attempt, got)
			continue
		}
		grown := fileSize(t, path+"-wal") - walBefore
		written := after["wchar"] - before["wchar"]
		t.Logf("the WAL grew by %d bytes; the commit wrote %d", grown, written)
		if grown < n*6000 {
			t.Fatalf("the WAL grew by %d bytes, less than the %d of the answers: the test measures nothing", grown, n*6000)
		}
		if written > grown+grown/20 {
			t.Errorf("the commit wrote %d bytes for %d new in the WAL: pages were written more than once", written, grown)
		}
		for i := range n {
			mustGet(t, c, keyOf(i), true)
		}
		return
	}
	t.Fatal("the group was split into several commits five times: nothing measured")
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// procIO is /proc/self/io: rchar and wchar count the bytes the process
// passed to read and write calls, pread and pwrite included.
func procIO(t *testing.T) map[string]int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		if m[k], err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	return m
}
