package rules

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"io"
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
	// them under lists of this ListsDigest (nil: not known). A memo not
	// sealed as HitsMemo seals it, or naming a string value or list the
	// answer or rules lack, is not trusted: the hits are found again.
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
		io.WriteString(h, s)
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

// hitRef is where a hit is: the answer's string value it is in (by
// document order) and its span in that string normalised. A hit's term,
// path and snippet follow from these and the text, so a remembered hit is
// a few bytes, not the tens its strings take, and a hit's strings are
// made only if something looks at them.
type hitRef struct {
	leaf, start, end int32
}

// HitsMemo is the decision's word-list hits as Known.Hits takes them, for
// the same text (nil when the answer did not parse: there is nothing to
// search).
func (d *Decision) HitsMemo() []byte {
	if d.answer == nil {
		return nil
	}
	n := 0
	for _, hs := range d.hits {
		n += len(hs)
	}
	b := binary.AppendUvarint(make([]byte, 0, 1+5*n), uint64(n))
	for li, hs := range d.hits {
		for _, h := range hs {
			b = binary.AppendUvarint(b, uint64(li))
			b = binary.AppendUvarint(b, uint64(h.leaf))
			b = binary.AppendUvarint(b, uint64(h.start))
			b = binary.AppendUvarint(b, uint64(h.end-h.start))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// knownHits adds the hits memo names to act; false, with nothing added,
// when it is not a memo HitsMemo wrote (its CRC-32 does not match) or
// does not fit the answer: then they are found again. The spans are not
// checked against the strings normalised (that was 4 % of a re-gate's
// CPU): the checksum says this build wrote them for this text, and a hit
// is cut to its string when it is built.
func (r *Rules) knownHits(a *answer, act *activation, memo []byte) bool {
	if len(memo) < 4 {
		return false
	}
	memo, sum := memo[:len(memo)-4], memo[len(memo)-4:]
	if crc32.ChecksumIEEE(memo) != binary.BigEndian.Uint32(sum) {
		return false
	}
	n, k := binary.Uvarint(memo)
	// Every hit takes at least four bytes: a count beyond that is not
	// an allocation to make.
	if k <= 0 || n > uint64(len(memo)-k)/4 {
		return false
	}
	memo = memo[k:]
	next := func() int {
		v, k := binary.Uvarint(memo)
		if k <= 0 || v > 1<<30 {
			memo = nil
			return -1
		}
		memo = memo[k:]
		return int(v)
	}
	lists := make([][]hitRef, len(r.lists))
	for range n {
		li, leaf, start := next(), next(), next()
		end := start + next()
		if memo == nil || li >= len(r.lists) || leaf >= a.nleaves {
			return false
		}
		lists[li] = append(lists[li], hitRef{leaf: int32(leaf), start: int32(start), end: int32(end)})
	}
	if len(memo) != 0 {
		return false
	}
	copy(act.hits, lists)
	return true
}
