package prompt

import (
	"bytes"
	"encoding/json"
	"testing"
)

// prettyJSON renders any critique as json.Indent does (or as it is, when
// json.Indent refuses it), indentObject or not.
func FuzzIndentObject(f *testing.F) {
	for _, s := range []string{
		`{"verdict":"revise","issues":[{"type":"accuracy","severity":"high","evidence":"\"x\" \\ y","fix":"z"}],"rewrite_instructions":["a","b"],"scores":{"a":1.5e3,"b":-0}}`,
		" \n{ \"a\" : [ ] , \"b\" : { } , \"c\" : [ { } , [ 1 , true , null ] ] } \n\t",
		`{}`, `{"a":"\u00e9\ud83d\ude00"}`, `{"a":1}x`, `{"a":}`, `[1,2]`, `"s"`, `{"a":"\xff"}`, `{"a":[1,{"b":2}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want := string(raw)
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err == nil {
			want = buf.String()
		}
		if len(raw) == 0 {
			return
		}
		if got := prettyJSON(raw); got != want {
			t.Fatalf("prettyJSON(%q) =\n%s\nwant (json.Indent)\n%s", raw, got, want)
		}
	})
}

// BenchmarkPrettyJSON indents a critique the size of the corpus's.
func BenchmarkPrettyJSON(b *testing.B) {
	raw := []byte(`{"verdict":"revise","issues":[{"type":"accuracy","severity":"high","evidence":"The museum is always open on Mondays.","fix":"Say opening days vary and tell the reader to check the official site."},{"type":"missing_verification","severity":"medium","evidence":"Entry costs 12 EUR.","fix":"Add a verification step for current prices."},{"type":"structure","severity":"low","evidence":"Steps 3 and 4 overlap.","fix":"Merge them."}],"rewrite_instructions":["Hedge the opening hours","Add verification steps for prices and hours","Merge the overlapping steps"],"scores":{"accuracy":3,"completeness":4,"safety":5}}`)
	for _, bc := range []struct {
		name string
		fn   func() string
	}{
		{"json.Indent", func() string { var buf bytes.Buffer; _ = json.Indent(&buf, raw, "", "  "); return buf.String() }},
		{"prettyJSON", func() string { return prettyJSON(raw) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				bc.fn()
			}
		})
	}
}

// closingQuote is only asked about strings jsonscan has checked, but an
// unclosed one ends at the end rather than out of range.
func TestClosingQuote(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		from int
		want int
	}{
		{`"ab"`, 1, 3}, {`"a\"b"`, 1, 5}, {`"a\\"`, 1, 4}, {`"a\\\"b"`, 1, 7}, {`"\""`, 1, 3}, {`"open`, 1, 4}, {`"open\"`, 1, 6},
	} {
		if got := closingQuote([]byte(tc.raw), tc.from); got != tc.want {
			t.Errorf("closingQuote(%q, %d) = %d, want %d", tc.raw, tc.from, got, tc.want)
		}
	}
}
