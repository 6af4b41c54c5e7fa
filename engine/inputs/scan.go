package inputs

import (
	"bytes"
	"strconv"
)

// A JSONL record is read by walking its top-level members and decoding
// only the values a run uses (internal/jsonscan): a draft's seven
// kilobytes are mostly fields nobody reads. The walk validates the whole
// line as RFC 8259 JSON, so a broken line is still found at start-up.
// Whenever the fast path is not sure (a field of an unexpected type, an
// odd escape), the record goes to encoding/json instead, which decides and
// words the error as it always has.

// isType reports whether a value has the JSON type a Go field of that kind
// accepts (null is accepted by every kind).
func isType(v []byte, kind byte) bool {
	if len(v) == 0 {
		return false
	}
	if string(v) == "null" {
		return true
	}
	switch kind {
	case 's':
		return v[0] == '"'
	case 'o':
		return v[0] == '{'
	case 'a':
		return v[0] == '['
	case 'i': // a whole number that fits an int64
		if bytes.ContainsAny(v, ".eE") {
			return false
		}
		_, err := strconv.ParseInt(string(v), 10, 64)
		return err == nil
	}
	return false
}
