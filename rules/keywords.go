package rules

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/unicode/norm"
)

// WordList is one keywords/ file: whole words or phrases, one a line.
type WordList struct {
	Name       string
	File       string
	Terms      []Term
	Exceptions []Term
	match      *matcher
	except     *matcher
}

// Term is one list entry and where it was written.
type Term struct {
	Text string // normalised
	Raw  string
	File string
	Line int
}

// Hit is one occurrence of a list term in a string value of the answer.
type Hit struct {
	List string `json:"-"`
	Term string `json:"term"`
	Path string `json:"path"`
	Text string `json:"text,omitempty"`
}

// normalize makes matching indifferent to case, Unicode composition and
// typographic quotes and dashes: “Don’t” matches "don't", and an é typed as
// e + combining accent matches a precomposed one.
func normalize(s string) string {
	if isPlainASCII(s) {
		return s // nothing to fold: the common case for answers and lists
	}
	if !asciiOnly(s) {
		s = norm.NFKC.String(s)
		s = quoteReplacer.Replace(s)
	}
	s = strings.ToLower(s)
	return strings.Join(strings.Fields(s), " ")
}

// normalizeInto is normalize for the hot path: ASCII text is lowered and
// its whitespace collapsed into buf, reused from one string to the next;
// the returned string aliases buf and is valid until the next call. Other
// text takes normalize.
func normalizeInto(buf []byte, s string) (string, []byte) {
	if isPlainASCII(s) {
		return s, buf
	}
	if !asciiOnly(s) {
		if !utf8.ValidString(s) {
			return normalize(s), buf
		}
		// normalize's lower-casing and Fields+Join in one pass, into buf,
		// its quotes replaced rune by rune, and NFKC only where it
		// changes something (most text is NFKC already: the quick check
		// allocates nothing).
		buf = buf[:0]
		space := false
		// QuickSpanString first: IsNormalString allocates.
		if norm.NFKC.QuickSpanString(s) != len(s) && !norm.NFKC.IsNormalString(s) {
			s = norm.NFKC.String(s)
		}
		for i := 0; i < len(s); {
			if c := s[i]; c < utf8.RuneSelf { // most of it
				i++
				buf = foldASCII(buf, c, &space)
				continue
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			i += n
			r = quoteRune(r)
			if unicode.IsSpace(r) {
				space = len(buf) > 0
				continue
			}
			if space {
				buf = append(buf, ' ')
				space = false
			}
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		}
		return unsafe.String(unsafe.SliceData(buf), len(buf)), buf
	}
	buf = buf[:0]
	space := false
	for i := 0; i < len(s); i++ {
		buf = foldASCII(buf, s[i], &space)
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf)), buf
}

// foldASCII appends the ASCII byte c as normalize makes it: lower case,
// and white space as one space before the next word (space says one is
// due).
func foldASCII(buf []byte, c byte, space *bool) []byte {
	if isASCIISpace(c) {
		*space = len(buf) > 0
		return buf
	}
	if *space {
		buf = append(buf, ' ')
		*space = false
	}
	if c >= 'A' && c <= 'Z' {
		c += 'a' - 'A'
	}
	return append(buf, c)
}

// isPlainASCII reports text normalize would return unchanged: ASCII, no
// upper case, single spaces only, none leading or trailing.
func isPlainASCII(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return s == ""
	}
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80, c >= 'A' && c <= 'Z', c == '\t', c == '\n', c == '\r', c == '\v', c == '\f':
			return false
		case c == ' ':
			if prevSpace {
				return false
			}
			prevSpace = true
		default:
			prevSpace = false
		}
	}
	return true
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// quotes are the typographic quotes and dashes normalize makes ASCII.
var quotes = [...]struct{ from, to rune }{
	{'\u2018', '\''}, {'\u2019', '\''}, {'\u201b', '\''}, {'\u2032', '\''},
	{'\u201c', '"'}, {'\u201d', '"'}, {'\u201f', '"'}, {'\u2033', '"'},
	{'\u2010', '-'}, {'\u2011', '-'}, {'\u2012', '-'}, {'\u2013', '-'}, {'\u2014', '-'},
}

var quoteReplacer = func() *strings.Replacer {
	var pairs []string
	for _, q := range quotes {
		pairs = append(pairs, string(q.from), string(q.to))
	}
	return strings.NewReplacer(pairs...)
}()

// quoteRune is quoteReplacer for one rune of valid text.
func quoteRune(r rune) rune {
	if r < '\u2010' || r > '\u2033' {
		return r
	}
	for _, q := range quotes {
		if q.from == r {
			return q.to
		}
	}
	return r
}

// parseList reads a word list: one entry a line, `#` starts a comment,
// blank lines are ignored. The list must be UTF-8: a list saved as UTF-16
// (what some Windows editors write) would load as terms that match
// nothing, and its gate would pass every answer without a word of
// warning.
func parseList(file string, data []byte) ([]Term, error) {
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		return nil, fmt.Errorf("%s:1:1: the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8", file)
	}
	// A UTF-8 byte order mark would stick to the first term, which would
	// then never match.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var terms []Term
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		if err := checkListLine(file, line, sc.Bytes()); err != nil {
			return nil, err
		}
		raw := sc.Text()
		if i := strings.Index(raw, "#"); i >= 0 {
			raw = raw[:i]
		}
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		terms = append(terms, Term{Text: normalize(raw), Raw: raw, File: file, Line: line})
	}
	return terms, sc.Err()
}

// checkListLine refuses a line that is not UTF-8 text: bytes that are not
// UTF-8 (a Latin-1 "café"), or control characters (the NULs of UTF-16
// saved without a byte order mark). The column counts characters.
func checkListLine(file string, line int, b []byte) error {
	for i, col := 0, 1; i < len(b); col++ {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("%s:%d:%d: byte 0x%02x is not UTF-8: save the list as UTF-8", file, line, col, b[i])
		case r != '\t' && r != '\r' && unicode.IsControl(r):
			return fmt.Errorf("%s:%d:%d: control character %U in a word list (a file saved as UTF-16 has one every other byte): save the list as UTF-8", file, line, col, r)
		}
		i += size
	}
	return nil
}

// compileTerms builds one matcher per list. Word boundaries are checked
// on each occurrence: "know" contains "now" but not as a word.
func compileTerms(terms []Term) *matcher {
	seen := map[string]bool{}
	var texts []string
	for _, t := range terms {
		if t.Text != "" && !seen[t.Text] {
			seen[t.Text] = true
			texts = append(texts, t.Text)
		}
	}
	return newMatcher(texts)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || unicode.Is(unicode.Mn, r)
}

// spans finds whole-word occurrences in normalised text s: the leftmost,
// and at one place the longest ("entry requirements" over "entry
// requirement"), never overlapping.
func spans(m *matcher, s string) [][2]int {
	return selectSpans(s, m.find(s))
}

// selectSpans picks from raw occurrences those on word boundaries: the
// leftmost, at one place the longest, never overlapping. It reorders all
// and returns them in its place.
func selectSpans(s string, all [][2]int) [][2]int {
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b [2]int) int {
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		return cmp.Compare(b[1], a[1])
	})
	out := all[:0]
	end := -1
	for _, sp := range all {
		if sp[0] < end || !boundaryBefore(s, sp[0]) || !boundaryAfter(s, sp[1]) {
			continue
		}
		out = append(out, sp)
		end = sp[1]
	}
	return out
}

func boundaryBefore(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	first, _ := utf8.DecodeRuneInString(s[i:])
	return !isWordRune(r) || !isWordRune(first)
}

func boundaryAfter(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	last, _ := utf8.DecodeLastRuneInString(s[:i])
	return !isWordRune(r) || !isWordRune(last)
}

// find returns the list's hits in one string value, minus those inside an
// exception ("always" inside "always verify").
func (w *WordList) find(path, value string) []Hit {
	return w.findNormalized(path, normalize(value))
}

// findNormalized is find for a value normalize has already seen, so a
// value is normalised once for all lists.
func (w *WordList) findNormalized(path, s string) []Hit {
	var hits []Hit
	for _, f := range w.spansIn(s) {
		hits = append(hits, Hit{List: w.Name, Term: s[f[0]:f[1]], Path: path, Text: snippet(s, f[0], f[1])})
	}
	return hits
}

// spansIn returns where the list hits normalised text s, exceptions
// removed.
func (w *WordList) spansIn(s string) [][2]int {
	found := spans(w.match, s)
	if len(found) == 0 {
		return nil
	}
	return dropExcepted(found, spans(w.except, s))
}

// dropExcepted keeps the hits no exception overlaps ("always verify" is
// advice, not overconfidence), in place.
func dropExcepted(hits, exc [][2]int) [][2]int {
	if len(exc) == 0 {
		return hits
	}
	kept := hits[:0]
	for _, f := range hits {
		excepted := false
		for _, e := range exc {
			if f[0] < e[1] && e[0] < f[1] {
				excepted = true
				break
			}
		}
		if !excepted {
			kept = append(kept, f)
		}
	}
	return kept
}

// snippet shows a hit in context, so a reader sees why it counted.
func snippet(s string, start, end int) string {
	const ctx = 30
	a, b := start, end
	for n := 0; a > 0 && n < ctx; n++ {
		_, size := utf8.DecodeLastRuneInString(s[:a])
		a -= size
	}
	for n := 0; b < len(s) && n < ctx; n++ {
		_, size := utf8.DecodeRuneInString(s[b:])
		b += size
	}
	out := s[a:b]
	if a > 0 {
		out = "…" + out
	}
	if b < len(s) {
		out += "…"
	}
	return out
}
