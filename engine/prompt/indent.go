package prompt

import (
	"bytes"
	"unsafe"

	"github.com/pgrules/pgrules/internal/jsonscan"
)

// indentObject is json.Indent(raw, "", "  ") for a JSON object, in one
// pass after jsonscan has checked it: encoding/json's Indent steps its
// scanner over every byte, 6 µs a critique, 2.6 % of a first run's CPU
// (pprof, 100k). ok is false for anything but one valid object, which
// the caller leaves to json.Indent. FuzzIndentObject holds it to
// json.Indent byte for byte.
func indentObject(raw []byte) (string, bool) {
	i := 0
	for i < len(raw) && isSpace(raw[i]) { // json.Indent drops leading space
		i++
	}
	if i == len(raw) || raw[i] != '{' || !jsonscan.Members(raw, func(_, _ []byte) {}) {
		return "", false
	}
	out := make([]byte, 0, len(raw)+len(raw)/2)
	depth := 0
	open := false // a container was just opened: its first token goes on a new line
	newline := func() {
		out = append(out, '\n')
		for range depth {
			out = append(out, ' ', ' ')
		}
	}
	for ; i < len(raw); i++ {
		c := raw[i]
		if isSpace(c) {
			continue
		}
		if open && c != '}' && c != ']' {
			open = false
			depth++
			newline()
		}
		switch c {
		case '"':
			j := closingQuote(raw, i+1)
			out = append(out, raw[i:j+1]...)
			i = j
		case '{', '[':
			open = true
			out = append(out, c)
		case ',':
			out = append(out, c)
			newline()
		case ':':
			out = append(out, c, ' ')
		case '}', ']':
			if open {
				open = false // {} and [] stay empty
			} else {
				depth--
				newline()
			}
			out = append(out, c)
			if depth == 0 && c == '}' {
				// The top-level object is closed. json.Indent keeps what
				// follows it: white space, jsonscan has checked.
				out = append(out, raw[i+1:]...)
				return unsafe.String(unsafe.SliceData(out), len(out)), true
			}
		default:
			out = append(out, c)
		}
	}
	return unsafe.String(unsafe.SliceData(out), len(out)), true
}

// closingQuote is the index of the quote that closes the string whose
// first byte is raw[j], in JSON jsonscan has checked: the first quote
// after an even run of backslashes. (A byte at a time, the critiques'
// strings were most of indentObject's time.)
func closingQuote(raw []byte, j int) int {
	for {
		n := bytes.IndexByte(raw[j:], '"')
		if n < 0 {
			return len(raw) - 1 // not after jsonscan's check; no panic either
		}
		j += n
		k := j
		for k > 0 && raw[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		j++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
