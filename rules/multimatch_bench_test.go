package rules

import "testing"

// BenchmarkMayMatch runs the shipped word lists' prefilter over every
// string of the reference answers, as judging a new answer does.
func BenchmarkMayMatch(b *testing.B) {
	r := shipped(b)
	_, texts := referenceAnswers(b)
	var strs []string
	size := 0
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		for _, lf := range a.leaves {
			strs = append(strs, lf.value)
			size += len(lf.value)
		}
	}
	b.SetBytes(int64(size))
	n := 0
	for b.Loop() {
		n = 0
		for _, s := range strs {
			if r.matcher.mayMatch(s) {
				n++
			}
		}
	}
	b.ReportMetric(float64(n)/float64(len(strs)), "may/string")
}

// BenchmarkNormalizeNonASCII normalises the reference answers' strings
// that are not ASCII, as judging does with those the prefilter passes on.
func BenchmarkNormalizeNonASCII(b *testing.B) {
	_, texts := referenceAnswers(b)
	var strs []string
	size := 0
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		for _, lf := range a.leaves {
			if !asciiOnly(lf.value) {
				strs = append(strs, lf.value)
				size += len(lf.value)
			}
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		for _, s := range strs {
			_, buf = normalizeInto(buf, s)
		}
	}
}
