package jsonscan

import (
	"bufio"
	"bytes"
	"encoding/binary"
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

// MembersDecoding walks what Members walks and decodes the named member's
// string as StringOf decodes it: the same verdict, the same members for
// fn but the decoded ones, and for the last member of that name with a
// string value, its value.
func FuzzMembersDecodingAgreesWithMembers(f *testing.F) {
	for _, s := range []string{`{"t": "plain"}`, `{"id": "x", "t": "{\"a\": \"\u00e9\\n\"}", "p": 1}`, `{"t": "a", "t": null}`, `{"t": null, "t": "b"}`, `{"t": 1}`, `{"t": "\ud83d\ude00 \/\b\f\n\r\t"}`, `{"t": "\ud800"}`, `{"t": "x` + "\x01" + `"}`, `{"t": "unclosed`, `{"t\u0000": "k"}`, `{"t": "12345678\"9"}`} {
		f.Add([]byte(s), "t")
	}
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		type member struct{ key, val string }
		var want []member
		wantText, wantSeen := "", false
		wantOK := Members(b, func(key, val []byte) {
			if string(key) == name && len(val) > 0 && val[0] == '"' {
				s, _, ok := StringOf(val)
				if !ok {
					t.Fatalf("StringOf(%q) refused what Members accepted", val)
				}
				wantText, wantSeen = s, true
				return
			}
			if string(key) == name {
				wantSeen = false // as a caller does: the last member counts
			}
			want = append(want, member{string(key), string(val)})
		})
		var got []member
		var dec Decoded
		gotOK := MembersDecoding(b, name, &dec, func(key, val []byte) {
			if string(key) == name {
				dec.Seen = false
			}
			got = append(got, member{string(key), string(val)})
		})
		if gotOK != wantOK {
			t.Fatalf("MembersDecoding(%q, %q) = %v, Members %v", b, name, gotOK, wantOK)
		}
		if !gotOK {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("MembersDecoding(%q, %q): fn got %q, want %q", b, name, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("MembersDecoding(%q, %q): fn got %q, want %q", b, name, got, want)
			}
		}
		if dec.Seen != wantSeen || dec.Value != wantText {
			t.Fatalf("MembersDecoding(%q, %q) decoded %q (seen %v), want %q (%v)", b, name, dec.Value, dec.Seen, wantText, wantSeen)
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
		if name != "drafts_v1" {
			continue
		}
		// As a run loads a draft: its text decoded as the line is checked.
		b.Run(name+"/decoding", func(b *testing.B) {
			b.SetBytes(int64(size))
			var text Decoded
			for b.Loop() {
				for _, l := range lines {
					if !MembersDecoding(l, "output_text", &text, func(key, val []byte) {}) || !text.Seen {
						b.Fatalf("line does not decode: %.80s", l)
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

// specials flags exactly the quotes, backslashes and control characters
// of a word, whatever their neighbours: str steps from one to the next
// within the word, so a byte flagged falsely would be read as one.
func TestSpecialsFlagsExactlyTheBytesThatMatter(t *testing.T) {
	matters := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	for _, bg := range []byte{'a', 0x00, 0x1f, 0x20, '"', '\\', '"' + 1, '\\' - 1, 0x7f, 0x80, 0x9f, 0xa0, 0xdc, 0xff} {
		for pos := range 8 {
			for v := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = bg
				}
				w[pos] = byte(v)
				got := specials(binary.LittleEndian.Uint64(w[:]))
				var want uint64
				for i, c := range w {
					if matters(c) {
						want |= 0x80 << (8 * i)
					}
				}
				if got != want {
					t.Fatalf("specials(% x) = %016x, want %016x", w, got, want)
				}
			}
		}
	}
}
