package jsonscan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgrules/pgrules/internal/jsonstr"
)

// Members accepts exactly the JSON objects encoding/json accepts but those
// with a lone surrogate escape (which encoding/json decodes as U+FFFD),
// and each value it hands out is one whole JSON value.
func FuzzMembersAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a": 1, "b": [true, null, {"c": "d\"e"}]} `, `{"a": "\u00e9\n"}`, `{"a" 1}`, `{"a": 01}`, `{"a": "x` + "\x01" + `"}`, `[1]`, `{"a": 1,}`, `{"a": -0.5e+3}`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\uDBFF\uDFFF"}`, `{"a":"\udc00\ud800"}`, `{"a":"\\ud800"}`, `{"\ud800":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		isObject := werr == nil && want != nil
		n := 0
		ok := Members(b, func(key, val []byte) {
			n++
			if !json.Valid(val) {
				t.Fatalf("Members(%q): value %q of %q is not one JSON value", b, val, key)
			}
		})
		if isObject && jsonstr.LoneSurrogate(b) >= 0 {
			isObject = false
		}
		if ok != isObject {
			t.Fatalf("Members(%q) = %v, encoding/json: %v", b, ok, werr)
		}
		if ok && n < len(want) {
			t.Fatalf("Members(%q) saw %d members, encoding/json %d", b, n, len(want))
		}
	})
}

// BenchmarkMembers scans the lines of the sample inputs: drafts hold a
// JSON document inside a string, an escape every few bytes, which is
// where a first run's input scanning spends its time. BENCH_INPUTS names
// another directory of the three files, such as a corpus of
// scripts/gencorpus (its first 2,000 lines are read).
func BenchmarkMembers(b *testing.B) {
	dir := os.Getenv("BENCH_INPUTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "testdata", "sample")
	}
	for _, name := range []string{"prompt_plan_v1", "drafts_v1", "critiques_v1"} {
		data, err := readHead(filepath.Join(dir, name+".jsonl"), 2000)
		if err != nil {
			b.Fatal(err)
		}
		// The sample holds broken lines on purpose: the valid ones.
		var lines [][]byte
		size := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if json.Valid(l) && l[0] == '{' {
				lines, size = append(lines, l), size+len(l)
			}
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				for _, l := range lines {
					if !Members(l, func(key, val []byte) {}) {
						b.Fatalf("line does not scan: %.80s", l)
					}
				}
			}
		})
	}
}

// readHead reads the first n lines of a file.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for i := 0; i < n && sc.Scan(); i++ {
		out = append(append(out, sc.Bytes()...), '\n')
	}
	return out, sc.Err()
}

// str reads eight bytes at a time: every kind of byte that matters, at
// every offset in and around a word, with neighbours that differ from it
// by one bit or one value (which a word-at-a-time test could confuse),
// must be judged as encoding/json judges it.
func TestStringsAtEveryAlignment(t *testing.T) {
	for _, mid := range []string{``, `\"`, `\\`, `\/`, `\n`, `\u00e9`, `\ud83d\ude00`, `\ud800`, `\x`, `\`, "\x01", "\x1f", " ", "!", "#", "[", "]", "\x7f", "\xc3\xa9", "\xff", `"`} {
		for pre := range 18 {
			for post := range 10 {
				body := strings.Repeat("a", pre) + mid + strings.Repeat("]!#", post)[:post]
				line := []byte(`{"k": "` + body + `", "n": 1}`)
				want := json.Valid(line) && jsonstr.LoneSurrogate(line) < 0
				if got := Members(line, func(_, _ []byte) {}); got != want {
					t.Errorf("Members(%q) = %v, want %v", line, got, want)
				}
			}
		}
	}
}
