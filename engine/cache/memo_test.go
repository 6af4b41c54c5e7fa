package cache

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgrules/pgrules/providers"
)

// Memos ride along answers: read with one in the same statement, counted
// by stats, cleared and pruned with them, and a cache made before memos
// existed still reads.
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
	e, memo, ok, err := c.GetMemo(k, digest)
	if err != nil || !ok || e.Text != "answer" || string(memo) != "value" {
		t.Fatalf("GetMemo = %q, %q, %v, %v", e.Text, memo, ok, err)
	}
	if _, memo, ok, _ := c.GetMemo(k, []byte("another fact")); !ok || memo != nil {
		t.Errorf("a memo under another digest: %q (answer found: %v)", memo, ok)
	}
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
	if e, memo, ok, err := ro.GetMemo(k, digest); err != nil || !ok || e.Text != "again" || memo != nil {
		t.Errorf("old cache: GetMemo = %q, %q, %v, %v", e.Text, memo, ok, err)
	}
	if _, ok, err := ro.Memo(digest); ok || err != nil {
		t.Errorf("old cache: Memo = %v, %v", ok, err)
	}
	if s, err := ro.Stats(); err != nil || s.Entries != 1 {
		t.Errorf("old cache stats: %+v, %v", s, err)
	}
}
