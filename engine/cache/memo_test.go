package cache

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgrules/pgrules/engine/memo"
	"github.com/pgrules/pgrules/providers"
)

// Memos are counted by stats, cleared and pruned with the answers, and a
// cache made before memos existed still reads.
func TestMemosLiveAndDieWithTheCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	k := Key(KeyParts{Provider: "p", Prompt: "x"})
	if err := c.Put(k, Entry{Text: "answer", Teacher: providers.Response{Provider: "p"}}); err != nil {
		t.Fatal(err)
	}
	digest := []byte("digest-of-a-fact")
	if err := c.PutMemo("schema-ok", digest, []byte("value"), false); err != nil {
		t.Fatal(err)
	}
	c.Sync()
	if v, ok, err := c.Memo(digest); !ok || err != nil || !bytes.Equal(v, []byte("value")) {
		t.Errorf("Memo = %q, %v, %v", v, ok, err)
	}
	if s, err := c.Stats(); err != nil || s.Memos != 1 || s.MemoBytes != 5 {
		t.Errorf("stats: %d memos, %d bytes, %v", s.Memos, s.MemoBytes, err)
	}
	if _, err := c.Prune(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Memo(digest); !ok {
		t.Error("prune removed a fresh memo")
	}
	if _, err := c.Prune(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Memo(digest); ok {
		t.Error("a memo survived pruning everything")
	}
	c.PutMemo("schema-ok", digest, []byte("value"), true)
	if _, err := c.Clear(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Memo(digest); ok {
		t.Error("a memo survived Clear")
	}
	c.Close()

	// The cache of a pgrules before memos, opened read-only (merge reads
	// its sources so): answers read, no memo, no error.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE memos`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c = open(t, path)
	c.Put(k, Entry{Text: "again", Teacher: providers.Response{Provider: "p"}})
	c.Close()
	db, _ = sql.Open("sqlite", "file:"+path)
	db.Exec(`DROP TABLE memos`)
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if e, ok, err := ro.Get(k); err != nil || !ok || e.Text != "again" {
		t.Errorf("old cache: Get = %q, %v, %v", e.Text, ok, err)
	}
	if _, ok, err := ro.Memo(digest); ok || err != nil {
		t.Errorf("old cache: Memo = %v, %v", ok, err)
	}
	if s, err := ro.Stats(); err != nil || s.Entries != 1 {
		t.Errorf("old cache stats: %+v, %v", s, err)
	}
}

// A check an answer passed is remembered on its row: for that very text
// only, gone when the answer is replaced, and a cache made before the
// column gets it when opened for writing (and reads without it when not).
func TestPassedMarksTheTextThatWasChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	k := Key(KeyParts{Provider: "p", Prompt: "x"})
	check := []byte("schemas v1")
	c.Put(k, Entry{Text: "answer", Teacher: providers.Response{Provider: "p"}})
	if e, _, _ := c.Get(k); e.Passed != nil {
		t.Fatalf("a new answer passed %q", e.Passed)
	}
	// A mark for a text that is no longer the answer's is not kept.
	c.MarkPassed(k, "an older answer", check)
	c.Sync()
	if e, _, _ := c.Get(k); e.Passed != nil {
		t.Errorf("another text's check marked the answer: %q", e.Passed)
	}
	c.MarkPassed(k, "answer", check)
	c.Sync()
	if e, _, _ := c.Get(k); !bytes.Equal(e.Passed, check) {
		t.Errorf("Passed = %q, want %q", e.Passed, check)
	}
	// The same text stored again (--refresh) keeps its mark.
	c.Put(k, Entry{Text: "answer", Teacher: providers.Response{Provider: "p", ChosenModel: "m2"}})
	if e, _, _ := c.Get(k); !bytes.Equal(e.Passed, check) || e.Teacher.ChosenModel != "m2" {
		t.Errorf("the same text stored again: Passed = %q, model %q", e.Passed, e.Teacher.ChosenModel)
	}
	c.Put(k, Entry{Text: "a new answer", Teacher: providers.Response{Provider: "p"}})
	if e, _, _ := c.Get(k); e.Passed != nil {
		t.Errorf("a replaced answer kept the old one's check: %q", e.Passed)
	}
	c.Close()

	// A cache of a pgrules before the column.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER TABLE answers DROP COLUMN passed`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if e, ok, err := ro.Get(k); err != nil || !ok || e.Text != "a new answer" || e.Passed != nil {
		t.Errorf("read-only, no column: Get = %q, %q, %v, %v", e.Text, e.Passed, ok, err)
	}
	ro.Close()
	c = open(t, path)
	defer c.Close()
	c.MarkPassed(k, "a new answer", check)
	c.Sync()
	if e, _, _ := c.Get(k); !bytes.Equal(e.Passed, check) {
		t.Errorf("after the column was added: Passed = %q, want %q", e.Passed, check)
	}
}

// A memo bigger than a piece goes through the cache in pieces, none of them
// larger than 1 MB, and comes back whole.
func TestBigMemoRoundTripsInPieces(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	value := make([]byte, 3<<20+5)
	for i := range value {
		value[i] = byte(i*31 + i>>12)
	}
	digest := []byte("digest-of-a-big-fact")
	memo.Keep(c, "input-index", digest, value)
	c.Sync()
	if got := memo.Recall(c, digest); !bytes.Equal(got, value) {
		t.Fatalf("recalled %d bytes, not the %d kept", len(got), len(value))
	}
	var n, biggest int
	if err := c.db.QueryRow(`SELECT count(*), max(length(value)) FROM memos`).Scan(&n, &biggest); err != nil {
		t.Fatal(err)
	}
	if n != 5 || biggest > 1<<20 {
		t.Errorf("%d memo rows, the biggest %d bytes; want 4 pieces of at most 1 MB and a header", n, biggest)
	}
}
