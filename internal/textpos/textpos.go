// Package textpos turns a byte offset into the 1-based line and column
// that every file:line:col of pgrules gives (columns count bytes, as
// the input files' do).
package textpos

import "strings"

// LineCol is the line and column of offset off in text (clamped to it).
func LineCol[T ~string | ~[]byte](text T, off int) (line, col int) {
	s := string(text[:max(0, min(off, len(text)))])
	return 1 + strings.Count(s, "\n"), len(s) - strings.LastIndexByte(s, '\n')
}
