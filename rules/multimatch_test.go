package rules

import (
	"fmt"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// replayable reports whether mayMatch replays every character of text
// (see foldRune), and so must be exact on it.
func replayable(text string) bool {
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, n, ok := foldRune(text, i)
		if !ok {
			return false
		}
		i += n
	}
	return true
}

// foldRune's proof that NFKC leaves a string as it is holds only while no
// ASCII character combines with the one before it.
func TestASCIINeverCombinesWithWhatPrecedesIt(t *testing.T) {
	for c := range utf8.RuneSelf {
		if !norm.NFKC.PropertiesString(string(rune(c))).BoundaryBefore() {
			t.Errorf("%q: NFKC may combine it with the character before it", rune(c))
		}
	}
}

func TestMayMatchReplaysWhatNFKCKeeps(t *testing.T) {
	lists := []*WordList{
		{Name: "a", Terms: []Term{{Text: "entry fee"}, {Text: "e-ticket"}, {Text: "don't"}, {Text: "ki"}, {Text: "cafe"}, {Text: "fix"}}},
		{Name: "b", Terms: []Term{{Text: "naïve"}}},
	}
	for _, l := range lists {
		l.match, l.except = compileTerms(l.Terms), compileTerms(l.Exceptions)
	}
	mm := newMultiMatcher(lists)
	for _, tc := range []struct {
		text string
		// replayed: foldRune takes every character, so mayMatch must be
		// exact; otherwise it must say true.
		replayed bool
	}{
		{"Café — prices in € and £", true},    // no term, yet not ASCII: once always true
		{"Buy an E—Ticket at the door", true}, // an em dash is a hyphen to normalize
		{"Don’t forget", true},                // and a curly apostrophe an apostrophe
		{"The entry\u0085fee", true},          // NEL: white space NFKC keeps
		{"Sk\u0130", true},                    // İ lowers to i: "ski"
		{"A NAÏVE plan", true},                // a term not ASCII, its letters composed
		{"Ünïcödé everywhere, still no term", true},
		{"A cafe\u0301 menu", false},  // é as e + combining accent: NFKC makes café, no "cafe"
		{"A nai\u0308ve plan", false}, // NFKC makes naïve: replayed, the mark would hide the term
		{"A naı\u0308ve plan", false}, // dotless ı + diaeresis, which NFKC keeps apart
		{"The entry\u00a0fee", false}, // a no-break space NFKC makes a space
		{"\u212aI", false},            // the Kelvin sign NFKC makes K
		{"ﬁx it", false},              // a ligature NFKC spells out: "fix"
		{"bad \xff byte", false},
	} {
		norm := normalize(tc.text)
		any := false
		mm.scan(norm, func(int32, int, int) { any = true })
		may := mm.mayMatch(tc.text)
		if got := replayable(tc.text); got != tc.replayed {
			t.Errorf("%q: replayable %v, want %v", tc.text, got, tc.replayed)
		}
		if tc.replayed && may != any {
			t.Errorf("%q: mayMatch %v, but normalize makes %q, which the scan finds terms in: %v", tc.text, may, norm, any)
		}
		if !tc.replayed && !may {
			t.Errorf("%q: mayMatch false on text it does not replay", tc.text)
		}
	}
}

// The shipped lists' prefilter fits 16-bit rows, and says what the 32-bit
// one says of every string of the reference answers; a list too big for
// 16 bits gets 32.
func TestMayMatchTablesAgree(t *testing.T) {
	r := shipped(t)
	if r.matcher.mayDelta16 == nil {
		t.Fatal("the shipped lists' prefilter is not in 16 bits")
	}
	wide := widened(r.matcher)
	_, texts := referenceAnswers(t)
	n := 0
	for _, text := range texts {
		a, _, _, err := parseAnswer(text, ModeStrict, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, lf := range a.leaves {
			if got, want := r.matcher.mayMatch(lf.value), wide.mayMatch(lf.value); got != want {
				t.Fatalf("mayMatch(%q): %v in 16 bits, %v in 32", lf.value, got, want)
			} else if got {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no string passed the prefilter: the comparison proves nothing")
	}
	var terms []Term
	for i := range 3000 {
		terms = append(terms, Term{Text: fmt.Sprintf("term%dx%d", i, i*7)})
	}
	big := &WordList{Name: "big", Terms: terms}
	big.match, big.except = compileTerms(big.Terms), compileTerms(nil)
	mm := newMultiMatcher([]*WordList{big})
	if mm.delta == nil {
		t.Fatal("3,000 terms made no table: the 32-bit path is not tried")
	}
	if mm.mayDelta16 != nil || mm.mayDelta == nil {
		t.Fatalf("%d rows of %d classes in 16 bits", len(mm.delta)/mm.nclass, mm.nclass)
	}
	if !mm.mayMatch("a term17x119 b") || mm.mayMatch("term17x118") {
		t.Error("the 32-bit prefilter misses a term or passes a string without one")
	}
}

// White space is a class of mayMatch's table, not a test in its loop: the
// table must skip exactly the spaces normalize drops.
func TestMayMatchSkipsTheSpacesNormalizeDrops(t *testing.T) {
	lists := []*WordList{{Name: "a", Terms: []Term{{Text: "for sure"}, {Text: "no need to verify"}, {Text: "ab"}}}}
	for _, l := range lists {
		l.match, l.except = compileTerms(l.Terms), compileTerms(l.Exceptions)
	}
	mm := newMultiMatcher(lists)
	for text, want := range map[string]bool{
		"for sure":                   true,
		"  For \t\n\v\f\r  SURE  ":   true,
		"for\u0085sure":              true, // NEL is white space normalize keeps as one
		"No need   to\nverify it":    true,
		"forsure":                    false,
		"for s ure":                  false,
		"a b":                        false,
		"a  b, then ab":              true,
		" ":                          false,
		"for ":                       false,
		"for  \t":                    false,
		"no need to  verif":          false,
		"for for sure":               true,
		"fo r sure, for\t\t\tsure":   true,
		"for sur for sure":           true,
		"for  sur  for   sur    ab ": true,
	} {
		norm := normalize(text)
		any := false
		mm.scan(norm, func(int32, int, int) { any = true })
		if any != want {
			t.Fatalf("%q: the scan of %q finds terms: %v, want %v", text, norm, any, want)
		}
		if got := mm.mayMatch(text); got != want {
			t.Errorf("mayMatch(%q) = %v, want %v", text, got, want)
		}
	}
}

// A term that is not normalised has spaces mayMatch's table cannot skip
// alike: then it says yes to everything, and the scan decides.
func TestMayMatchSaysYesWithTermsNotNormalised(t *testing.T) {
	for _, term := range []string{" for sure", "for sure ", "for  sure", "for\tsure"} {
		lists := []*WordList{{Name: "a", Terms: []Term{{Text: term}}}}
		mm := newMultiMatcher(lists)
		if !mm.mayMatch("nothing here") {
			t.Errorf("term %q: mayMatch said no", term)
		}
	}
	mm := newMultiMatcher([]*WordList{{Name: "a", Terms: []Term{{Text: "for sure"}}}})
	if mm.mayMatch("nothing here") {
		t.Error("a normalised term: mayMatch said yes to text without it")
	}
}
