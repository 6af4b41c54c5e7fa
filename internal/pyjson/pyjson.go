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
	"unicode/utf8"
)

// AppendString quotes s as json.dumps(ensure_ascii=False) does, after
// encoding/json's repair of invalid UTF-8 (each bad byte becomes U+FFFD).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
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
			end := stringEnd(compact, i)
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

// stringEnd returns the index just past the closing quote of the string
// starting at b[i]: the first quote not escaped, found with IndexByte
// (strings are most of an answer's bytes).
func stringEnd(b []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		q := j + k
		n := 0
		for n < q-i-1 && b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
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
	out = append(out, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			out = append(out, '\\', '"')
		case r == '\\':
			out = append(out, '\\', '\\')
		case r == '\n':
			out = append(out, '\\', 'n')
		case r == '\r':
			out = append(out, '\\', 'r')
		case r == '\t':
			out = append(out, '\\', 't')
		case r == '\b':
			out = append(out, '\\', 'b')
		case r == '\f':
			out = append(out, '\\', 'f')
		case r < 0x20:
			out = append(out, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		default:
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return append(out, '"')
}

const hexDigits = "0123456789abcdef"
