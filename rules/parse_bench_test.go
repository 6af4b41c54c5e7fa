package rules

import "testing"

// BenchmarkParseAnswer parses the reference answers as a first run does
// (checked against the schemas as they are read, only the fields the
// gates read built, every string listed), as an answer built whole
// (every value built, every string listed) and as a re-gate whose schema
// verdict and hits are known does (lean).
func BenchmarkParseAnswer(b *testing.B) {
	r := shipped(b)
	samples, answers, size := referenceAnswersSized(b)
	for _, bc := range []struct {
		name    string
		want    map[string]bool
		lean    bool
		checked bool
	}{{"first", r.responseFields, false, true}, {"whole", nil, false, false}, {"lean", map[string]bool{"payload_type": true}, true, false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for i, a := range answers {
					var schema *fastSchema
					if bc.checked {
						schema = r.schemas.streamed[samples[i].PayloadType]
					}
					if _, _, _, err := parseAnswerChecked(a, ModeStrict, bc.want, bc.lean, schema); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkEvaluate judges the reference answers as a first run does
// (nothing known), the decisions released as a run releases them or
// left to the collector.
func BenchmarkEvaluate(b *testing.B) {
	r := shipped(b)
	samples, answers, size := referenceAnswersSized(b)
	for _, release := range []bool{true, false} {
		name := map[bool]string{true: "released", false: "collected"}[release]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for i, a := range answers {
					d := r.EvaluateKnown(samples[i], a, ModeLenient, Known{})
					if release {
						d.Release()
					}
				}
			}
		})
	}
}

// referenceAnswersSized is referenceAnswers with their bytes, for
// SetBytes.
func referenceAnswersSized(b *testing.B) (samples []Sample, answers []string, size int) {
	samples, answers = referenceAnswers(b)
	for _, a := range answers {
		size += len(a)
	}
	return samples, answers, size
}
