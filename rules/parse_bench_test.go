package rules

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkParseAnswer parses the 20 reference answers as a first run
// does (every value built, every string listed) and as a re-gate whose
// schema verdict and hits are known does (lean).
func BenchmarkParseAnswer(b *testing.B) {
	f, err := os.Open("../testdata/reference/sample_accepted_v1.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var answers []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var rec struct {
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			b.Fatal(err)
		}
		answers = append(answers, string(rec.Response))
	}
	size := 0
	for _, a := range answers {
		size += len(a)
	}
	for _, bc := range []struct {
		name string
		want map[string]bool
		lean bool
	}{{"whole", nil, false}, {"lean", map[string]bool{"payload_type": true}, true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, a := range answers {
					if _, _, _, err := parseAnswer(a, ModeStrict, bc.want, bc.lean); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
