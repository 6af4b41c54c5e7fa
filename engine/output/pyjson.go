package output

import (
	"bytes"
	"encoding/json"

	"github.com/pgrules/pgrules/internal/pyjson"
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
	return pyjson.Restyle(make([]byte, 0, len(compact)+len(compact)/8), compact)
}

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
