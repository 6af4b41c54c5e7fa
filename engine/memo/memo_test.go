package memo

import (
	"bytes"
	"fmt"
	"testing"
)

// A memo digest covers its kind, its parts (length-prefixed, so parts do
// not run into each other) and the build: memos of another build are not
// found.
func TestDigestCoversKindPartsAndBuild(t *testing.T) {
	if Build() == nil {
		t.Fatal("the test binary could not be hashed")
	}
	d := func(kind string, parts ...string) []byte { return New(kind).Add(parts...).Sum() }
	base := d(KindPromptKeys, "ab", "c")
	for name, other := range map[string][]byte{
		"kind":  d(KindSchemaOK, "ab", "c"),
		"split": d(KindPromptKeys, "a", "bc"),
		"parts": d(KindPromptKeys, "ab", "c", ""),
	} {
		if bytes.Equal(base, other) {
			t.Errorf("changing the %s does not change the digest", name)
		}
	}
	if !bytes.Equal(base, d(KindPromptKeys, "ab", "c")) {
		t.Error("the same kind and parts digest differently")
	}
	saved := build.sum
	build.sum = append([]byte{1}, saved[1:]...)
	defer func() { build.sum = saved }()
	if bytes.Equal(base, d(KindPromptKeys, "ab", "c")) {
		t.Error("another build's digest is the same")
	}
	if bytes.Equal(Extend(base, "x"), Extend(base, "y")) || !bytes.Equal(Extend(base, "x"), Extend(base, "x")) {
		t.Error("Extend does not follow its parts")
	}
}

// PromptKeys keeps a key per sample place; a blob of another size is not
// taken for them.
func TestPromptKeysRoundTrip(t *testing.T) {
	st := mapStore{}
	p, _ := LoadPromptKeys(st, []byte("d"), 3)
	key := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	p.Set(1, key)
	p.Set(2, "not hex")
	if err := p.Save(st); err != nil {
		t.Fatal(err)
	}
	q, _ := LoadPromptKeys(st, []byte("d"), 3)
	if k, ok := q.Get(1); !ok || k != key || q.Known() != 1 {
		t.Errorf("Get(1) = %q, %v; known %d", k, ok, q.Known())
	}
	if _, ok := q.Get(2); ok {
		t.Error("a key that is not hex was kept")
	}
	if r, _ := LoadPromptKeys(st, []byte("d"), 4); r.Known() != 0 {
		t.Error("keys of a set of another size were used")
	}
}

// Keys past the first chunk come back from their own memos, and only the
// chunks that gained a key are written again.
func TestPromptKeysAcrossChunks(t *testing.T) {
	st := mapStore{}
	n := 2*keysPerChunk + 5
	p, _ := LoadPromptKeys(st, []byte("d"), n)
	key := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	for _, i := range []int{0, keysPerChunk - 1, 2*keysPerChunk + 4} {
		p.Set(i, key(i))
	}
	if err := p.Save(st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Errorf("%d memos written, want the 2 chunks that gained keys", len(st))
	}
	q, _ := LoadPromptKeys(st, []byte("d"), n)
	if q.Known() != 3 {
		t.Errorf("%d keys known, want 3", q.Known())
	}
	for _, i := range []int{0, keysPerChunk - 1, 2*keysPerChunk + 4} {
		if k, ok := q.Get(i); !ok || k != key(i) {
			t.Errorf("Get(%d) = %q, %v", i, k, ok)
		}
	}
	if err := q.Save(st); err != nil || len(st) != 2 {
		t.Errorf("saving unchanged keys wrote memos: %d, %v", len(st), err)
	}
}

// mapStore is a Store in memory: package memo cannot import the cache
// (the cache's own tests cover the SQLite store).
type mapStore map[string][]byte

func (m mapStore) Memo(d []byte) ([]byte, bool, error) { v, ok := m[string(d)]; return v, ok, nil }
func (m mapStore) PutMemo(_ string, d, v []byte, _ bool) error {
	m[string(d)] = append([]byte{}, v...)
	return nil
}

// A value larger than a piece is kept in pieces and recalled whole; a
// missing piece or header means no value, never a short one.
func TestBigValuesAreKeptInPieces(t *testing.T) {
	st := mapStore{}
	value := make([]byte, 2*pieceSize+7)
	for i := range value {
		value[i] = byte(i * 7)
	}
	Keep(st, "k", []byte("d"), value)
	if len(st) != 4 {
		t.Errorf("%d memos, want 3 pieces and a header", len(st))
	}
	for _, v := range st {
		if len(v) > pieceSize {
			t.Errorf("a memo of %d bytes, more than a piece", len(v))
		}
	}
	if got := Recall(st, []byte("d")); !bytes.Equal(got, value) {
		t.Fatalf("recalled %d bytes, not the value kept", len(got))
	}
	delete(st, string(pieceDigest([]byte("d"), 1)))
	if got := Recall(st, []byte("d")); got != nil {
		t.Errorf("recalled %d bytes with a piece missing", len(got))
	}
	small := []byte("small")
	Keep(st, "k", []byte("s"), small)
	if got := Recall(st, []byte("s")); !bytes.Equal(got, small) {
		t.Errorf("small value recalled as %q", got)
	}
}
