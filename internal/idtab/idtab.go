// Package idtab numbers sample ids: each distinct id gets the next dense
// ordinal, and an id is found again by a pointer-free hash table.
//
// A run holds a table of every id it reads, a million of them in a big
// run. A Go map[string]int, a list and one string allocation an id cost
// ~107 bytes an id and gave the collector three pointers an id to mark
// every cycle; here the ids sit in large shared chunks, and the slots and
// each id's place in its chunk are integers: ~57 bytes an id and nothing
// for the collector to mark but a pointer per 256 KB chunk.
package idtab

import "hash/maphash"

// chunkSize is the size of the chunks ids are copied into.
const chunkSize = 1 << offBits // 256 KB

// Table maps ids to ordinals 0, 1, 2… in the order they were added. The
// zero value is not usable; call New. It is not safe for concurrent
// writes; concurrent Gets are safe once writing is done.
type Table struct {
	seed   maphash.Seed
	chunks [][]byte
	// cur is the index in chunks of the chunk short ids are appended to
	// (-1: none yet).
	cur int
	// refs is where each id is, by ordinal (see store).
	refs []uint64
	// slots hold ordinal+1 (0: empty) in the low 32 bits and the top of
	// the id's hash in the high ones, so a probe compares strings only on
	// a likely match; linear probing, at most half full.
	slots []uint64
}

// New returns an empty table sized for about n ids.
func New(n int) *Table {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return &Table{seed: maphash.MakeSeed(), slots: make([]uint64, size), refs: make([]uint64, 0, n), cur: -1}
}

// Add returns id's ordinal, numbering it first when it is new (added).
// The table keeps its own copy of id.
func (t *Table) Add(id string) (ord int, added bool) {
	if 2*(len(t.refs)+1) > len(t.slots) {
		t.grow()
	}
	h := maphash.String(t.seed, id)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			t.refs = append(t.refs, t.store(id))
			t.slots[i] = h&^0xffffffff | uint64(len(t.refs))
			return len(t.refs) - 1, true
		}
		if s>>32 == h>>32 && t.ID(int(uint32(s)-1)) == id {
			return int(uint32(s) - 1), false
		}
	}
}

// Get returns id's ordinal; false when id was never added.
func (t *Table) Get(id string) (int, bool) {
	h := maphash.String(t.seed, id)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == h>>32 && t.ID(int(uint32(s)-1)) == id {
			return int(uint32(s) - 1), true
		}
	}
}

// Len is the number of ids.
func (t *Table) Len() int { return len(t.refs) }

// ID is the id numbered ord. The string is the table's copy, valid as long
// as the table is.
func (t *Table) ID(ord int) string {
	r := t.refs[ord]
	chunk := t.chunks[r>>(offBits+lenBits)&chunkMask]
	if r&whole != 0 {
		return unsafeString(chunk)
	}
	off, n := int(r&offMask), int(r>>offBits&lenMask)
	return unsafeString(chunk[off : off+n])
}

// A ref packs where an id is: offBits of offset (a chunk holds
// 2^offBits bytes), lenBits of length, the chunk's index above them. An id
// longer than maxShort has a chunk of its own and its ref the whole bit.
const (
	offBits   = 18
	offMask   = 1<<offBits - 1
	lenBits   = 17
	lenMask   = 1<<lenBits - 1
	chunkMask = 1<<(63-offBits-lenBits) - 1
	whole     = 1 << 63
	maxShort  = chunkSize / 4
)

// store copies id into the current chunk (a chunk is never reallocated,
// so the strings cut from it stay valid) and returns its ref.
func (t *Table) store(id string) uint64 {
	if len(id) > maxShort {
		t.chunks = append(t.chunks, []byte(id))
		return uint64(len(t.chunks)-1)<<(offBits+lenBits) | whole
	}
	if t.cur < 0 || len(t.chunks[t.cur])+len(id) > chunkSize {
		t.chunks = append(t.chunks, make([]byte, 0, chunkSize))
		t.cur = len(t.chunks) - 1
	}
	c := t.cur
	off := len(t.chunks[c])
	t.chunks[c] = append(t.chunks[c], id...)
	return uint64(c)<<(offBits+lenBits) | uint64(len(id))<<offBits | uint64(off)
}

func (t *Table) grow() {
	slots := make([]uint64, 2*len(t.slots))
	mask := uint64(len(slots) - 1)
	for _, s := range t.slots {
		if s == 0 {
			continue
		}
		h := maphash.String(t.seed, t.ID(int(uint32(s)-1)))
		i := h & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = s
	}
	t.slots = slots
}
