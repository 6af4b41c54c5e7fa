package jsonstr

import (
	"encoding/json"
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
