// Package suggest finds what a user probably meant by a name that is not
// known: the "did you mean" of every error about a key, a setting, a
// provider or a field.
package suggest

import (
	"fmt"
	"strings"
)

// Closest returns the candidate nearest to s when it is near enough to be
// a typo (a few edits, relative to the length; case does not count), else
// "". Of equally near candidates the first in sort order wins, so the
// answer does not depend on the candidates' order.
func Closest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := distance(ls, strings.ToLower(c))
		if d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(s)/3) {
		return ""
	}
	return best
}

// distance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost one.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// Unknown says that name is not one of known, the way every "unknown
// key" error of pgrules says it: `unknown <what> "<name>"; did you mean
// <closest>? (known: <known...>)`.
func Unknown(what, name string, known []string) string {
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if s := Closest(name, known); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return msg + " (known: " + strings.Join(known, ", ") + ")"
}
