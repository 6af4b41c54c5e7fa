package pyjson

import "testing"

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

// FuzzStringEnd: finding the closing quote with IndexByte ends every
// string where reading it byte by byte does.
func FuzzStringEnd(f *testing.F) {
	for _, s := range []string{`"abc",1`, `"a\"b"`, `"a\\"b"`, `"a\\\"b\\\\"x`, `"\\`, `"unterminated`, `""`, `"\\\\\\\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || s[0] != '"' {
			return
		}
		b := []byte(s)
		want := len(b)
		for j := 1; j < len(b); j++ {
			if b[j] == '\\' {
				j++
			} else if b[j] == '"' {
				want = j + 1
				break
			}
		}
		if got := stringEnd(b, 0); got != want {
			t.Fatalf("stringEnd(%q) = %d, want %d", s, got, want)
		}
	})
}
