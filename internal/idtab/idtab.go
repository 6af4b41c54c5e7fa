// Package idtab numbers sample ids: each distinct id gets the next dense
// ordinal, and an id is found again by a pointer-free hash table.
//
// A run holds a table of every id it reads, a million of them in a big
// run. A Go map[string]int, a list and one string allocation an id cost
// ~107 bytes an id and gave the collector three pointers an id to mark
// every cycle; here the ids sit in large shared chunks and the slots are
// integers: ~65 bytes an id, one pointer (the id's string header).
package idtab

import "hash/maphash"

// chunkSize is the size of the chunks ids are copied into.
const chunkSize = 256 << 10

// Table maps ids to ordinals 0, 1, 2… in the order they were added. The
// zero value is not usable; call New. It is not safe for concurrent
// writes; concurrent Gets are safe once writing is done.
type Table struct {
	seed  maphash.Seed
	chunk []byte
	ids   []string
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
	return &Table{seed: maphash.MakeSeed(), slots: make([]uint64, size), ids: make([]string, 0, n)}
}

// Add returns id's ordinal, numbering it first when it is new (added).
// The table keeps its own copy of id.
func (t *Table) Add(id string) (ord int, added bool) {
	if 2*(len(t.ids)+1) > len(t.slots) {
		t.grow()
	}
	h := maphash.String(t.seed, id)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			t.ids = append(t.ids, t.store(id))
			t.slots[i] = h&^0xffffffff | uint64(len(t.ids))
			return len(t.ids) - 1, true
		}
		if s>>32 == h>>32 && t.ids[uint32(s)-1] == id {
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
		if s>>32 == h>>32 && t.ids[uint32(s)-1] == id {
			return int(uint32(s) - 1), true
		}
	}
}

// Len is the number of ids.
func (t *Table) Len() int { return len(t.ids) }

// IDs are the ids by ordinal. The slice is the table's: do not modify it.
func (t *Table) IDs() []string { return t.ids }

// store copies id into the current chunk; a chunk is never reallocated,
// so the strings cut from it stay valid.
func (t *Table) store(id string) string {
	if len(id) > chunkSize/4 {
		return string([]byte(id))
	}
	if len(t.chunk)+len(id) > cap(t.chunk) {
		t.chunk = make([]byte, 0, chunkSize)
	}
	start := len(t.chunk)
	t.chunk = append(t.chunk, id...)
	return unsafeString(t.chunk[start:len(t.chunk):len(t.chunk)])
}

func (t *Table) grow() {
	slots := make([]uint64, 2*len(t.slots))
	mask := uint64(len(slots) - 1)
	for _, s := range t.slots {
		if s == 0 {
			continue
		}
		h := maphash.String(t.seed, t.ids[uint32(s)-1])
		i := h & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = s
	}
	t.slots = slots
}
