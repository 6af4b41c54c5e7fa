package rules

import "testing"

// BenchmarkParseAnswer parses the reference answers as a first run
// does (every value built, every string listed) and as a re-gate whose
// schema verdict and hits are known does (lean).
func BenchmarkParseAnswer(b *testing.B) {
	_, answers := referenceAnswers(b)
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
