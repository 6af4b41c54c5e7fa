package jsonscan

import (
	"encoding/json"
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
