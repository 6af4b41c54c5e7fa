package rules

import "testing"

// BenchmarkMayMatch runs the shipped word lists' prefilter over every
// string of the reference answers, as judging a new answer does.
func BenchmarkMayMatch(b *testing.B) {
	r := shipped(b)
	strs, size := referenceStrings(b, func(string) bool { return true })
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
	strs, size := referenceStrings(b, func(s string) bool { return !asciiOnly(s) })
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		for _, s := range strs {
			_, buf = normalizeInto(buf, s)
		}
	}
}

// referenceStrings lists the string values of the reference answers that
// keep says to, and their bytes.
func referenceStrings(b *testing.B, keep func(string) bool) (strs []string, size int) {
	_, texts := referenceAnswers(b)
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		for _, lf := range a.leaves {
			if keep(lf.value) {
				strs = append(strs, lf.value)
				size += len(lf.value)
			}
		}
	}
	return strs, size
}

// BenchmarkFindHits searches the reference answers with the shipped word
// lists, as judging a new answer does: the prefilter over every string,
// then normalisation and the scan of the strings it passes.
func BenchmarkFindHits(b *testing.B) {
	r := shipped(b)
	_, texts := referenceAnswers(b)
	var answers []*answer
	size := 0
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		answers = append(answers, a)
		size += len(text)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, a := range answers {
			r.findHits(a, &activation{r: r, a: a, hits: make([][]hitRef, len(r.lists))})
		}
	}
}
