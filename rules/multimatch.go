package rules

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// multiMatcher finds the terms and exceptions of every word list in one
// pass over a string. For lists of ordinary size the automaton is a dense
// DFA — one table lookup per byte, no failure links followed at match
// time — over byte classes (each byte that occurs in some term is a class,
// every other byte is class 0). A huge list whose DFA would not fit
// (states × classes > denseLimit) keeps the sparse automaton.
type multiMatcher struct {
	sparse *matcher
	metas  [][]termMeta // by automaton term index
	class  [256]uint8
	nclass int
	delta  []int32 // delta[state*nclass+class]; nil: use sparse
	emits  []bool  // the state or its suffix chain ends a term
	nLists int
	// mayTab and mayDelta serve mayMatch, a byte for two loads: mayTab
	// is the class of the byte normalize makes of an ASCII byte (its
	// lower case; a space's for white space) and mayOther for the rest
	// (bytes not ASCII: see foldRune);
	// mayDelta is delta with each target multiplied by nclass (its
	// row's offset), or len(delta) where the target emits, and with the
	// spaces normalize drops skipped (see newMultiMatcher); in 16 bits
	// when that fits (the shipped lists' 449 states: 29 KB, which stays
	// in the L1 cache where 57 KB did not), else in 32.
	mayTab     [256]uint16
	mayDelta   []int32
	mayDelta16 []uint16
	// mayAll says a term is not normalised (see newMultiMatcher).
	mayAll bool
}

// mayOther is mayTab's mark of a byte that is not ASCII.
const mayOther = 0x100

// termMeta says which list a term belongs to, and whether as an
// exception.
type termMeta struct {
	list      int
	exception bool
}

const denseLimit = 4 << 20 // table entries: 16 MB

func newMultiMatcher(lists []*WordList) *multiMatcher {
	mm := &multiMatcher{nLists: len(lists)}
	index := map[string]int{}
	var texts []string
	add := func(t Term, meta termMeta) {
		if t.Text == "" {
			return
		}
		i, ok := index[t.Text]
		if !ok {
			i = len(texts)
			index[t.Text] = i
			texts = append(texts, t.Text)
			mm.metas = append(mm.metas, nil)
		}
		mm.metas[i] = append(mm.metas[i], meta)
	}
	for li, l := range lists {
		for _, t := range l.Terms {
			add(t, termMeta{list: li})
		}
		for _, t := range l.Exceptions {
			add(t, termMeta{list: li, exception: true})
		}
	}
	if len(texts) == 0 {
		return mm
	}
	mm.sparse = newMatcher(texts)
	m := mm.sparse
	n := len(m.fail)
	mm.emits = make([]bool, n)
	for s := range n {
		mm.emits[s] = m.term[s] >= 0 || m.dict[s] >= 0
	}
	var bytes []byte
	seen := [256]bool{}
	for _, b := range m.labels {
		if !seen[b] {
			seen[b] = true
			bytes = append(bytes, b)
		}
	}
	mm.nclass = len(bytes) + 1
	for i, b := range bytes {
		mm.class[b] = uint8(i + 1)
	}
	if len(bytes) > 254 || n*mm.nclass > denseLimit {
		return mm // too big for a table: the sparse automaton serves
	}
	// States are numbered so that a parent precedes its children, and a
	// state's failure target is shallower: breadth-first order fills
	// each row from rows already complete.
	mm.delta = make([]int32, n*mm.nclass)
	order := make([]int32, 0, n)
	order = append(order, 0)
	for qi := 0; qi < len(order); qi++ {
		s := order[qi]
		for e := m.first[s]; e < m.first[s+1]; e++ {
			order = append(order, m.targets[e])
		}
	}
	for _, s := range order {
		row := mm.delta[int(s)*mm.nclass : (int(s)+1)*mm.nclass]
		if s != 0 {
			copy(row, mm.delta[int(m.fail[s])*mm.nclass:(int(m.fail[s])+1)*mm.nclass])
		}
		for e := m.first[s]; e < m.first[s+1]; e++ {
			row[mm.class[m.labels[e]]] = m.targets[e]
		}
	}
	stop := len(mm.delta)
	mm.mayDelta = make([]int32, len(mm.delta))
	for i, t := range mm.delta {
		mm.mayDelta[i] = t * int32(mm.nclass)
		if mm.emits[t] {
			mm.mayDelta[i] = int32(stop)
		}
	}
	// normalize makes each run of white space one space and drops it at
	// either end. mayMatch feeds every white space character to the
	// table as a space, and the table skips those normalize drops: a
	// state whose text ends in a space stays where it is on another one,
	// and the first state, which no term's text starts with a space from,
	// stays there. No state whose text ends in a space emits, since no
	// term ends in one, so a space at the end finds nothing either.
	// (Terms are normalised: terms that were not would not be matched as
	// normalize's text, and mayMatch then answers true to everything.)
	space := int(mm.class[' '])
	for _, t := range texts {
		if t != strings.TrimSpace(t) || strings.Contains(t, "  ") || strings.ContainsAny(t, "\t\n\r\v\f") {
			mm.mayAll = true
		}
	}
	for e, lab := range m.labels {
		if lab == ' ' {
			t := int(m.targets[e])
			mm.mayDelta[t*mm.nclass+space] = int32(t * mm.nclass)
		}
	}
	if stop <= math.MaxUint16 {
		mm.mayDelta16 = make([]uint16, len(mm.mayDelta))
		for i, r := range mm.mayDelta {
			mm.mayDelta16[i] = uint16(r)
		}
		mm.mayDelta = nil
	}
	for c := range mm.mayTab {
		switch {
		case c >= 0x80:
			mm.mayTab[c] = mayOther
		case isASCIISpace(byte(c)):
			mm.mayTab[c] = uint16(space)
		case c >= 'A' && c <= 'Z':
			mm.mayTab[c] = uint16(mm.class[c+'a'-'A'])
		default:
			mm.mayTab[c] = uint16(mm.class[c])
		}
	}
	return mm
}

// scan calls fn for every occurrence of every term in s, with the term's
// automaton index.
func (mm *multiMatcher) scan(s string, fn func(term int32, start, end int)) {
	m := mm.sparse
	if m == nil {
		return
	}
	if mm.delta == nil {
		m.each(s, fn)
		return
	}
	st := int32(0)
	nc := int32(mm.nclass)
	for i := 0; i < len(s); i++ {
		st = mm.delta[st*nc+int32(mm.class[s[i]])]
		if !mm.emits[st] {
			continue
		}
		for o := st; o > 0; o = m.dict[o] {
			if t := m.term[o]; t >= 0 {
				fn(t, i+1-int(m.lens[t]), i+1)
			}
		}
	}
}

// mayMatch reports whether normalize(s) could hold an occurrence of any
// term or exception. It runs the automaton over the bytes normalize would
// produce (lower case, each run of white space one space, none leading or
// trailing) without producing them, and is exact: most strings of an
// answer hold no term, and then cost no copy. A character that is not
// ASCII is replayed too (normalize maps it alone: lower case, a quote or
// dash made ASCII) where NFKC leaves it as it is and it cannot combine
// with its neighbours (see foldRune); other text, decomposed accents
// among it, is not replayed here: true.
func (mm *multiMatcher) mayMatch(s string) bool {
	switch {
	case mm.sparse == nil:
		return false
	case mm.delta == nil || mm.mayAll:
		return true
	case mm.mayDelta16 != nil:
		return mayRun(mm, mm.mayDelta16, s)
	}
	return mayRun(mm, mm.mayDelta, s)
}

// mayRun is mayMatch over d, mayDelta in 16 or 32 bits. An ASCII byte
// costs two loads and no branch the text decides: white space is a
// class of the table (see newMultiMatcher), not a test. (With a branch
// for it and one for a space pending before the next character, the loop
// ran at 374-442 MB/s on the reference answers' strings.)
func mayRun[T uint16 | int32](mm *multiMatcher, d []T, s string) bool {
	stop := T(len(d))
	space := mm.class[' ']
	var row T // the state's row offset; state 0 first
	for i := 0; i < len(s); i++ {
		k := mm.mayTab[s[i]]
		if k == mayOther {
			r, n, ok := foldRune(s, i)
			if !ok {
				return true
			}
			i += n - 1
			if unicode.IsSpace(r) {
				if row = d[int(row)+int(space)]; row >= stop {
					return true
				}
				continue
			}
			var b [utf8.UTFMax]byte
			for _, c := range b[:utf8.EncodeRune(b[:], r)] {
				if row = d[int(row)+int(mm.class[c])]; row >= stop {
					return true
				}
			}
			continue
		}
		if row = d[int(row)+int(k)]; row >= stop {
			return true
		}
	}
	return false
}

// foldRune is the character normalize makes of the one starting at
// s[i], which is not ASCII, before white space is collapsed: ok is false
// when that depends on its neighbours. It does not when NFKC leaves the
// character as it is and it combines with nothing before it (a segment
// boundary before it). mayMatch asks that of every character not ASCII,
// and no ASCII character combines with what precedes it: a string that
// passes has a boundary before each character, so NFKC leaves it as it
// is, and normalize lowers and un-quotes each character on its own. An
// accent written as a combining mark after its letter fails (é as e +
// U+0301), as do ligatures and other characters NFKC rewrites, and
// invalid UTF-8.
func foldRune(s string, i int) (r rune, n int, ok bool) {
	r, n = utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return 0, 0, false
	}
	// QuickSpanString, not IsNormalString, which allocates: a character
	// whose normal form NFKC's quick check leaves open is not replayed.
	if !norm.NFKC.PropertiesString(s[i:]).BoundaryBefore() || norm.NFKC.QuickSpanString(s[i:i+n]) != n {
		return 0, 0, false
	}
	return unicode.ToLower(quoteRune(r)), n, true
}

func isASCIISpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// listSpans finds, per list, the whole-word occurrences of its terms in
// normalised text s that no exception of the list overlaps: what
// WordList.spansIn finds, for all lists in one pass. The result is
// indexed by list; nil means none.
func (mm *multiMatcher) listSpans(s string, buf *matchBuf) [][][2]int {
	buf.reset(mm.nLists)
	found := false
	mm.scan(s, func(t int32, start, end int) {
		for _, meta := range mm.metas[t] {
			if meta.exception {
				buf.exc[meta.list] = append(buf.exc[meta.list], [2]int{start, end})
			} else {
				buf.terms[meta.list] = append(buf.terms[meta.list], [2]int{start, end})
				found = true
			}
		}
	})
	if !found {
		return nil
	}
	out := buf.out[:mm.nLists]
	for li := range out {
		out[li] = nil
		if len(buf.terms[li]) == 0 {
			continue
		}
		hits := selectSpans(s, buf.terms[li])
		if len(hits) == 0 {
			continue
		}
		out[li] = dropExcepted(hits, selectSpans(s, buf.exc[li]))
	}
	return out
}

// matchBuf is scratch space reused across the strings of one answer.
type matchBuf struct {
	terms, exc [][][2]int
	out        [][][2]int
}

func (b *matchBuf) reset(n int) {
	if len(b.terms) < n {
		b.terms, b.exc, b.out = make([][][2]int, n), make([][][2]int, n), make([][][2]int, n)
	}
	for i := 0; i < n; i++ {
		b.terms[i], b.exc[i] = b.terms[i][:0], b.exc[i][:0]
	}
}
