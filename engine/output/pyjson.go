package output

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// marshalLine encodes v the way the original pipeline's json.dumps did
// (", " and ": " separators, non-ASCII kept as UTF-8), so a pgrules dataset
// diffs cleanly against one the Python pipeline wrote.
func marshalLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return pythonStyle(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// pythonStyle rewrites compact JSON with Python's default separators and
// re-quotes every string as Python does with ensure_ascii=False. Strings
// are re-quoted rather than copied because embedded teacher JSON may carry
// escapes (\u00e9) that Python would have decoded.
func pythonStyle(compact []byte) []byte {
	return appendPythonStyle(make([]byte, 0, len(compact)+len(compact)/8), compact)
}

// appendPythonStyle is pythonStyle appending to out.
func appendPythonStyle(out, compact []byte) []byte {
	for i := 0; i < len(compact); i++ {
		c := compact[i]
		switch c {
		case '"':
			end := stringEnd(compact, i)
			out = appendPyString(out, compact[i:end])
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

func appendPyString(out, quoted []byte) []byte {
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

func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
