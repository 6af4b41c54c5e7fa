package cache

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/pgrules/pgrules/providers"
)

// damage changes the bytes of a cache file's row behind pgrules' back, as
// a bad sector or a torn copy would: the checksums stay as they were.
func damage(t *testing.T, path, stmt string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Exec(stmt, args...); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s: %d rows", stmt, n)
	}
}

// An answer whose bytes changed after it was stored is never handed out:
// Get says it is damaged (the run then asks the teacher again), GetMany
// leaves it out. A damaged mark or memo is as good as absent.
func TestDamagedEntriesAreNotUsed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	k1, k2 := Key(KeyParts{Provider: "p", Prompt: "one"}), Key(KeyParts{Provider: "p", Prompt: "two"})
	for _, k := range []string{k1, k2} {
		if err := put(c, k, Entry{Text: `{"summary": "Visas are checked at the border."}`, Teacher: providers.Response{Provider: "p", ChosenModel: "m"}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Mark(k, `{"summary": "Visas are checked at the border."}`, []byte("passed-digest"), []byte("hits-digest+hits")); err != nil {
			t.Fatal(err)
		}
	}
	digest := []byte("memo-digest-0123456789abcdef0123")
	if err := c.PutMemo("schema-ok", digest, []byte("verdicts"), true); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	c.Close()

	if e, ok, err := open(t, path).Get(k1); err != nil || !ok || string(e.Passed) != "passed-digest" || string(e.Hits) != "hits-digest+hits" {
		t.Fatalf("undamaged: %+v %v %v", e, ok, err)
	}
	kb, _ := keyBytes(k1)
	damage(t, path, `UPDATE answers SET text = CAST(? AS BLOB) WHERE key = ?`, `{"summary": "Visas are never checked at the border."}`, kb)
	kb2, _ := keyBytes(k2)
	damage(t, path, `UPDATE answers SET hits = CAST('hits-digest+hitz' AS BLOB) WHERE key = ?`, kb2)
	damage(t, path, `UPDATE memos SET value = CAST('verdictz' AS BLOB) WHERE digest = ?`, digest)
	c = open(t, path)
	defer c.Close()

	_, ok, err := c.Get(k1)
	if ok || !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrDamaged) {
		t.Errorf("damaged answer: ok %v, err %v; want ErrChecksum", ok, err)
	}
	got, err := c.GetMany([]string{k1, k2})
	if _, found := got[k1]; found || err != nil {
		t.Errorf("GetMany handed out the damaged answer (%v)", err)
	}
	e, ok, err := c.Get(k2)
	if err != nil || !ok || string(e.Passed) != "passed-digest" || e.Hits != nil {
		t.Errorf("damaged hits mark: Passed %q, Hits %q (%v %v); want the answer, its passed mark, no hits", e.Passed, e.Hits, ok, err)
	}
	if v, ok, err := c.Memo(digest); ok || err != nil {
		t.Errorf("damaged memo: %q %v %v; want none", v, ok, err)
	}

	// The damaged answer is asked again and stored anew: good again.
	if err := put(c, k1, Entry{Text: "fresh", Teacher: providers.Response{Provider: "p"}}); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := c.Get(k1); err != nil || !ok || e.Text != "fresh" {
		t.Errorf("after a new Store: %q %v %v", e.Text, ok, err)
	}

	// A row read under another key fails too: the key is in the sum.
	damage(t, path, `UPDATE answers SET key = CAST(? AS BLOB) WHERE key = ?`, []byte("0123456789abcdef0123456789abcdef"), kb2)
	damage(t, path, `UPDATE answers SET key = ? WHERE key = ?`, kb2, kb)
	if _, ok, err := c.Get(k2); ok || !errors.Is(err, ErrChecksum) {
		t.Errorf("another key's row: ok %v, err %v; want ErrChecksum", ok, err)
	}
}

// merge leaves out what fails its checksum in the source, and says so.
func TestMergeLeavesOutDamagedAnswers(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db")
	c := open(t, src)
	var keys []string
	for _, p := range []string{"a", "b", "c"} {
		k := Key(KeyParts{Provider: "p", Prompt: p})
		keys = append(keys, k)
		if err := put(c, k, Entry{Text: "answer " + p, Teacher: providers.Response{Provider: "p"}}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	kb, _ := keyBytes(keys[1])
	damage(t, src, `UPDATE answers SET text = CAST('answer x' AS BLOB) WHERE key = ?`, kb)
	d := open(t, dst)
	defer d.Close()
	m, err := d.Merge(context.Background(), src)
	if err != nil || m.Added != 2 || m.Damaged != 1 {
		t.Fatalf("Merge = %+v, %v; want 2 added, 1 damaged", m, err)
	}
	if _, ok, _ := d.Get(keys[1]); ok {
		t.Error("the damaged answer was merged")
	}
	// What was merged carries its checksum: damage is caught here too.
	kb0, _ := keyBytes(keys[0])
	damage(t, dst, `UPDATE answers SET text = CAST('answer z' AS BLOB) WHERE key = ?`, kb0)
	if _, _, err := d.Get(keys[0]); !errors.Is(err, ErrChecksum) {
		t.Errorf("merged answer without a checksum: %v", err)
	}
}
