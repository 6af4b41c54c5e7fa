package engine

import (
	"cmp"
	"hash/maphash"
	"slices"

	"github.com/pgrules/pgrules/engine/stats"
)

// maxDuplicatesListed bounds the pairs the stats name; all are counted.
const maxDuplicatesListed = 10

// dupFinder finds the accepted records whose response repeats, byte for
// byte as written, an earlier accepted record's: the same prompt asked
// twice (the second answer comes from the cache), or a teacher that
// answers different prompts alike. Either way the dataset would train on
// one example twice. It keeps 12 bytes an accepted record — a 64-bit hash
// and the id's number — and sorts them once at the end, so memory grows
// with ids, never with bytes.
type dupFinder struct {
	hashes []uint64
	ords   []int32
}

// responseSeed is fixed for the process: hashes are compared within a run.
var responseSeed = maphash.MakeSeed()

func responseHash(response []byte) uint64 { return maphash.Bytes(responseSeed, response) }

// add records an accepted record, in input order.
func (f *dupFinder) add(hash uint64, ord int32) {
	f.hashes = append(f.hashes, hash)
	f.ords = append(f.ords, ord)
}

// find reports the repeats (nil: none), naming ids through idOf.
func (f *dupFinder) find(idOf func(int) string) *stats.Duplicates {
	byHash := make([]int32, len(f.hashes))
	for i := range byHash {
		byHash[i] = int32(i)
	}
	// By hash, then input order: the first of each run of equal hashes is
	// the original, the rest repeat it.
	slices.SortFunc(byHash, func(a, b int32) int {
		return cmp.Or(cmp.Compare(f.hashes[a], f.hashes[b]), cmp.Compare(a, b))
	})
	type repeat struct{ at, first int32 }
	var repeats []repeat
	var first int32
	for i, at := range byHash {
		if i == 0 || f.hashes[at] != f.hashes[byHash[i-1]] {
			first = at
			continue
		}
		repeats = append(repeats, repeat{at: at, first: first})
	}
	n := len(repeats)
	if n == 0 {
		return nil
	}
	slices.SortFunc(repeats, func(a, b repeat) int { return cmp.Compare(a.at, b.at) })
	d := &stats.Duplicates{Records: n}
	for _, r := range repeats[:min(len(repeats), maxDuplicatesListed)] {
		d.First = append(d.First, stats.Duplicate{ID: idOf(int(f.ords[r.at])), SameAs: idOf(int(f.ords[r.first]))})
	}
	return d
}
