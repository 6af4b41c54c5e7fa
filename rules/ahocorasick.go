package rules

import "sort"

// matcher finds every occurrence of a set of literal terms in one pass
// over the bytes of a text (Aho–Corasick). An RE2 alternation of dozens of
// literals backtracks at every position; a trie of Go maps cost a map
// lookup per byte and ~3 KB per state (600 MB for a 200,000-entry list).
// Here the automaton lives in flat arrays: the edges of a state are a
// sorted slice of (label, target) searched in place, the root has a dense
// 256-entry table, and outputs are reached through dictionary suffix
// links instead of copied lists — about 20 bytes a state.
type matcher struct {
	first   []int32 // edges of state s: labels[first[s]:first[s+1]]
	labels  []byte
	targets []int32
	fail    []int32
	term    []int32 // the term ending exactly at a state, or -1
	dict    []int32 // nearest state on the fail chain with a term, or -1
	root    [256]int32
	lens    []int32 // byte length of each term
}

// newMatcher compiles terms; it returns nil for none.
func newMatcher(terms []string) *matcher {
	if len(terms) == 0 {
		return nil
	}
	// Insert in sorted order: each term shares its prefix with the one
	// before it, so the trie is built with one stack of states and no
	// lookups at all.
	order := make([]int, len(terms))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return terms[order[a]] < terms[order[b]] })

	type node struct {
		label  byte
		parent int32
	}
	nodes := []node{{}}
	termAt := []int32{-1}
	var path []int32 // path[d] = state at depth d+1 of the previous term
	prev := ""
	m := &matcher{lens: make([]int32, len(terms))}
	for _, ti := range order {
		t := terms[ti]
		m.lens[ti] = int32(len(t))
		common := 0
		for common < len(t) && common < len(prev) && t[common] == prev[common] {
			common++
		}
		path = path[:common]
		parent := int32(0)
		if common > 0 {
			parent = path[common-1]
		}
		for i := common; i < len(t); i++ {
			nodes = append(nodes, node{label: t[i], parent: parent})
			termAt = append(termAt, -1)
			parent = int32(len(nodes) - 1)
			path = append(path, parent)
		}
		if termAt[parent] < 0 { // a duplicate keeps its first index
			termAt[parent] = int32(ti)
		}
		prev = t
	}
	n := int32(len(nodes))

	// Edges grouped by parent, in label order: children were created in
	// sorted order, so a stable counting sort by parent keeps labels sorted.
	m.first = make([]int32, n+1)
	for s := int32(1); s < n; s++ {
		m.first[nodes[s].parent+1]++
	}
	for s := int32(0); s < n; s++ {
		m.first[s+1] += m.first[s]
	}
	m.labels = make([]byte, n-1)
	m.targets = make([]int32, n-1)
	fill := append([]int32(nil), m.first[:n]...)
	for s := int32(1); s < n; s++ {
		p := nodes[s].parent
		m.labels[fill[p]], m.targets[fill[p]] = nodes[s].label, s
		fill[p]++
	}
	m.term = termAt
	nodes = nil

	for c := range m.root {
		m.root[c] = 0
	}
	for e := m.first[0]; e < m.first[1]; e++ {
		m.root[m.labels[e]] = m.targets[e]
	}
	// Breadth-first failure and dictionary links.
	m.fail = make([]int32, n)
	m.dict = make([]int32, n)
	m.dict[0] = -1
	queue := make([]int32, 0, n)
	for e := m.first[0]; e < m.first[1]; e++ {
		t := m.targets[e]
		m.fail[t], m.dict[t] = 0, -1
		queue = append(queue, t)
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		for e := m.first[s]; e < m.first[s+1]; e++ {
			c, t := m.labels[e], m.targets[e]
			queue = append(queue, t)
			f := m.fail[s]
			for f != 0 && m.edge(f, c) < 0 {
				f = m.fail[f]
			}
			if g := m.step(f, c); g != t {
				m.fail[t] = g
			}
			if ft := m.fail[t]; m.term[ft] >= 0 {
				m.dict[t] = ft
			} else {
				m.dict[t] = m.dict[ft]
			}
		}
	}
	return m
}

// edge returns the target of state s on byte c, or -1.
func (m *matcher) edge(s int32, c byte) int32 {
	if s == 0 {
		if t := m.root[c]; t != 0 {
			return t
		}
		return -1
	}
	lo, hi := m.first[s], m.first[s+1]
	// Most states have one or two edges: scan short ranges.
	if hi-lo <= 8 {
		for e := lo; e < hi; e++ {
			if m.labels[e] == c {
				return m.targets[e]
			}
		}
		return -1
	}
	for lo < hi {
		mid := (lo + hi) / 2
		switch l := m.labels[mid]; {
		case l == c:
			return m.targets[mid]
		case l < c:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// step is the goto function from s on c, following failure links.
func (m *matcher) step(s int32, c byte) int32 {
	for {
		if t := m.edge(s, c); t >= 0 {
			return t
		}
		if s == 0 {
			return 0
		}
		s = m.fail[s]
	}
}

// find returns [start, end) of every occurrence of every term.
func (m *matcher) find(s string) [][2]int {
	var out [][2]int
	m.each(s, func(_ int32, start, end int) { out = append(out, [2]int{start, end}) })
	return out
}

// each calls fn for every occurrence, with the term's index.
func (m *matcher) each(s string, fn func(term int32, start, end int)) {
	if m == nil {
		return
	}
	st := int32(0)
	for i := 0; i < len(s); i++ {
		st = m.step(st, s[i])
		for o := st; o > 0; o = m.dict[o] {
			if t := m.term[o]; t >= 0 {
				fn(t, i+1-int(m.lens[t]), i+1)
			}
			if m.dict[o] < 0 {
				break
			}
		}
	}
}
