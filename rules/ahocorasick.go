package rules

// matcher finds every occurrence of a set of literal terms in one pass
// (Aho–Corasick over bytes). An RE2 alternation of dozens of literals
// backtracks on every position and was most of a run's CPU time.
type matcher struct {
	next  []map[byte]int32 // goto function per state
	fail  []int32
	out   [][]int32 // term indices ending at a state (own and via suffix links)
	terms []string
}

func newMatcher(terms []string) *matcher {
	if len(terms) == 0 {
		return nil
	}
	m := &matcher{next: []map[byte]int32{{}}, fail: []int32{0}, out: [][]int32{nil}, terms: terms}
	for ti, t := range terms {
		s := int32(0)
		for i := 0; i < len(t); i++ {
			n, ok := m.next[s][t[i]]
			if !ok {
				n = int32(len(m.next))
				m.next = append(m.next, map[byte]int32{})
				m.fail = append(m.fail, 0)
				m.out = append(m.out, nil)
				m.next[s][t[i]] = n
			}
			s = n
		}
		m.out[s] = append(m.out[s], int32(ti))
	}
	// Breadth-first failure links; outputs inherit those of their
	// failure state so each state lists every term ending there.
	queue := []int32{}
	for _, n := range m.next[0] {
		queue = append(queue, n)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for c, n := range m.next[s] {
			queue = append(queue, n)
			f := m.fail[s]
			for {
				if x, ok := m.next[f][c]; ok && x != n {
					m.fail[n] = x
					break
				}
				if f == 0 {
					m.fail[n] = 0
					break
				}
				f = m.fail[f]
			}
			m.out[n] = append(m.out[n], m.out[m.fail[n]]...)
		}
	}
	return m
}

// find returns [start, end) of every occurrence of every term.
func (m *matcher) find(s string) [][2]int {
	if m == nil {
		return nil
	}
	var out [][2]int
	st := int32(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		for {
			if n, ok := m.next[st][c]; ok {
				st = n
				break
			}
			if st == 0 {
				break
			}
			st = m.fail[st]
		}
		for _, ti := range m.out[st] {
			out = append(out, [2]int{i + 1 - len(m.terms[ti]), i + 1})
		}
	}
	return out
}
