package cache

import (
	"bytes"
	"database/sql"
	"fmt"
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
	if err := put(c, k, Entry{Text: "answer", Teacher: providers.Response{Provider: "p"}}); err != nil {
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
	put(c, k, Entry{Text: "again", Teacher: providers.Response{Provider: "p"}})
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

// The marks of an answer (a check it passed, its word-list hits) are
// remembered on its row: for that very text only, each kept when the other
// is written, gone when the answer is replaced, and a cache made before
// the columns gets them when opened for writing (and reads without them
// when not).
func TestMarksAreOfTheTextThatWasChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	k := Key(KeyParts{Provider: "p", Prompt: "x"})
	check, hits := []byte("schemas v1"), []byte("lists v1: hits")
	marks := func(e Entry) string { return fmt.Sprintf("passed %q, hits %q", e.Passed, e.Hits) }
	put(c, k, Entry{Text: "answer", Teacher: providers.Response{Provider: "p"}})
	if e, _, _ := c.Get(k); e.Passed != nil || e.Hits != nil {
		t.Fatalf("a new answer has marks: %s", marks(e))
	}
	// A mark for a text that is no longer the answer's is not kept.
	c.Mark(k, "an older answer", check, hits)
	c.Sync()
	if e, _, _ := c.Get(k); e.Passed != nil || e.Hits != nil {
		t.Errorf("another text's marks are on the answer: %s", marks(e))
	}
	c.Mark(k, "answer", check, nil)
	c.Sync()
	if e, _, _ := c.Get(k); !bytes.Equal(e.Passed, check) || e.Hits != nil {
		t.Errorf("after marking passed: %s", marks(e))
	}
	// Marking the hits alone keeps the check, and the other way round.
	c.Mark(k, "answer", nil, hits)
	c.Sync()
	if e, _, _ := c.Get(k); !bytes.Equal(e.Passed, check) || !bytes.Equal(e.Hits, hits) {
		t.Errorf("after marking the hits: %s", marks(e))
	}
	c.Mark(k, "answer", []byte("schemas v2"), nil)
	c.Sync()
	if e, _, _ := c.Get(k); string(e.Passed) != "schemas v2" || !bytes.Equal(e.Hits, hits) {
		t.Errorf("after marking another check: %s", marks(e))
	}
	c.Mark(k, "answer", check, nil)
	// The same text stored again (--refresh) keeps its marks.
	put(c, k, Entry{Text: "answer", Teacher: providers.Response{Provider: "p", ChosenModel: "m2"}})
	if e, _, _ := c.Get(k); !bytes.Equal(e.Passed, check) || !bytes.Equal(e.Hits, hits) || e.Teacher.ChosenModel != "m2" {
		t.Errorf("the same text stored again: %s, model %q", marks(e), e.Teacher.ChosenModel)
	}
	put(c, k, Entry{Text: "a new answer", Teacher: providers.Response{Provider: "p"}})
	if e, _, _ := c.Get(k); e.Passed != nil || e.Hits != nil {
		t.Errorf("a replaced answer kept the old one's marks: %s", marks(e))
	}
	c.Close()

	// A cache of a pgrules before the columns.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"passed", "hits"} {
		if _, err := db.Exec(`ALTER TABLE answers DROP COLUMN ` + col); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if e, ok, err := ro.Get(k); err != nil || !ok || e.Text != "a new answer" || e.Passed != nil || e.Hits != nil {
		t.Errorf("read-only, no columns: Get = %q, %s, %v, %v", e.Text, marks(e), ok, err)
	}
	if es, err := ro.GetMany([]string{k}); err != nil || es[k].Text != "a new answer" {
		t.Errorf("read-only, no columns: GetMany = %v, %v", es, err)
	}
	ro.Close()
	c = open(t, path)
	defer c.Close()
	c.Mark(k, "a new answer", check, hits)
	c.Sync()
	if e, _, _ := c.Get(k); !bytes.Equal(e.Passed, check) || !bytes.Equal(e.Hits, hits) {
		t.Errorf("after the columns were added: %s", marks(e))
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
