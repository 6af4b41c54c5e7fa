package jsonstr

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"unicode/utf8"
)

// For literals encoding/json accepts, Unescape decodes what it decodes;
// for the rest it says no or keeps the bytes (invalid UTF-8).
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`plain`, `a\"b\\c\/d`, `\b\f\n\r\t`, `\u00e9\u4e2d`, `\ud83d\ude00`, `\ud83d`, `\ude00x`, `\ud83d\u0041`, `\u12`, `\x`, `trailing\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := Unescape(body)
		// Appending keeps what out held and writes its capacity no
		// further than len(out)+len(body).
		buf := append(make([]byte, 0, 3+len(body)+16), "pre"...)
		spare := buf[:cap(buf)]
		for i := len(buf); i < len(spare); i++ {
			spare[i] = 0xaa
		}
		out, ok2 := AppendUnescaped(buf, body)
		if ok2 != ok || ok && string(out) != "pre"+got {
			t.Fatalf("AppendUnescaped(pre, %q) = %q, %v; Unescape: %q, %v", body, out, ok2, got, ok)
		}
		for i := 3 + len(body); i < len(spare); i++ {
			if spare[i] != 0xaa {
				t.Fatalf("AppendUnescaped(pre, %q) wrote byte %d of the capacity, past len(out)+len(body)", body, i)
			}
		}
		var want string
		err := json.Unmarshal(append(append([]byte{'"'}, body...), '"'), &want)
		if !utf8.Valid(body) {
			return // encoding/json replaces invalid bytes; Unescape keeps them
		}
		if err == nil && (!ok || got != want) {
			t.Fatalf("Unescape(%q) = %q, %v; encoding/json: %q", body, got, ok, want)
		}
		if err != nil && ok {
			// Only what encoding/json refuses for other reasons than
			// escapes may pass: raw quotes and control bytes, which the
			// callers' scanners reject before.
			for _, c := range body {
				if c == '"' || c < 0x20 {
					return
				}
			}
			t.Fatalf("Unescape(%q) accepted what encoding/json refuses: %v", body, err)
		}
	})
}

// A lone surrogate escape is found where it stands, by the decoder and by
// LoneSurrogate alike; UnescapeKeeping
// writes it as invalid UTF-8 (never U+FFFD, which the text did not hold)
// and decodes everything else as Unescape does.
func FuzzLoneSurrogates(f *testing.F) {
	for _, s := range []string{`\ud83d\ude00`, `a\ud800b`, `\ude00\ud83d`, `\\ud800`, `\ud83d\u0041`, `x\uDBFF\uDFFFy\uDC00`, `\ufffd`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dec, ok := Unescape(body)
		_, lone, lok := AppendUnescapedLone(nil, body)
		kept, kok := UnescapeKeeping(body)
		if ok != lok || ok != kok {
			t.Fatalf("%q: ok %v, %v, %v", body, ok, lok, kok)
		}
		if ok && LoneSurrogate(body) != lone {
			t.Fatalf("%q: LoneSurrogate %d, the decoder found %d", body, LoneSurrogate(body), lone)
		}
		if !ok || !utf8.Valid(body) {
			return
		}
		if lone < 0 {
			if kept != dec {
				t.Fatalf("%q: kept %q, decoded %q", body, kept, dec)
			}
			return
		}
		if body[lone] != '\\' || body[lone+1] != 'u' || utf8.ValidString(kept) {
			t.Fatalf("%q: lone at %d, kept %q", body, lone, kept)
		}
	})
}

func TestLoneSurrogates(t *testing.T) {
	for body, want := range map[string]struct {
		lone int
		kept string
	}{
		`\ud83d\ude00`:       {-1, "😀"},
		`ab\ud800c`:          {2, "ab\xed\xa0\x80c"},
		`\\ud800`:            {-1, `\ud800`}, // an escaped backslash, then text
		`\ude00\ud83d\ude00`: {0, "\xed\xb8\x80😀"},
		`\ud83d\u0041`:       {0, "\xed\xa0\xbdA"},
	} {
		_, lone, _ := AppendUnescapedLone(nil, []byte(body))
		kept, _ := UnescapeKeeping([]byte(body))
		if lone != want.lone || kept != want.kept || LoneSurrogate([]byte(body)) != want.lone {
			t.Errorf("%s: lone at %d, kept %q; want %d, %q", body, lone, kept, want.lone, want.kept)
		}
	}
}

func TestUnescapeKeepsInvalidUTF8(t *testing.T) {
	if got, ok := Unescape([]byte("a\xffb\\n")); !ok || got != "a\xffb\n" {
		t.Errorf("Unescape = %q, %v", got, ok)
	}
}

func FuzzHasControl(f *testing.F) {
	f.Add([]byte("abc\x1fdefghijklmnop"))
	f.Add([]byte("plain text with \xff bytes and ~ \x7f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := false
		for _, c := range b {
			if c < 0x20 {
				want = true
			}
		}
		if HasControl(b) != want {
			t.Fatalf("HasControl(%q) = %v", b, !want)
		}
	})
}

// FuzzEnd: finding the closing quote with IndexByte ends every string
// where reading it byte by byte does, and says when there is none.
func FuzzEnd(f *testing.F) {
	for _, s := range []string{`"abc",1`, `"a\"b"`, `"a\\"b"`, `"a\\\"b\\\\"x`, `"\\`, `"unterminated`, `""`, `"\\\\\\\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || s[0] != '"' {
			return
		}
		b := []byte(s)
		want, closed := len(b), false
		for j := 1; j < len(b); j++ {
			if b[j] == '\\' {
				j++
			} else if b[j] == '"' {
				want, closed = j+1, true
				break
			}
		}
		if got, ok := End(b, 0); got != want || ok != closed {
			t.Fatalf("End(%q) = %d, %v; want %d, %v", s, got, ok, want, closed)
		}
	})
}

// BenchmarkUnescape decodes the output_text of the sample drafts: a JSON
// document inside a string, an escaped quote every few bytes, as every
// draft a run loads.
func BenchmarkUnescape(b *testing.B) {
	data, err := os.ReadFile("../../testdata/sample/drafts_v1.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var bodies [][]byte
	size := 0
	for _, line := range bytes.Split(data, []byte("\n")) {
		var rec map[string]json.RawMessage
		if json.Unmarshal(line, &rec) != nil || len(rec["output_text"]) < 2 || rec["output_text"][0] != '"' {
			continue
		}
		body := rec["output_text"][1 : len(rec["output_text"])-1]
		bodies = append(bodies, body)
		size += len(body)
	}
	if len(bodies) == 0 {
		b.Fatal("no draft text in the sample")
	}
	b.SetBytes(int64(size))
	var out []byte
	for b.Loop() {
		for _, body := range bodies {
			var ok bool
			if out, ok = AppendUnescaped(out[:0], body); !ok {
				b.Fatal("not unescaped")
			}
		}
	}
}
