package rules

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"unsafe"
)

// Known is what the caller already knows about an answer's text, from an
// earlier judgement of the very same text, in the same parse mode and by
// the same build: the work that found it is not done again. The zero
// Known knows nothing.
type Known struct {
	// SchemaOK: the text, for this payload type, passed schemas of this
	// SchemaDigest.
	SchemaOK bool
	// Hits are the word-list hits in the text as Decision.HitsMemo gave
	// them under lists of this ListsDigest (nil: not known). Hits that do
	// not fit the text are found again, not trusted.
	Hits []byte
}

// ListsDigest identifies the word lists by what decides their hits: each
// list's name, its normalised terms and its exceptions, in order. Hits
// remembered under another digest do not hold. (Matching code is not in
// it: callers that keep hits across builds add the build.)
func (r *Rules) ListsDigest() []byte { return r.listsDigest }

func listsDigest(lists []*WordList) []byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	part := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
	}
	for _, l := range lists {
		part(l.Name)
		for _, t := range l.Terms {
			part("t")
			part(t.Text)
		}
		for _, t := range l.Exceptions {
			part("x")
			part(t.Text)
		}
		part("")
	}
	return h.Sum(nil)
}

// hitRef is where a hit is: its list, the answer's string value it is in
// (by document order) and its span in that string normalised. A hit's
// term, path and snippet follow from these and the text, so a remembered
// hit is a few bytes, not the tens its strings take.
type hitRef struct {
	list, leaf, start, end int
}

// HitsMemo is the decision's word-list hits as Known.Hits takes them, for
// the same text (nil when the answer did not parse: there is nothing to
// search).
func (d *Decision) HitsMemo() []byte {
	if d.answer == nil {
		return nil
	}
	b := binary.AppendUvarint(make([]byte, 0, 1+4*len(d.hitRefs)), uint64(len(d.hitRefs)))
	for _, h := range d.hitRefs {
		b = binary.AppendUvarint(b, uint64(h.list))
		b = binary.AppendUvarint(b, uint64(h.leaf))
		b = binary.AppendUvarint(b, uint64(h.start))
		b = binary.AppendUvarint(b, uint64(h.end-h.start))
	}
	return b
}

// knownHits adds the hits memo names to act; false, with nothing added,
// when it does not fit the answer (then they are found again).
func (r *Rules) knownHits(a *answer, act *activation, memo []byte) bool {
	n, k := binary.Uvarint(memo)
	// Every hit takes at least four bytes: a count beyond that is not
	// an allocation to make.
	if k <= 0 || n > uint64(len(memo)-k)/4 {
		return false
	}
	memo = memo[k:]
	refs := make([]hitRef, n)
	next := func() int {
		v, k := binary.Uvarint(memo)
		if k <= 0 || v > 1<<31 {
			memo = nil
			return -1
		}
		memo = memo[k:]
		return int(v)
	}
	var norms []string
	var scratch []byte
	for i := range refs {
		h := hitRef{list: next(), leaf: next(), start: next()}
		h.end = h.start + next()
		if memo == nil || h.list >= len(r.lists) || h.leaf >= len(a.leaves) {
			return false
		}
		if norms == nil {
			norms = make([]string, len(a.leaves))
		}
		if norms[h.leaf] == "" {
			// normalizeInto may alias scratch: a hit keeps its own copy.
			var norm string
			norm, scratch = normalizeInto(scratch, a.leaves[h.leaf].value)
			norms[h.leaf] = strings.Clone(norm)
		}
		if h.end > len(norms[h.leaf]) {
			return false
		}
		refs[i] = h
	}
	if len(memo) != 0 {
		return false
	}
	for _, h := range refs {
		act.addHit(a, h, norms[h.leaf])
	}
	return true
}
