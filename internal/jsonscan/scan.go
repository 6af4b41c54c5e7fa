// Package jsonscan walks JSON text without decoding it: the members of an
// object and the items of an array as raw bytes, validating as it goes
// (RFC 8259), and decodes the few values a caller asks for. The input
// records and the judged records' gate results are read with it: most of
// their bytes are values nobody reads.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"

	"github.com/pgrules/pgrules/internal/jsonstr"
)

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Members calls fn for each top-level member of the object in b, with the
// key's raw bytes (between the quotes) and the value's bytes. It returns
// false if b is not exactly one valid JSON object.
func Members(b []byte, fn func(key, val []byte)) bool {
	return MembersDecoding(b, "", nil, fn)
}

// Decoded is the string value of a member MembersDecoding decoded.
type Decoded struct {
	Value string
	// Seen: a member named so, with a string value, was read; a caller
	// whose fn meets the name later (a value not a string) clears it, so
	// that the last member counts.
	Seen bool
}

// MembersDecoding is Members decoding, as it checks it, the string value
// of a member whose key is exactly name (no escape): into dst, the last
// such member's, in one pass where Members and StringOf make two (dst
// nil: none). fn is not called for it; it is for such a member whose
// value is not a string. The value of a draft's output_text is most of
// its line.
func MembersDecoding(b []byte, name string, dst *Decoded, fn func(key, val []byte)) bool {
	s := &scanner{b: b}
	s.space()
	if s.i >= len(b) || b[s.i] != '{' {
		return false
	}
	s.i++
	s.space()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
		s.space()
		return s.i == len(b)
	}
	for {
		s.space()
		ks := s.i
		if !s.str() {
			return false
		}
		key := b[ks+1 : s.i-1]
		s.space()
		if s.i >= len(b) || b[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		vs := s.i
		if dst != nil && s.i < len(b) && b[s.i] == '"' && string(key) == name {
			v, ok := s.decodeStr()
			if !ok {
				return false
			}
			dst.Value, dst.Seen = v, true
		} else {
			if !s.value(0) {
				return false
			}
			fn(key, b[vs:s.i])
		}
		s.space()
		if s.i >= len(b) {
			return false
		}
		switch b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.space()
			return s.i == len(b)
		default:
			return false
		}
	}
}

const maxNesting = 10000

// value skips one valid JSON value.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxNesting {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		s.i++
		s.space()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return true
		}
		for {
			s.space()
			if !s.str() {
				return false
			}
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return false
			}
			s.i++
			s.space()
			if !s.value(depth + 1) {
				return false
			}
			if done, ok := s.next('}'); !ok || done {
				return ok
			}
		}
	case c == '[':
		s.i++
		s.space()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			s.space()
			if !s.value(depth + 1) {
				return false
			}
			if done, ok := s.next(']'); !ok || done {
				return ok
			}
		}
	case c == 't':
		return s.word("true")
	case c == 'f':
		return s.word("false")
	case c == 'n':
		return s.word("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

// next reads what follows a member or an item: a comma, or the closing
// bracket (done); ok is false for anything else.
func (s *scanner) next(closing byte) (done, ok bool) {
	s.space()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return false, true
	case closing:
		s.i++
		return true, true
	}
	return false, false
}

func (s *scanner) word(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

func (s *scanner) number() bool {
	b := s.b
	if b[s.i] == '-' {
		s.i++
	}
	digits := func() bool {
		st := s.i
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
		}
		return s.i > st
	}
	switch {
	case s.i < len(b) && b[s.i] == '0':
		s.i++
	case !digits():
		return false
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		if !digits() {
			return false
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if !digits() {
			return false
		}
	}
	return true
}

// str skips a string literal, checking its escapes and that it holds no
// raw control character, eight bytes at a time: a draft is one long
// escaped string.
func (s *scanner) str() bool {
	b := s.b
	if s.i >= len(b) || b[s.i] != '"' {
		return false
	}
	// One pass finds the closing quote and checks the escapes and control
	// characters on the way. Drafts hold a JSON document inside a string,
	// an escaped quote every few bytes: three passes (quotes, controls,
	// escapes) each stopped at every one of them, and a word tested only
	// for its first byte that matters was loaded and tested again after
	// each escape (BenchmarkMembers on the corpus's drafts: 1,968 MB/s,
	// against 2,276-2,286 with every such byte of the word flagged).
	i := s.i + 1
	for {
	words:
		for i+8 <= len(b) {
			// Every byte that matters in the word, exactly: an escape is
			// checked and stepped over without leaving the word, and the
			// next one looked for in what is left of it.
			m := specials(binary.LittleEndian.Uint64(b[i:]))
			for m != 0 {
				k := i + bits.TrailingZeros64(m)/8
				switch b[k] {
				case '"':
					s.i = k + 1
					return true
				case '\\':
					if k+1 >= len(b) || jsonstr.Simple[b[k+1]] == 0 {
						// \u, or not an escape: below, from the backslash.
						i = k
						break words
					}
					if k+2 >= i+8 {
						i = k + 2
						continue words
					}
					m &= ^uint64(0) << (8 * (k + 2 - i))
				default:
					return false // a control character
				}
			}
			i += 8
		}
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return true
		case c == '\\':
			if i+1 >= len(b) {
				return false
			}
			switch {
			case jsonstr.Simple[b[i+1]] != 0:
				i += 2
			case b[i+1] == 'u':
				// A lone surrogate decodes to no character: refused here,
				// and named by the caller (jsonstr.LoneSurrogate).
				_, next, lone, ok := jsonstr.UEscape(b, i+1)
				if !ok || lone {
					return false
				}
				i = next
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			i++ // fewer than eight bytes were left
		}
	}
}

// specials has the high bit set in exactly the bytes of x that are a
// quote, a backslash or a control character: each byte's test is done on
// its low seven bits, which cannot carry into the next byte.
func specials(x uint64) uint64 {
	const ones, low7, highs = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	isQ := ^((q&low7 + low7) | q)
	isBS := ^((bs&low7 + low7) | bs)
	isCtl := ^((x&low7 + ones*0x60) | x)
	return (isQ | isBS | isCtl) & highs
}

// decodeStr is str decoding the string as it checks it. Each word is
// stored into the output whole before it is looked at: the output has
// room for the rest of the input, which an escape never outgrows.
func (s *scanner) decodeStr() (string, bool) {
	b := s.b
	i := s.i + 1
	out := make([]byte, len(b)-i)
	n := 0
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			binary.LittleEndian.PutUint64(out[n:], x)
			if m := special(x); m != 0 {
				k := bits.TrailingZeros64(m) / 8
				i += k
				n += k
				break
			}
			i += 8
			n += 8
		}
		if i >= len(b) {
			return "", false
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			if n == 0 {
				return "", true
			}
			// out is never written again: the string may share its bytes.
			return unsafe.String(&out[0], n), true
		case c == '\\':
			if i+1 >= len(b) {
				return "", false
			}
			if e := jsonstr.Simple[b[i+1]]; e != 0 {
				out[n] = e
				n++
				i += 2
				continue
			}
			if b[i+1] != 'u' {
				return "", false
			}
			// A lone surrogate decodes to no character: refused, as str
			// refuses it.
			r, next, lone, ok := jsonstr.UEscape(b, i+1)
			if !ok || lone {
				return "", false
			}
			n += utf8.EncodeRune(out[n:], r)
			i = next
		case c < 0x20:
			return "", false
		default:
			// Fewer than eight bytes were left, or special flagged a byte
			// above the first that matters: this one is plain.
			out[n] = c
			n++
			i++
		}
	}
}

// special has a high bit set in the byte of x's first quote, backslash or
// control character (little-endian: the lowest set bit is exact; bytes
// above it may be flagged falsely, which only costs a look).
func special(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((q-ones)&^q | (bs-ones)&^bs | (x-ones*0x20)&^x) & highs
}

// StringOf decodes a string value; ok is false for anything else but
// null, which gives "" and isNull.
func StringOf(v []byte) (s string, isNull, ok bool) {
	if string(v) == "null" {
		return "", true, true
	}
	if len(v) < 2 || v[0] != '"' {
		return "", false, false
	}
	body := v[1 : len(v)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), false, true
	}
	out, ok := jsonstr.Unescape(body)
	return out, false, ok
}

// StringsOf decodes an array of strings (null items are ""), or null.
func StringsOf(v []byte) ([]string, bool) {
	if string(v) == "null" {
		return nil, true
	}
	if len(v) == 0 || v[0] != '[' {
		return nil, false
	}
	out := []string{}
	ok := Elements(v, func(item []byte) bool {
		s, _, ok := StringOf(item)
		out = append(out, s)
		return ok
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// Elements calls fn with each item of v, an array the scanner has already
// validated; fn returning false stops the walk and fails it.
func Elements(v []byte, fn func(item []byte) bool) bool {
	s := &scanner{b: v, i: 1}
	s.space()
	if s.i < len(v) && v[s.i] == ']' {
		return true
	}
	for {
		s.space()
		st := s.i
		if !s.value(1) || !fn(v[st:s.i]) {
			return false
		}
		if done, ok := s.next(']'); !ok || done {
			return ok
		}
	}
}
