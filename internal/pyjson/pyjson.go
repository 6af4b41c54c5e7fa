// Package pyjson writes JSON byte for byte as Python's json.dumps does with
// its default separators and ensure_ascii=False: the layout of the
// original pipeline's files, which pgrules' outputs keep so they diff
// cleanly against them. The record writer (engine/output) and the answer
// parser (rules), which hands the writer an answer already in this
// layout, share it.
package pyjson

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/pgrules/pgrules/internal/jsonstr"
)

// AppendString quotes s as json.dumps(ensure_ascii=False) does, after
// encoding/json's repair of invalid UTF-8 (each bad byte becomes U+FFFD).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look (most of a prompt
		// is plain ASCII between its newlines and quotes), then a byte at
		// a time to the end of the word that has one.
		for i+8 <= len(s) && !special(load8(s, i)) {
			i += 8
		}
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
				i++
				continue
			}
			if c >= utf8.RuneSelf {
				r, size := utf8.DecodeRuneInString(s[i:])
				if r != utf8.RuneError || size != 1 {
					i += size
					continue
				}
				b = append(b, s[start:i]...)
				b = append(b, "\ufffd"...)
				i++
				start = i
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Restyle appends compact JSON to out with Python's default separators
// (", " and ": "), every string re-quoted as Python quotes it with
// ensure_ascii=False. Strings are re-quoted rather than copied because
// JSON from elsewhere (a teacher's answer) may carry escapes (\u00e9)
// that Python would have decoded.
func Restyle(out, compact []byte) []byte {
	for i := 0; i < len(compact); i++ {
		c := compact[i]
		switch c {
		case '"':
			end, _ := jsonstr.End(compact, i) // compact is valid JSON: always closed
			out = appendQuoted(out, compact[i:end])
			i = end - 1
		case ',':
			out = append(out, ',', ' ')
		case ':':
			out = append(out, ':', ' ')
		case ' ', '\t', '\n', '\r':
			// Input is compact; stray whitespace is dropped.
		default:
			out = append(out, c)
		}
	}
	return out
}

// appendQuoted re-quotes one string literal.
func appendQuoted(out, quoted []byte) []byte {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return append(out, quoted...)
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return append(out, quoted...)
	}
	return AppendString(out, s) // s is valid UTF-8: encoding/json repaired it
}

const hexDigits = "0123456789abcdef"

// load8 reads s[i:i+8] as a little-endian word (the compiler makes it one
// load).
func load8(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// special reports whether any byte of x is one AppendString cannot copy
// as it is: a control byte, '"', '\\' or a byte of a multi-byte rune. The
// tests are the exact ones of "Bit Twiddling Hacks": a byte below n
// borrows in x-n with its top bit clear, and a byte equal to c is a zero
// byte of x^c.
func special(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (x - 0x20*ones) &^ x
	quote := x ^ '"'*ones
	slash := x ^ '\\'*ones
	return (below|x|(quote-ones)&^quote|(slash-ones)&^slash)&highs != 0
}

// AppendFloat formats f as encoding/json does, which is how the original
// pipeline's files have their few floats (latency, cost); the response
// cache's teacher blocks use it too. f must be finite.
func AppendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
