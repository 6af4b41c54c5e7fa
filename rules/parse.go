package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pgrules/pgrules/internal/jsonstr"
	"github.com/pgrules/pgrules/internal/pyjson"
)

// Mode is the gating mode: how much may surround the answer's JSON.
type Mode string

const (
	// ModeStrict accepts exactly one JSON object and nothing around it.
	ModeStrict Mode = "strict"
	// ModeLenient also accepts the object inside a Markdown fence or
	// surrounded by prose.
	ModeLenient Mode = "lenient"
)

// fenceRE is what fences finds, said as a regular expression; fences is a
// hand-written scan of it (the backtracking matcher took 150 µs a fenced
// answer), fuzzed against it.
var fenceRE = regexp.MustCompile("(?s)```[A-Za-z0-9_-]*[ \t]*\r?\n(.*?)\r?\n?```")

// fences returns the bodies of the ``` code fences in s, as
// fenceRE.FindAllStringSubmatch(s, -1)[i][1] would.
func fences(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "```")
		if j < 0 {
			break
		}
		j += i
		k := j + 3
		for k < len(s) && (s[k] >= 'A' && s[k] <= 'Z' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= '0' && s[k] <= '9' || s[k] == '_' || s[k] == '-') {
			k++
		}
		for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
			k++
		}
		switch {
		case strings.HasPrefix(s[k:], "\r\n"):
			k += 2
		case strings.HasPrefix(s[k:], "\n"):
			k++
		default:
			i = j + 1 // not an opening fence here; one may start inside it
			continue
		}
		e := strings.Index(s[k:], "```")
		if e < 0 {
			break
		}
		e += k
		// The body is the shortest run before the closing fence: without
		// a line ending right before it.
		body := e
		switch {
		case body-2 >= k && s[body-2:body] == "\r\n":
			body -= 2
		case body-1 >= k && (s[body-1] == '\n' || s[body-1] == '\r'):
			body--
		}
		out = append(out, s[k:body])
		i = e + 3
	}
	return out
}

// answer is a parsed teacher answer: its bytes as json.dumps writes them
// (key order and number text kept), its value tree, and its string values
// with where they are.
type answer struct {
	py     []byte
	doc    map[string]any
	leaves []leaf
	nodes  []pathNode
	// nleaves counts the string values; lean: leaves and nodes were not
	// made (the hits were known), and full makes them from src if asked.
	nleaves int
	lean    bool
	src     string
	// buf is where py, leaves and nodes came from (see release).
	buf *parseBuf
	// schemaOK: the parse checked the answer against a schema and it
	// surely meets it (see parseFastChecked).
	schemaOK bool
}

// full makes the answer's leaves and nodes if a lean parse left them out:
// for hits to be found again or built, which a known answer rarely needs.
func (a *answer) full() {
	if !a.lean {
		return
	}
	if f, err := parseFast(unsafe.Slice(unsafe.StringData(a.src), len(a.src)), map[string]bool{}, false); err == nil {
		a.leaves, a.nodes = f.leaves, f.nodes
	}
	a.lean = false
}

// parseAnswer finds the answer object in raw, in the modes allowed: the
// object, the mode that succeeded and whether strict parsing did; when
// none did, why strict parsing failed.
//
// want names the top-level members whose values the answer's doc holds
// (nil: all); see parseFast.
//
// lean leaves the string values unlisted in the answer (see answer.full).
func parseAnswer(raw string, mode Mode, want map[string]bool, lean bool) (a *answer, parseMode string, strictOK bool, err error) {
	return parseAnswerChecked(raw, mode, want, lean, nil)
}

// parseAnswerChecked is parseAnswer checking the answer object against
// schema as it reads it (see parseFastChecked): a.schemaOK says it surely
// meets it. An object encoding/json had to read is never said to.
func parseAnswerChecked(raw string, mode Mode, want map[string]bool, lean bool, schema *fastSchema) (a *answer, parseMode string, strictOK bool, err error) {
	if !utf8.ValidString(raw) {
		// JSON decoding would silently replace the bytes with U+FFFD: a
		// repaired answer is not the teacher's answer.
		i := 0
		for i < len(raw) {
			r, size := utf8.DecodeRuneInString(raw[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		return nil, "", false, fmt.Errorf("the answer is not valid UTF-8 (byte 0x%02x at offset %d)", raw[i], i)
	}
	// An object found with a key twice or a lone surrogate is the answer,
	// and unclear: it is refused in every mode, never passed over for
	// another object.
	if a, err := parseObject(raw, want, lean, schema); a != nil || isUnclear(err) {
		return found(a, err, ModeStrict)
	}
	// Not one clean object: encoding/json says why, in the words users
	// have always seen (and decides, should the fast parser ever disagree).
	obj, strictErr := strictObject(raw)
	if strictErr == nil {
		a, err := slowAnswer(obj)
		return found(a, err, ModeStrict)
	}
	if mode != ModeLenient {
		return nil, "", false, strictErr
	}
	if a, err := lenientObject(raw, want, lean, schema); a != nil || err != nil {
		return found(a, err, ModeLenient)
	}
	return nil, "", false, fmt.Errorf("%w; no JSON object found in a code fence or in the surrounding text either", strictErr)
}

// lenientObject finds the answer object in a code fence, else standing in
// the prose: nil and no error when there is none. More than one, and
// different, is an answer that does not say which it is ("the draft: {…}
// the refined answer: {…}"), where taking the first could put the
// unrefined draft in the dataset. The second different object settles
// it: no need to read on (a hostile answer may hold 100,000).
func lenientObject(raw string, want map[string]bool, lean bool, schema *fastSchema) (*answer, error) {
	var objs []*answer
	where := "in code fences"
	add := func(text string, compact []byte) error {
		a, err := parseObject(text, want, lean, schema)
		if a == nil && !isUnclear(err) {
			if compact == nil {
				var serr error
				if compact, serr = strictObject(text); serr != nil {
					return nil // not an object: prose or code
				}
			}
			a, err = slowAnswer(compact)
		}
		if err != nil {
			return err
		}
		if len(objs) == 0 || !bytes.Equal(objs[0].py, a.py) {
			objs = append(objs, a)
		}
		return nil
	}
	for _, body := range fences(raw) {
		if err := add(body, nil); err != nil || len(objs) > 1 {
			return nil, ambiguous(objs, where, err)
		}
	}
	if len(objs) == 0 {
		where = "in its text"
		for o := range embeddedObjects(raw) {
			if err := add(string(o), o); err != nil || len(objs) > 1 {
				return nil, ambiguous(objs, where, err)
			}
		}
	}
	if len(objs) == 1 {
		return objs[0], nil
	}
	return nil, nil
}

// ambiguous is err, else the error of two different objects.
func ambiguous(objs []*answer, where string, err error) error {
	if err != nil {
		return err
	}
	return &AmbiguousAnswerError{Where: where, First: head(string(objs[0].py), 40), Second: head(string(objs[1].py), 40)}
}

// found is parseAnswer's result for an object found in mode m.
func found(a *answer, err error, m Mode) (*answer, string, bool, error) {
	if err != nil {
		return nil, "", false, err
	}
	return a, string(m), m == ModeStrict, nil
}

// isUnclear reports an object whose meaning JSON readers disagree on: a
// key twice in an object, a lone surrogate escape, a number beyond a
// double (or too long to read).
func isUnclear(err error) bool {
	switch err.(type) {
	case *DuplicateKeyError, *LoneSurrogateError, *NumberError:
		return true
	}
	return false
}

// parseObject is the fast path: exactly one JSON object, or nil and
// why (errFast, or what isUnclear names).
func parseObject(s string, want map[string]bool, lean bool, schema *fastSchema) (*answer, error) {
	// What strictObject trims (any Unicode space, \f included) is not
	// JSON whitespace, which is all the parser skips.
	s = strings.TrimSpace(s)
	// The parser only reads: no copy of the answer is needed.
	data := unsafe.Slice(unsafe.StringData(s), len(s))
	a, err := parseFastChecked(data, want, lean, schema)
	if lean && isUnclear(err) {
		// A lean parse keeps no paths: the rare answer that needs one
		// is read again.
		_, err = parseFast(data, want, false)
	}
	if err != nil {
		return nil, err
	}
	a.src = s
	return a, nil
}

// slowAnswer builds an answer with encoding/json from compact bytes that
// it accepted; only reached if the fast parser refused what encoding/json
// takes. It refuses a key twice in an object as the fast parser does.
func slowAnswer(compact []byte) (*answer, error) {
	strs, err := walkStrings(compact)
	if err != nil {
		return nil, err
	}
	a := &answer{py: pyjson.Restyle(nil, compact)}
	if v, err := jsonschema.UnmarshalJSON(bytes.NewReader(compact)); err == nil {
		a.doc, _ = v.(map[string]any)
	}
	for _, sv := range strs {
		a.nodes = append(a.nodes, pathNode{parent: -1, key: sv.path, index: -2})
		a.leaves = append(a.leaves, leaf{value: sv.value, node: int32(len(a.nodes) - 1)})
	}
	a.nleaves = len(a.leaves)
	return a, nil
}

// strictObject accepts one JSON object with nothing but whitespace around.
func strictObject(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, errors.New("the answer is empty")
	}
	if t[0] != '{' {
		return nil, fmt.Errorf("the answer does not start with a JSON object (starts with %s)", strconv.Quote(head(t, 20)))
	}
	dec := json.NewDecoder(strings.NewReader(t))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %s", describeSyntax(err, t))
	}
	if _, err := dec.Token(); err != io.EOF {
		rest := strings.TrimSpace(t[dec.InputOffset():])
		return nil, fmt.Errorf("text after the JSON object: %s", strconv.Quote(head(rest, 20)))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// embeddedObjects yields the complete JSON objects that stand at the top
// level of prose, compacted, as it finds them. Only braces outside any
// other brace are candidates: a truncated answer must not be "rescued" by
// one of the objects nested inside it.
func embeddedObjects(s string) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		depth, inString, escaped := 0, false, false
		for i := 0; i < len(s); i++ {
			c := s[i]
			if inString {
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
				}
				continue
			}
			switch c {
			case '"':
				if depth > 0 {
					inString = true
				}
			case '{':
				if depth == 0 {
					dec := json.NewDecoder(strings.NewReader(s[i:]))
					var raw json.RawMessage
					if err := dec.Decode(&raw); err == nil {
						var buf bytes.Buffer
						if json.Compact(&buf, raw) == nil {
							if !yield(buf.Bytes()) {
								return
							}
							i += int(dec.InputOffset()) - 1 // on past it, at the top level
							continue
						}
					}
				}
				depth++
			case '}':
				if depth > 0 {
					depth--
				}
			}
		}
	}
}

// AmbiguousAnswerError is a lenient answer with more than one different
// JSON object in it, none of which says it is the answer.
type AmbiguousAnswerError struct {
	Where         string // "in code fences", "in its text"
	First, Second string // the heads of the first two
}

func (e *AmbiguousAnswerError) Error() string {
	return fmt.Sprintf("the answer holds different JSON objects %s (the first starts %s, another %s): which one is the answer is ambiguous", e.Where, strconv.Quote(e.First), strconv.Quote(e.Second))
}

func describeSyntax(err error, s string) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + strings.Count(s[:min(int(se.Offset), len(s))], "\n")
		return fmt.Sprintf("%s (answer line %d, byte %d)", se.Error(), line, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input: the JSON is truncated"
	}
	return err.Error()
}

func head(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// stringValue is one string in the answer with its JSON path.
type stringValue struct {
	path  string
	value string
}

// walkStrings lists every string value of obj, in document order, with
// JSON paths like $.payload.groups[0].items[1].text. Keys are not values:
// the key "cost_estimate" is never matched against "cost". It stops at
// what makes an answer unclear, as the fast parser does: a key twice in
// an object (*DuplicateKeyError), a lone surrogate (*LoneSurrogateError),
// a number out of range (*NumberError).
func walkStrings(obj []byte) ([]stringValue, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	var out []stringValue
	var unclear error
	// lone checks the string token just read, whose literal ends where the
	// decoder is.
	lone := func(path string, key bool) bool {
		body := literalBefore(obj, int(dec.InputOffset()))
		if at := jsonstr.LoneSurrogate(body); at >= 0 {
			unclear = &LoneSurrogateError{Escape: string(body[at : at+6]), Path: path, Key: key}
			return true
		}
		return false
	}
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Number:
			if why := numberProblem(string(t)); why != "" {
				unclear = &NumberError{Number: string(t), Why: why, Path: path}
				return unclear
			}
		case string:
			if lone(path, false) {
				return unclear
			}
			out = append(out, stringValue{path, t})
		case json.Delim:
			switch t {
			case '{':
				seen := map[string]bool{}
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					if lone(path, true) {
						return unclear
					}
					key := k.(string)
					if seen[key] {
						unclear = &DuplicateKeyError{Key: key, Path: path}
						return unclear
					}
					seen[key] = true
					if err := walk(path + fieldPath(key)); err != nil {
						return err
					}
				}
				_, err = dec.Token()
				return err
			case '[':
				for i := 0; dec.More(); i++ {
					if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
						return err
					}
				}
				_, err = dec.Token()
				return err
			}
		}
		return nil
	}
	_ = walk("$")
	return out, unclear
}

// literalBefore returns the body of the string literal whose closing
// quote is b[end-1]: back to the first quote not escaped by an odd run of
// backslashes.
func literalBefore(b []byte, end int) []byte {
	for j := end - 2; j >= 0; j-- {
		if b[j] != '"' {
			continue
		}
		k := j
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return b[j+1 : end-1]
		}
	}
	return nil
}

func fieldPath(k string) string {
	if isIdent(k) {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

// isIdent reports a key that can follow a dot in a path, [A-Za-z_]
// [A-Za-z0-9_]*, without a regexp: paths are built for every hit.
func isIdent(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
