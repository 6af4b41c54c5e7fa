package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/pgrules/pgrules/internal/jsonscan"
	"github.com/pgrules/pgrules/internal/textpos"
)

// A mistake in a schema file is the author's to fix, so it is reported
// like a mistake in gates.yaml: at file:line:col of the value it is
// about, saying what is wrong there. The validator's own errors name the
// place as a JSON pointer into an internal URL, inside a tree of the
// metaschema's allOf/anyOf that failed around it.

var english = message.NewPrinter(language.English)

// schemaJSONError places a syntax error of a schema file.
func schemaJSONError(where string, data []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		line, col := textpos.LineCol(data, int(se.Offset)-1)
		return fmt.Errorf("%s:%d:%d: not valid JSON: %v", where, line, col, se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := textpos.LineCol(data, len(data))
		return fmt.Errorf("%s:%d:%d: not valid JSON: the file ends inside a value", where, line, col)
	}
	return fmt.Errorf("%s: not valid JSON: %w", where, err)
}

// schemaSource is a schema file as the compiler knows it: its URL, and
// where and what it is for the author.
type schemaSource struct {
	url, where string
	data       []byte
}

// schemaCompileError places an error of compiling the schema file src;
// others holds every schema file by URL, as the error may be about one
// that src refers to.
func schemaCompileError(src schemaSource, others map[string]schemaSource, err error) error {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
		if o, ok := others[strings.TrimSuffix(sve.URL, "#")]; ok {
			src = o
		}
		var leaves []*jsonschema.ValidationError
		var walk func(e *jsonschema.ValidationError)
		walk = func(e *jsonschema.ValidationError) {
			if len(e.Causes) == 0 {
				leaves = append(leaves, e)
			}
			for _, c := range e.Causes {
				walk(c)
			}
		}
		walk(ve)
		if len(leaves) > 0 {
			// The leaves at the first leaf's place: an anyOf gives one
			// for each way the value could have been right.
			at := leaves[0].InstanceLocation
			var what []string
			for _, l := range leaves {
				if slices.Equal(l.InstanceLocation, at) {
					what = append(what, l.ErrorKind.LocalizedString(english))
				}
			}
			return fmt.Errorf("%s: %s: not a valid JSON Schema: %s", placeOf(src.where, src.data, at), pointer(at), strings.Join(what, "; or "))
		}
	}
	// Other compile errors (a $ref to nothing) name no place that holds
	// the mistake: the file, and the internal URLs as the author's paths.
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	for _, o := range others {
		msg = strings.ReplaceAll(msg, o.url, o.where)
	}
	return fmt.Errorf("%s: %s", src.where, msg)
}

// pointer writes tokens as a JSON pointer ("/" for the whole document).
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	var b strings.Builder
	for _, t := range tokens {
		b.WriteString("/" + esc.Replace(t))
	}
	return b.String()
}

// placeOf is where:line:col of the value at tokens in data, or where
// alone when it cannot be found.
func placeOf(where string, data []byte, tokens []string) string {
	off, ok := valueOffset(data, tokens)
	if !ok {
		return where
	}
	line, col := textpos.LineCol(data, off)
	return fmt.Sprintf("%s:%d:%d", where, line, col)
}

// valueOffset is the offset in data of the first byte of the value at
// tokens (a JSON pointer's unescaped tokens).
func valueOffset(data []byte, tokens []string) (int, bool) {
	cur := data
	for _, tok := range tokens {
		cur = bytes.TrimLeft(cur, " \t\r\n")
		var next []byte
		switch {
		case len(cur) > 0 && cur[0] == '{':
			jsonscan.Members(cur, func(key, val []byte) {
				if next == nil {
					if k, _, ok := jsonscan.StringOf(append(append([]byte{'"'}, key...), '"')); ok && k == tok {
						next = val
					}
				}
			})
		case len(cur) > 0 && cur[0] == '[':
			n, err := strconv.Atoi(tok)
			if err != nil {
				return 0, false
			}
			i := 0
			jsonscan.Elements(cur, func(item []byte) bool {
				if i == n {
					next = item
					return false
				}
				i++
				return true
			})
		}
		if next == nil {
			return 0, false
		}
		cur = next
	}
	cur = bytes.TrimLeft(cur, " \t\r\n")
	// cur is data from some offset on: the capacities tell which.
	return cap(data) - cap(cur), true
}
