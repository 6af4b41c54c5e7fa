package memo

import (
	"bytes"
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

// mapStore is a Store in memory: package memo cannot import the cache
// (the cache's own tests cover the SQLite store).
type mapStore map[string][]byte

func (m mapStore) Memo(d []byte) ([]byte, bool, error) { v, ok := m[string(d)]; return v, ok, nil }
func (m mapStore) PutMemo(_ string, d, v []byte, _ bool) error {
	m[string(d)] = append([]byte{}, v...)
	return nil
}
