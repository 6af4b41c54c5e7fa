package inputs

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/pgrules/pgrules/internal/jsonstr"
)

// salvageID reads the top-level "id" of a line that does not decode, so
// that its sample is rejected with the real cause rather than made to
// look missing — which, for a critique, would count as verdict pass.
//
// The id need not come first: a writer that sorts keys puts "created_at"
// and "critique" before it. Strings and brackets are followed through
// the damage (a stray word, a missing comma, a cut-off tail), and an "id"
// key counts only at the top level; a line with two different top-level
// ids, or whose brackets no longer say which level is the top, yields
// none rather than a guess.
func salvageID(line []byte) (string, bool) {
	var found string
	depth := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return "", false
			}
		case '"':
			end, closed := jsonstr.End(line, i)
			if !closed {
				return found, found != ""
			}
			if depth == 1 && string(line[i:end]) == `"id"` {
				if v, next, ok := idValue(line, end); ok {
					if found != "" && v != found {
						return "", false
					}
					found, end = v, next
				}
			}
			i = end - 1
		}
	}
	return found, found != ""
}

// idValue reads `: "value"` at line[i:], the rest of an "id" member, and
// returns the value and the offset past it.
func idValue(line []byte, i int) (string, int, bool) {
	i = skipSpace(line, i)
	if i >= len(line) || line[i] != ':' {
		return "", 0, false
	}
	i = skipSpace(line, i+1)
	if i >= len(line) || line[i] != '"' {
		return "", 0, false
	}
	end, closed := jsonstr.End(line, i)
	if !closed || !utf8.Valid(line[i:end]) {
		return "", 0, false
	}
	var id string
	if json.Unmarshal(line[i:end], &id) != nil || strings.TrimSpace(id) == "" {
		return "", 0, false
	}
	return id, end, true
}

func skipSpace(line []byte, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
		i++
	}
	return i
}
