package textpos

import "testing"

func TestLineCol(t *testing.T) {
	text := "ab\ncd\n\nef"
	for _, c := range []struct{ off, line, col int }{
		{0, 1, 1}, {1, 1, 2}, {3, 2, 1}, {4, 2, 2}, {7, 4, 1}, {9, 4, 3}, {99, 4, 3}, {-1, 1, 1},
	} {
		if l, col := LineCol(text, c.off); l != c.line || col != c.col {
			t.Errorf("LineCol(%d) = %d:%d, want %d:%d", c.off, l, col, c.line, c.col)
		}
		if l, col := LineCol([]byte(text), c.off); l != c.line || col != c.col {
			t.Errorf("LineCol([]byte, %d) = %d:%d", c.off, l, col)
		}
	}
}
