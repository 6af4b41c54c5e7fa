package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/pgrules/pgrules/internal/jsonstr"
	"github.com/pgrules/pgrules/internal/pyjson"
)

// The answer is decoded once, by this parser, into everything the judge
// needs: the value tree for the JSON Schemas and CEL (numbers as
// json.Number, as jsonschema.UnmarshalJSON gives them), the bytes for the
// record, already as json.dumps writes them (key order and number text
// kept; see internal/pyjson), and every string value
// with where it sits, for the word lists. encoding/json needed three
// passes for the same (decode, compact, token walk) and was most of a
// re-gate's time.
//
// It accepts exactly RFC 8259 JSON. Anything it rejects is handed to
// encoding/json by the caller for the error message, so messages stay
// what they always were.

// leaf is one string value of the answer and the path node it sits at.
type leaf struct {
	value string
	node  int32
}

// pathNode is one step of a JSON path: a key of an object or an index of
// an array, under its parent node (-1 for the root $).
type pathNode struct {
	key    string
	parent int32
	index  int32 // -1 for a key
}

type fastParser struct {
	data   []byte
	i      int
	py     []byte // the answer as json.dumps writes it
	leaves []leaf
	nodes  []pathNode
	depth  int
	// strs holds the bytes of the keys and string values with escapes
	// (the others are strings into data): they are strings into it, not
	// an allocation each. Bytes once appended are never written again.
	strs []byte
	// want names the top-level members whose values are built (nil:
	// all); the others are checked and copied, and their strings listed,
	// but make no Go values.
	want map[string]bool
	// lean: the strings are counted, not listed (no leaves, no nodes),
	// and a string that is not built is not copied out: for an answer
	// whose word-list hits are known (see answer.full).
	lean    bool
	nleaves int
	// keys holds the keys of the objects being read, innermost last: an
	// object's own start where it began (see object). keyBuf holds them
	// unless objects nest deep with many keys.
	keys   []string
	keyBuf [32]string
	// valid stays true while every value read meets the schema it was
	// checked against (see fastSchema.resolve); values are checked only
	// when parseFast was given a schema.
	valid bool
}

// maxDepth bounds nesting so a hostile answer cannot exhaust the stack.
const maxDepth = 10000

type errFast struct{}

func (errFast) Error() string { return "invalid JSON" }

// DuplicateKeyError is an answer object with a key twice in one object.
// encoding/json and Python keep the last value, other readers the first
// or both: the record's text would mean different things to different
// readers, and the value not kept was never checked by a schema or gate.
// RFC 7493 (I-JSON) forbids it; the original pipeline let Python drop
// the first value silently.
type DuplicateKeyError struct {
	Key string
	// Path is the object's JSON path: $ for the answer itself.
	Path string
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("the key %s appears twice in the object at %s: JSON readers disagree on which value counts (the first, the last, or both), so the answer is ambiguous", strconv.Quote(e.Key), e.Path)
}

// LoneSurrogateError is a string of the answer with a \u escape of half a
// UTF-16 surrogate pair and not the other half: it encodes no character.
// Decoders put U+FFFD (�) in its place, Python keeps it as a string a
// UTF-8 file cannot hold; either way the record would not hold what the
// teacher wrote, which is why invalid UTF-8 is refused too.
type LoneSurrogateError struct {
	Escape string // as written, e.g. \ud800
	// Path is where the string is; Key: the string is a key of the
	// object at Path.
	Path string
	Key  bool
}

func (e *LoneSurrogateError) Error() string {
	where := "the string at " + e.Path
	if e.Key {
		where = "a key of the object at " + e.Path
	}
	return fmt.Sprintf("%s holds the escape %s, half of a UTF-16 surrogate pair without its other half: it encodes no character (decoding would put U+FFFD in its place)", where, e.Escape)
}

// parseFast decodes one JSON object with nothing but whitespace around
// it: err is errFast for anything else, or what isUnclear names. want
// names the top-level members whose values doc holds (nil: all).
func parseFast(data []byte, want map[string]bool, lean bool) (*answer, error) {
	return parseFastChecked(data, want, lean, nil)
}

// parseFastChecked is parseFast checking the object against schema as
// it reads it: answer.schemaOK says it surely meets it (false: it does
// not, or the check cannot tell).
func parseFastChecked(data []byte, want map[string]bool, lean bool, schema *fastSchema) (*answer, error) {
	buf := parseBufs.Get().(*parseBuf)
	p := &fastParser{data: data, py: slices.Grow(buf.py[:0], len(data)+len(data)/16), want: want, lean: lean, valid: schema != nil}
	p.keys = p.keyBuf[:0]
	if !lean {
		// The reference answers have a string every 46-79 bytes and a
		// path node every 29-46: sized for the densest, the slices do not
		// grow (at a node every 48 bytes they grew for most answers, which
		// allocated more than this).
		p.leaves, p.nodes = slices.Grow(buf.leaves[:0], len(data)/44+4), slices.Grow(buf.nodes[:0], len(data)/28+4)
	}
	a, err := p.parse(schema)
	if err != nil {
		buf.keep(p.py, p.leaves, p.nodes)
		parseBufs.Put(buf)
		return nil, err
	}
	a.buf = buf
	return a, nil
}

func (p *fastParser) parse(schema *fastSchema) (*answer, error) {
	data := p.data
	p.skipSpace()
	if p.i >= len(data) || data[p.i] != '{' {
		return nil, errFast{}
	}
	v, err := p.value(-1, true, schema)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(data) {
		return nil, errFast{}
	}
	return &answer{py: p.py, doc: v.(map[string]any), leaves: p.leaves, nodes: p.nodes, nleaves: p.nleaves, lean: p.lean, schemaOK: p.valid}, nil
}

// parseBuf holds the slices a parse fills and its answer keeps: a first
// run's parses allocated 12 KB an answer in them (26 % of what the run
// allocated). An answer's go back when its Decision is released.
type parseBuf struct {
	py     []byte
	leaves []leaf
	nodes  []pathNode
}

var parseBufs = sync.Pool{New: func() any { return new(parseBuf) }}

// poisonReleased: in tests, a released answer's bytes are overwritten, so
// that a record or a hit read after Release shows in their outputs.
var poisonReleased = testing.Testing()

// release gives a's buffers back; a must not be read afterwards.
func (a *answer) release() {
	b := a.buf
	if b == nil {
		return
	}
	a.buf = nil
	if poisonReleased {
		py := a.py[:cap(a.py)]
		for i := range py {
			py[i] = '~'
		}
		for i := range a.leaves {
			a.leaves[i] = leaf{value: "released", node: -7}
		}
		for i := range a.nodes {
			a.nodes[i] = pathNode{key: "released", parent: -7}
		}
	}
	b.keep(a.py, a.leaves, a.nodes)
	a.py, a.leaves, a.nodes, a.doc = nil, nil, nil, nil
	parseBufs.Put(b)
}

// keep takes the slices a parse ended with (grown, or nil where a lean
// parse made none) as b's.
func (b *parseBuf) keep(py []byte, leaves []leaf, nodes []pathNode) {
	if py != nil {
		b.py = py[:0]
	}
	if leaves != nil {
		b.leaves = leaves[:0]
	}
	if nodes != nil {
		b.nodes = nodes[:0]
	}
}

func (p *fastParser) skipSpace() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value reads one value; build says whether it is returned (else nil).
// f is the schema it is checked against (nil: none).
func (p *fastParser) value(node int32, build bool, f *fastSchema) (any, error) {
	p.skipSpace()
	if p.i >= len(p.data) {
		return nil, errFast{}
	}
	c := p.data[p.i]
	if f != nil {
		var ok bool
		if f, ok = f.resolve(c); !ok {
			p.valid = false
		}
		if !p.valid {
			f = nil
		}
	}
	switch {
	case c == '{':
		return p.object(node, build, f)
	case c == '[':
		return p.array(node, build, f)
	case c == '"':
		s, err := p.str(build || !p.lean || f != nil)
		if err != nil {
			return nil, p.at(err, node, false)
		}
		p.nleaves++
		if !p.lean {
			p.leaves = append(p.leaves, leaf{value: s, node: node})
		}
		if f != nil && !f.scalarOK(tString, s, "") {
			p.valid = false
		}
		if !build {
			return nil, nil
		}
		return s, nil
	case c == 't':
		return p.literal("true", true, tBoolean, f)
	case c == 'f':
		return p.literal("false", false, tBoolean, f)
	case c == 'n':
		return p.literal("null", nil, tNull, f)
	case c == '-' || c >= '0' && c <= '9':
		n, err := p.number()
		if err == nil && f != nil && !f.scalarOK(tNumber, "", n) {
			p.valid = false
		}
		if err != nil || !build {
			return nil, p.at(err, node, false)
		}
		return n, nil
	}
	return nil, errFast{}
}

func (p *fastParser) literal(word string, v any, t jsonTypes, f *fastSchema) (any, error) {
	if len(p.data)-p.i < len(word) || string(p.data[p.i:p.i+len(word)]) != word {
		return nil, errFast{}
	}
	if f != nil && !f.scalarOK(t, "", "") {
		p.valid = false
	}
	p.i += len(word)
	p.py = append(p.py, word...)
	return v, nil
}

func (p *fastParser) number() (json.Number, error) {
	start := p.i
	d := p.data
	exp := false
	if d[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(d) && d[p.i] == '0':
		p.i++
	case p.i < len(d) && d[p.i] >= '1' && d[p.i] <= '9':
		for p.i < len(d) && d[p.i] >= '0' && d[p.i] <= '9' {
			p.i++
		}
	default:
		return "", errFast{}
	}
	if p.i < len(d) && d[p.i] == '.' {
		p.i++
		if p.i >= len(d) || d[p.i] < '0' || d[p.i] > '9' {
			return "", errFast{}
		}
		for p.i < len(d) && d[p.i] >= '0' && d[p.i] <= '9' {
			p.i++
		}
	}
	if p.i < len(d) && (d[p.i] == 'e' || d[p.i] == 'E') {
		exp = true
		p.i++
		if p.i < len(d) && (d[p.i] == '+' || d[p.i] == '-') {
			p.i++
		}
		if p.i >= len(d) || d[p.i] < '0' || d[p.i] > '9' {
			return "", errFast{}
		}
		for p.i < len(d) && d[p.i] >= '0' && d[p.i] <= '9' {
			p.i++
		}
	}
	// Without an exponent only a number of over 308 digits can be out of
	// range: the common number is not looked at again.
	if exp || p.i-start > 300 {
		if why := numberProblem(string(d[start:p.i])); why != "" {
			return "", &NumberError{Number: string(d[start:p.i]), Why: why}
		}
	}
	p.py = append(p.py, d[start:p.i]...)
	return json.Number(d[start:p.i]), nil
}

// Numbers longer or with a larger exponent than these are refused: no
// travel answer needs them, and the schema check computes a number
// exactly (big.Rat), which fails beyond an exponent of a million (the
// JSON Schema library then crashed the run) and slows down well before.
const (
	maxNumberDigits   = 1000
	maxNumberExponent = 1000
)

// NumberError is a number of the answer that no double holds, or too
// long to read.
type NumberError struct {
	Number string
	Why    string
	Path   string
}

func (e *NumberError) Error() string {
	n := e.Number
	if len(n) > 40 {
		n = n[:20] + "…" + n[len(n)-10:]
	}
	return fmt.Sprintf("the number at %s (%s) %s", e.Path, n, e.Why)
}

// numberProblem says what is wrong with the JSON number s, or "".
func numberProblem(s string) string {
	mant, exp := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	digits := 0
	for i := 0; i < len(mant); i++ {
		if mant[i] >= '0' && mant[i] <= '9' {
			digits++
		}
	}
	if digits > maxNumberDigits {
		return fmt.Sprintf("has %d digits, more than the %d pgrules reads", digits, maxNumberDigits)
	}
	e := strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
	if n, _ := strconv.Atoi(e); len(e) > 4 || n > maxNumberExponent {
		return fmt.Sprintf("has an exponent beyond ±%d, more than pgrules reads", maxNumberExponent)
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return "is beyond the range of a double (±1.8e308): JSON readers disagree on it (Python reads infinity, and writes back Infinity, which is not JSON)"
	}
	return ""
}

func (p *fastParser) object(node int32, build bool, f *fastSchema) (any, error) {
	if p.depth++; p.depth > maxDepth {
		return nil, errFast{}
	}
	base := len(p.keys)
	defer func() { p.depth--; p.keys = p.keys[:base] }()
	top := p.depth == 1
	var seen map[string]bool // when the object has many keys
	p.i++                    // {
	p.py = append(p.py, '{')
	var m map[string]any
	if build {
		m = map[string]any{}
	}
	// The object keywords of f: which required keys were met, and how
	// many members there are.
	if f != nil && (!f.typeAllows(tObject, "") || f.hasEnum || len(f.required) > 64 || p.depth > maxFastDepth) {
		p.valid, f = false, nil
	}
	var met uint64
	members := 0
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		p.py = append(p.py, '}')
		p.objectEnd(f, met, members)
		return m, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, errFast{}
		}
		kstart := p.i
		k, err := p.str(build || !p.lean)
		if err != nil {
			return nil, p.at(err, node, true)
		}
		// Every key is compared, built or not.
		key := p.keyText(k, kstart)
		own := p.keys[base:]
		if seen == nil && len(own) >= 16 {
			// A linear scan beats a map for the few keys an answer's
			// objects have; a map keeps a hostile answer's big ones linear.
			seen = make(map[string]bool, 2*len(own))
			for _, o := range own {
				seen[o] = true
			}
		}
		if seen != nil && seen[key] || seen == nil && slices.Contains(own, key) {
			return nil, p.at(&DuplicateKeyError{Key: key}, node, false)
		}
		if seen != nil {
			seen[key] = true
		} else {
			p.keys = append(p.keys, key)
		}
		p.skipSpace()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, errFast{}
		}
		p.i++
		p.py = append(p.py, ':', ' ')
		child := int32(len(p.nodes))
		if !p.lean {
			p.nodes = append(p.nodes, pathNode{parent: node, key: k, index: -1})
		}
		buildChild := build && (!top || p.want == nil || p.want[k])
		var cf *fastSchema
		if f != nil && p.valid {
			members++
			for i, r := range f.required {
				if r == key {
					met |= 1 << i
				}
			}
			if g, ok := f.props[key]; ok {
				cf = g
			} else if f.noneAdditional {
				p.valid = false
			} else {
				cf = f.additional
			}
		}
		v, err := p.value(child, buildChild, cf)
		if err != nil {
			return nil, err
		}
		if buildChild {
			m[k] = v
		}
		if done, err := p.next('}'); err != nil || done {
			if err == nil {
				p.objectEnd(f, met, members)
			}
			return m, err
		}
	}
}

// objectEnd checks the member count and the required keys of an object
// read against f.
func (p *fastParser) objectEnd(f *fastSchema, met uint64, members int) {
	if f == nil || !p.valid {
		return
	}
	if f.minProps >= 0 && members < f.minProps || f.maxProps >= 0 && members > f.maxProps || met != 1<<len(f.required)-1 {
		p.valid = false
	}
}

// at says where what isUnclear names is: at node, or in a key of the
// object at node (a repeated key: in the object at node). A lean parse
// keeps no nodes (see parseObject).
func (p *fastParser) at(err error, node int32, key bool) error {
	if p.lean {
		return err
	}
	switch e := err.(type) {
	case *LoneSurrogateError:
		e.Path, e.Key = pathOf(p.nodes, node), key
	case *NumberError:
		e.Path = pathOf(p.nodes, node)
	case *DuplicateKeyError:
		e.Path = pathOf(p.nodes, node)
	}
	return err
}

// keyText is the key whose literal starts at start: k when str gave it
// (asked to), else read from the data, which is never written.
func (p *fastParser) keyText(k string, start int) string {
	body := p.data[start+1 : p.i-1]
	if k != "" || len(body) == 0 {
		return k
	}
	if bytes.IndexByte(body, '\\') < 0 {
		return unsafe.String(&body[0], len(body))
	}
	u, _ := jsonstr.AppendUnescaped(nil, body) // str checked it
	return string(u)
}

// next reads what follows a member or an item: a comma, or the closing
// bracket (done).
func (p *fastParser) next(closing byte) (done bool, err error) {
	p.skipSpace()
	if p.i >= len(p.data) {
		return false, errFast{}
	}
	switch c := p.data[p.i]; c {
	case closing:
		p.i++
		p.py = append(p.py, c)
		return true, nil
	case ',':
		p.i++
		p.py = append(p.py, ',', ' ')
		return false, nil
	}
	return false, errFast{}
}

func (p *fastParser) array(node int32, build bool, f *fastSchema) (any, error) {
	if p.depth++; p.depth > maxDepth {
		return nil, errFast{}
	}
	defer func() { p.depth-- }()
	p.i++ // [
	p.py = append(p.py, '[')
	var a []any
	if build {
		a = []any{}
	}
	if f != nil && (!f.typeAllows(tArray, "") || f.hasEnum || p.depth > maxFastDepth) {
		p.valid, f = false, nil
	}
	p.skipSpace()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		p.py = append(p.py, ']')
		p.arrayEnd(f, 0)
		return a, nil
	}
	for idx := int32(0); ; idx++ {
		child := int32(len(p.nodes))
		if !p.lean {
			p.nodes = append(p.nodes, pathNode{parent: node, index: idx})
		}
		var itf *fastSchema
		if f != nil {
			itf = f.items
		}
		v, err := p.value(child, build, itf)
		if err != nil {
			return nil, err
		}
		if build {
			a = append(a, v)
		}
		if done, err := p.next(']'); err != nil || done {
			if err == nil {
				p.arrayEnd(f, int(idx)+1)
			}
			return a, err
		}
	}
}

// arrayEnd checks the item count of an array read against f.
func (p *fastParser) arrayEnd(f *fastSchema, items int) {
	if f != nil && p.valid && (f.minItems >= 0 && items < f.minItems || f.maxItems >= 0 && items > f.maxItems) {
		p.valid = false
	}
}

// str reads a string literal at p.i, writes it as Python quotes it and
// returns its value ("" when it is not needed). The closing quote is
// found with IndexByte, not byte by byte.
func (p *fastParser) str(need bool) (string, error) {
	d := p.data
	start := p.i + 1
	i := start
	for {
		j := bytes.IndexByte(d[i:], '"')
		if j < 0 {
			return "", errFast{}
		}
		end := i + j
		k := end
		for k > start && d[k-1] == '\\' {
			k--
		}
		if (end-k)%2 == 1 { // an escaped quote
			i = end + 1
			continue
		}
		body := d[start:end]
		if jsonstr.HasControl(body) {
			return "", errFast{}
		}
		p.i = end + 1
		if bytes.IndexByte(body, '\\') < 0 {
			// Python writes it as it is: no escape, no control byte, and
			// the answer was checked to be UTF-8.
			p.py = append(p.py, d[start-1:end+1]...)
			if !need || len(body) == 0 {
				return "", nil
			}
			// The value is its bytes in the data, a string's, never
			// written: no copy.
			return unsafe.String(&body[0], len(body)), nil
		}
		from := len(p.strs)
		var lone int
		var ok bool
		if p.strs, lone, ok = jsonstr.AppendUnescapedLone(p.strs, body); !ok {
			return "", errFast{}
		}
		if lone >= 0 {
			return "", &LoneSurrogateError{Escape: string(body[lone : lone+6])}
		}
		// Not empty: every escape decodes to a byte or more.
		value := unsafe.String(&p.strs[from], len(p.strs)-from)
		p.py = pyjson.AppendString(p.py, value)
		if !need {
			p.strs = p.strs[:from] // nothing points into it
			return "", nil
		}
		return value, nil
	}
}

// path renders a node as $.payload.groups[0].items[1].text.
func pathOf(nodes []pathNode, n int32) string {
	if n < 0 {
		return "$"
	}
	if nodes[n].index == -2 {
		return nodes[n].key // a whole path, from slowAnswer
	}
	var steps []int32
	for ; n >= 0; n = nodes[n].parent {
		steps = append(steps, n)
	}
	b := []byte{'$'}
	for i := len(steps) - 1; i >= 0; i-- {
		nd := nodes[steps[i]]
		if nd.index >= 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(nd.index), 10)
			b = append(b, ']')
			continue
		}
		b = append(b, fieldPath(nd.key)...)
	}
	return string(b)
}
