package pyjson

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"unicode/utf8"
)

func TestRestyle(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,"b":[1,2]}`, `{"a": 1, "b": [1, 2]}`},
		{`{"s":"x, y: z"}`, `{"s": "x, y: z"}`},
		{`{"s":"caf\u00e9 \u20ac5"}`, `{"s": "café €5"}`},
		{`{"s":"a\"b\\c\nd\u0001"}`, `{"s": "a\"b\\c\nd\u0001"}`},
		{`{"s":"<b>&amp;</b>"}`, `{"s": "<b>&amp;</b>"}`},
		{`{"s":"\u003cb\u003e"}`, `{"s": "<b>"}`},
	} {
		if got := string(Restyle(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("Restyle(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// appendStringByByte is AppendString as it was, a byte at a time: the
// reference for the word-at-a-time scan.
func appendStringByByte(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func FuzzAppendStringWordAtATime(f *testing.F) {
	for _, s := range []string{"", "plain ascii text of some length", "quote\" and \\ slash", "tab\there\nnewline\x01\x1f\x7f", "café €5 😀 ok", "bad\xffutf8 and \xe2\x82 cut", "12345678\"12345678\\1234567\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString(nil, s), appendStringByByte(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %q, want %q", s, got, want)
		}
	})
}

// special must flag exactly the words with a byte to look at.
func TestSpecial(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(w[i])
			}
			want := c < 0x20 || c == '"' || c == '\\' || c >= 0x80
			if special(x) != want {
				t.Fatalf("byte %#x at %d: special %v, want %v", c, pos, !want, want)
			}
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	// A real prompt of the sample plan: ASCII, a newline or a quote
	// every 30 bytes or so.
	line, err := os.ReadFile("../../testdata/sample/prompt_plan_v1.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var plan struct{ Prompt string }
	if err := json.Unmarshal(line[:bytes.IndexByte(line, '\n')], &plan); err != nil {
		b.Fatal(err)
	}
	s := plan.Prompt
	b.SetBytes(int64(len(s)))
	buf := make([]byte, 0, 4096)
	b.Run("word", func(b *testing.B) {
		for range b.N {
			buf = AppendString(buf[:0], s)
		}
	})
	b.Run("byte", func(b *testing.B) {
		for range b.N {
			buf = appendStringByByte(buf[:0], s)
		}
	})
}

// AppendFloat writes what encoding/json writes, exponent form included.
func TestAppendFloatIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	floats := []float64{0, math.Copysign(0, -1), 1, -2.5, 0.1, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.5e300, 5e-324, math.MaxFloat64, 123456789.125}
	for range 2000 {
		floats = append(floats, math.Float64frombits(r.Uint64()))
	}
	for _, f := range floats {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); string(got) != string(want) {
			t.Fatalf("%v: %s, encoding/json %s", f, got, want)
		}
	}
}
