// Package jsonstr decodes the body of a JSON string literal. It is the one
// decoder of the parsers that read JSON without encoding/json: teacher
// answers (rules), input lines (engine/inputs), and a teacher response whose
// bytes must reach pgrules as they are (providers/openai).
package jsonstr

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Unescape decodes b, the bytes between a string literal's quotes. Escapes
// are decoded as encoding/json decodes them (a lone surrogate becomes
// U+FFFD); every other byte is copied as it is, invalid UTF-8 included —
// callers that must reject it check before. ok is false for a malformed
// escape. Runs without escapes are copied whole.
func Unescape(b []byte) (s string, ok bool) {
	out, ok := AppendUnescaped(make([]byte, 0, len(b)), b)
	if !ok {
		return "", false
	}
	// out is never written again: the string may share its bytes.
	return unsafe.String(unsafe.SliceData(out), len(out)), true
}

// AppendUnescaped is Unescape appending to out. Unlike append, it may
// write out's capacity past what it returns, up to len(out)+len(b): no
// one may hold those bytes.
func AppendUnescaped(out, b []byte) ([]byte, bool) {
	out, _, ok := appendUnescaped(out, b, false)
	return out, ok
}

// AppendUnescapedLone is AppendUnescaped (capacity included) that also
// gives the offset in b of the first lone surrogate escape (see UEscape),
// or -1.
func AppendUnescapedLone(out, b []byte) (_ []byte, lone int, ok bool) {
	return appendUnescaped(out, b, false)
}

// UnescapeKeeping is Unescape but for a lone surrogate, which it writes as
// the three bytes that would encode it were it a character (WTF-8):
// invalid UTF-8, so a caller that refuses invalid UTF-8 refuses it too,
// where U+FFFD would have slipped through as a character the text never
// held.
func UnescapeKeeping(b []byte) (string, bool) {
	out, _, ok := appendUnescaped(make([]byte, 0, len(b)), b, true)
	if !ok {
		return "", false
	}
	return unsafe.String(unsafe.SliceData(out), len(out)), true
}

func appendUnescaped(out, b []byte, keepLone bool) (_ []byte, lone int, ok bool) {
	lone = -1
	// An escape never decodes to more bytes than it takes, so out needs
	// room for b alone: n-len(out) never passes i, so each word, stored
	// whole before it is looked at, lands within that room, and the loop
	// never checks for it. A draft holds a JSON document inside a
	// string, an escaped quote every few bytes: a word at a time,
	// decoding it went 1.08-1.18 to 1.67-1.83 GB/s (BenchmarkUnescape),
	// where a search for each backslash and an append of the run before
	// it stopped every few bytes.
	n := len(out)
	out = slices.Grow(out, len(b))
	out = out[:cap(out)]
	i := 0
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			binary.LittleEndian.PutUint64(out[n:], x)
			// The lowest marked byte is the first backslash (a borrow
			// can mark bytes above it, never below).
			y := x ^ 0x5c5c5c5c5c5c5c5c
			if m := (y - 0x0101010101010101) &^ y & 0x8080808080808080; m != 0 {
				k := bits.TrailingZeros64(m) >> 3
				i += k
				n += k
				break
			}
			i += 8
			n += 8
		}
		for i < len(b) && b[i] != '\\' {
			out[n] = b[i]
			n++
			i++
		}
		if i >= len(b) {
			return out[:n], lone, true
		}
		i++ // past the backslash
		if i >= len(b) {
			return out[:n], lone, false
		}
		if c := Simple[b[i]]; c != 0 {
			out[n] = c
			n++
			i++
			continue
		}
		if b[i] != 'u' {
			return out[:n], lone, false
		}
		r, next, isLone, ok := UEscape(b, i)
		if !ok {
			return out[:n], lone, false
		}
		switch {
		case !isLone:
			n += utf8.EncodeRune(out[n:], r)
		case keepLone:
			// utf8.EncodeRune refuses surrogates: their bytes by hand.
			out[n], out[n+1], out[n+2] = 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f
			n += 3
		default:
			n += utf8.EncodeRune(out[n:], utf8.RuneError)
		}
		if isLone && lone < 0 {
			lone = i - 1
		}
		i = next
	}
}

// Simple maps the letter of each escape but \u to the byte it stands
// for (0: not one): \" \\ \/ \b \f \n \r \t.
var Simple = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// UEscape decodes the \u escape whose u is b[i] and, after the high half
// of a surrogate pair, the escape of its low half: the rune, the index
// just past what it read, and lone when the escape is half a pair without
// its other half (r is then that half: no character; decoders put U+FFFD
// in its place). ok is false for a malformed escape. It is the one place
// that pairs surrogates, for every JSON reader of pgrules.
func UEscape(b []byte, i int) (r rune, next int, lone, ok bool) {
	if r, ok = hex4(b, i+1); !ok {
		return 0, i, false, false
	}
	next = i + 5
	if !utf16.IsSurrogate(r) {
		return r, next, false, true
	}
	if next+6 <= len(b) && b[next] == '\\' && b[next+1] == 'u' {
		if r2, ok := hex4(b, next+2); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return dec, next + 6, false, true
			}
		}
	}
	return r, next, true, true
}

// LoneSurrogate returns the offset in b of the first lone surrogate
// escape (see UEscape), or -1. b is a string literal's body or a whole
// JSON text: a backslash escapes the byte after it in both.
func LoneSurrogate(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 || i+j+1 >= len(b) {
			return -1
		}
		i += j + 1
		if b[i] != 'u' {
			i++
			continue
		}
		_, next, lone, ok := UEscape(b, i)
		switch {
		case lone:
			return i - 1
		case ok:
			i = next
		default:
			i++ // malformed: the caller's parser says so
		}
	}
}

// hex4 reads the four hex digits at b[i:] (without strconv, whose error
// would make a copy of them escape to the heap).
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// HasControl reports a byte below 0x20 (which a string literal may not
// hold raw), eight bytes at a time: a byte b is below 0x20 exactly when
// b-0x20 borrows, with its top bit clear.
func HasControl(b []byte) bool {
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x-lo)&^x&hi != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return true
		}
	}
	return false
}

// End returns the index just past the closing quote of the string literal
// starting at b[i] (a quote): the first quote not escaped, found with
// IndexByte, since strings are most of a record's bytes. Nothing inside
// is checked, so it serves text known valid and text known broken alike.
// ok is false, with len(b), when the string is not closed.
func End(b []byte, i int) (end int, ok bool) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b), false
		}
		q := j + k
		n := 0
		for n < q-i-1 && b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
}
