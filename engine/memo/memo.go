// Package memo names the facts a run derives that a rerun of the same
// work would derive again at a cost — the cache key of each sample's
// prompt, the schema verdict of each answer — so that they can be kept in
// the response cache and trusted later.
//
// A memo is stored under the sha256 of everything its fact is derived
// from, the running executable included: another build may derive it
// differently (a template fix, a new schema library), so its memos are not
// used. A memo is never an answer and never a decision; losing one costs
// time, not money.
package memo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// Kinds of memo, as the cache's stats count them.
const (
	KindPromptKeys = "prompt-keys"
	KindSchemaOK   = "schema-ok"
	KindHits       = "word-list-hits"
)

var build struct {
	once sync.Once
	sum  []byte
}

// Build is the sha256 of the running executable (empty when it cannot be
// read: then every memo digest still differs by kind and inputs, but not
// by build — see Digest).
func Build() []byte {
	build.once.Do(func() {
		// /proc/self/exe is the running binary even after a rebuild
		// replaced the file at its path.
		f, err := os.Open("/proc/self/exe")
		if err != nil {
			exe, err := os.Executable()
			if err != nil {
				return
			}
			if f, err = os.Open(exe); err != nil {
				return
			}
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			build.sum = h.Sum(nil)
		}
	})
	return build.sum
}

// Digest accumulates what a fact derives from. Every part is length
// prefixed, so no two different part lists digest alike.
type Digest struct{ h hash.Hash }

// New starts the digest of a memo of kind. It returns nil, and no memo
// is kept, when the executable cannot be identified.
func New(kind string) *Digest {
	b := Build()
	if b == nil {
		return nil
	}
	d := &Digest{h: sha256.New()}
	d.Add(kind)
	d.AddBytes(b)
	return d
}

// Add adds strings, each as its own part.
func (d *Digest) Add(parts ...string) *Digest {
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		d.h.Write(n[:])
		io.WriteString(d.h, p)
	}
	return d
}

// AddBytes adds one part.
func (d *Digest) AddBytes(p []byte) *Digest {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(p)))
	d.h.Write(n[:])
	d.h.Write(p)
	return d
}

// Sum is the digest.
func (d *Digest) Sum() []byte { return d.h.Sum(nil) }

// Store keeps memos: the response cache.
type Store interface {
	// Memo returns the value remembered under digest, in a slice the
	// caller may keep and modify.
	Memo(digest []byte) ([]byte, bool, error)
	PutMemo(kind string, digest, value []byte, wait bool) error
}

// Recall returns the value remembered under digest; nil when there is no
// store, no digest, no such memo, or it cannot be read (a memo not read
// costs time, nothing else).
func Recall(st Store, digest []byte) []byte {
	if st == nil || digest == nil {
		return nil
	}
	v, ok, err := st.Memo(digest)
	if err != nil {
		return nil
	}
	if ok {
		return v
	}
	h, ok, err := st.Memo(Extend(digest, "pieces"))
	if err != nil || !ok || len(h) != 8 {
		return nil
	}
	total := binary.BigEndian.Uint64(h)
	if total > 1<<40 {
		return nil
	}
	out := make([]byte, 0, total)
	for i := 0; uint64(len(out)) < total; i++ {
		p, ok, err := st.Memo(pieceDigest(digest, i))
		if err != nil || !ok || len(p) != int(min(pieceSize, total-uint64(len(out)))) {
			return nil
		}
		out = append(out, p...)
	}
	return out
}

// pieceSize bounds the values the store is given. SQLite assembles a
// value in one buffer when it is read, and its allocator keeps the last
// big buffer of each size resident: an input's index of a million lines
// (~48 MB) kept 47 MB for the whole run.
const pieceSize = 1 << 20

func pieceDigest(digest []byte, i int) []byte {
	return Extend(digest, "piece", strconv.Itoa(i))
}

// Keep remembers value under digest, committed with a later group of
// writes; a memo that cannot be kept is dropped. A value larger than
// pieceSize is kept in pieces, and a header with its length is written
// last: pieces without their header are never read.
func Keep(st Store, kind string, digest, value []byte) {
	if st == nil || digest == nil || value == nil {
		return
	}
	if len(value) <= pieceSize {
		_ = st.PutMemo(kind, digest, value, false)
		return
	}
	for i := 0; i*pieceSize < len(value); i++ {
		if st.PutMemo(kind, pieceDigest(digest, i), value[i*pieceSize:min((i+1)*pieceSize, len(value))], false) != nil {
			return
		}
	}
	_ = st.PutMemo(kind, Extend(digest, "pieces"), binary.BigEndian.AppendUint64(nil, uint64(len(value))), false)
}

// keySize is the size of a cache key: a sha256.
const keySize = sha256.Size

// PromptKeys are the cache keys of the prompts of one input set, by the
// sample's place in the set's join order. A re-gate of the same inputs
// looks its answers up by them without decoding a draft or rendering a
// prompt. It is safe for concurrent use by samples of different places.
//
// They are kept in chunks of keysPerChunk places, each its own memo: a
// million keys as one 32 MB value made SQLite assemble it in one 32 MB
// buffer, which its allocator then kept resident for the whole run.
type PromptKeys struct {
	digest []byte
	// keys holds keySize bytes per sample; all zero: not known.
	keys  []byte
	known int
	// dirty marks the chunks that gained a key since they were loaded.
	dirty []atomic.Bool
}

// keysPerChunk is how many places a memo of prompt keys holds (1 MB).
const keysPerChunk = 1 << 15

// LoadPromptKeys reads the keys remembered under digest for a set of n
// samples; none are known when there is no such memo or digest is nil.
// A chunk remembered for a set of another size is not taken.
func LoadPromptKeys(st Store, digest []byte, n int) (*PromptKeys, error) {
	chunks := (n + keysPerChunk - 1) / keysPerChunk
	p := &PromptKeys{digest: digest, keys: make([]byte, n*keySize), dirty: make([]atomic.Bool, chunks)}
	if st == nil || digest == nil {
		return p, nil
	}
	for c := range chunks {
		chunk := p.chunk(c)
		v, ok, err := st.Memo(p.chunkDigest(c, n))
		if err != nil {
			return p, err
		}
		if ok && len(v) == len(chunk) {
			copy(chunk, v)
		}
	}
	for i := 0; i < n; i++ {
		if _, ok := p.Get(i); ok {
			p.known++
		}
	}
	return p, nil
}

// chunk is the keys of chunk c.
func (p *PromptKeys) chunk(c int) []byte {
	end := min((c+1)*keysPerChunk*keySize, len(p.keys))
	return p.keys[c*keysPerChunk*keySize : end]
}

// chunkDigest names chunk c of a set of n places.
func (p *PromptKeys) chunkDigest(c, n int) []byte {
	return Extend(p.digest, "chunk", strconv.Itoa(c), "of", strconv.Itoa(n))
}

// Known counts the keys that were remembered.
func (p *PromptKeys) Known() int { return p.known }

// Get returns the key of sample i (hex, as the cache takes it).
func (p *PromptKeys) Get(i int) (string, bool) {
	k := p.keys[i*keySize : (i+1)*keySize]
	for _, b := range k {
		if b != 0 {
			return hex.EncodeToString(k), true
		}
	}
	return "", false
}

// Set records the key of sample i.
func (p *PromptKeys) Set(i int, key string) {
	k := p.keys[i*keySize : (i+1)*keySize]
	if hex.EncodedLen(len(k)) != len(key) {
		return
	}
	var b [keySize]byte
	if _, err := hex.Decode(b[:], []byte(key)); err != nil || bytes.Equal(k, b[:]) {
		return
	}
	copy(k, b[:])
	p.dirty[i/keysPerChunk].Store(true)
}

// Save stores the chunks that gained keys.
func (p *PromptKeys) Save(st Store) error {
	if st == nil || p.digest == nil {
		return nil
	}
	n := len(p.keys) / keySize
	for c := range p.dirty {
		if !p.dirty[c].Load() {
			continue
		}
		if err := st.PutMemo(KindPromptKeys, p.chunkDigest(c, n), p.chunk(c), true); err != nil {
			return err
		}
	}
	return nil
}

// Extend is the digest of base (itself a digest, from New) followed by
// parts: the per-item digest of a memo whose common parts are hashed once.
func Extend(base []byte, parts ...string) []byte {
	d := &Digest{h: sha256.New()}
	d.AddBytes(base)
	d.Add(parts...)
	return d.Sum()
}
