package rules

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/pgrules/pgrules/internal/pyjson"
)

// FuzzParseAnswer: whatever the teacher sends, parsing never panics, what
// it returns is one valid JSON object, and strict success implies lenient
// success. Run longer with `go test -fuzz FuzzParseAnswer ./rules`.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"a": 1}`, "```json\n{\"a\": [1, {\"b\": \"}\"}]}\n```", `prose {"a": "x"} more`, `{"a": `, `{{{`, `"}{"`, ``, `[1]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		obj, mode, strictOK, err := parseAnswer(raw, ModeLenient, nil, false)
		if err != nil {
			if strictOK || obj != nil {
				t.Fatalf("failed parse returned an object or strict ok")
			}
			return
		}
		var v map[string]any
		if json.Unmarshal(obj.py, &v) != nil {
			t.Fatalf("parsed %q is not a JSON object", obj.py)
		}
		if _, _, sok, serr := parseAnswer(raw, ModeStrict, nil, false); serr == nil && (!sok || mode != "strict") {
			t.Fatalf("strict success but lenient reported mode %q", mode)
		}
	})
}

// FuzzKeywordSpans: hits lie inside the text, never overlap, sit on word
// boundaries, and are terms of the list.
func FuzzKeywordSpans(f *testing.F) {
	terms := []Term{{Text: "now"}, {Text: "fee"}, {Text: "fees"}, {Text: "entry requirement"}, {Text: "entry requirements"}, {Text: "100%"}, {Text: "don't need to verify"}}
	m := compileTerms(terms)
	for _, s := range []string{"I know the fees now", "entry requirements; fee", "100%100%", "nownow now"} {
		f.Add(s)
	}
	known := map[string]bool{}
	for _, t := range terms {
		known[t.Text] = true
	}
	f.Fuzz(func(t *testing.T, text string) {
		s := normalize(text)
		if !utf8.ValidString(text) {
			return
		}
		end := 0
		for _, sp := range spans(m, s) {
			if sp[0] < end || sp[1] > len(s) || sp[0] >= sp[1] {
				t.Fatalf("bad span %v in %q", sp, s)
			}
			if !known[s[sp[0]:sp[1]]] || !boundaryBefore(s, sp[0]) || !boundaryAfter(s, sp[1]) {
				t.Fatalf("span %q in %q is not a whole-word term", s[sp[0]:sp[1]], s)
			}
			end = sp[1]
		}
	})
}

// FuzzMatcherAgainstNaive: the automaton finds exactly the occurrences a
// naive search of every term at every position finds.
func FuzzMatcherAgainstNaive(f *testing.F) {
	f.Add("he|she|his|hers", "ushers and his hershe")
	f.Add("a|aa|aaa|b", "aaaabaaa")
	f.Add("abc|bcd|cde|abcde", "xabcdex")
	f.Fuzz(func(t *testing.T, list, text string) {
		var terms []string
		seen := map[string]bool{}
		for _, s := range strings.Split(list, "|") {
			if s != "" && !seen[s] {
				seen[s] = true
				terms = append(terms, s)
			}
		}
		if len(terms) == 0 {
			return
		}
		got := map[[2]int]bool{}
		for _, sp := range newMatcher(terms).find(text) {
			got[sp] = true
		}
		want := map[[2]int]bool{}
		for _, term := range terms {
			for i := 0; i+len(term) <= len(text); i++ {
				if text[i:i+len(term)] == term {
					want[[2]int{i, i + len(term)}] = true
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("terms %q in %q: got %d occurrences, want %d", terms, text, len(got), len(want))
		}
		for sp := range want {
			if !got[sp] {
				t.Fatalf("terms %q in %q: missed %v", terms, text, sp)
			}
		}
	})
}

// FuzzNormalizeFastPath: skipping Unicode folding for plain ASCII, and
// folding other text in one pass into a buffer, change nothing.
func FuzzNormalizeFastPath(f *testing.F) {
	for _, s := range []string{"a b", "A  b", " x", "don\u2019t", "tab\there", "plain text", "ÉTÉ", "Visa\u00a0fees \u2014 \u0130stanbul\u2003now", "\uff26\uff25\uff25S  \u1680x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		slow := strings.Join(strings.Fields(strings.ToLower(quoteReplacer.Replace(norm.NFKC.String(s)))), " ")
		if got := normalize(s); got != slow {
			t.Fatalf("normalize(%q) = %q, want %q", s, got, slow)
		}
		if got, _ := normalizeInto(nil, s); got != slow {
			t.Fatalf("normalizeInto(%q) = %q, want %q", s, got, slow)
		}
	})
}

// FuzzFastParserAgainstEncodingJSON: the one-pass parser accepts exactly
// the objects encoding/json accepts, with the same compact bytes, the same
// value tree and the same string values at the same paths; told to build
// only some top-level members, it gives the same but for the others'
// values.
func FuzzFastParserAgainstEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"a": 1}`, `{"a": [1, {"b": "}"}], "c": "\u00e9\ud83d\ude00\n"}`, ` {"x": -0.5e+3, "y": true, "z": null} `, `{"a": "\ud800"}`, `{"k": {"k": "dup", "k": "last"}}`, `{"a": 1, "\u0061": 2}`, `{"a": "\ud800"}`, `{"a\udc00": 1}`, `{"a": "\\ud800"}`, `{"a": [1, 1e400]}`, `{"b": {"c": -2E-999999999}}`, `{"n": 1e308}`, `{"a": {"b": 1, "b": 2}, "a": 3}`, `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":3}`, `{"weird key.x": ["q"]}`, `{"a":}`, `{"a": 01}`, `{}`, `{"a": {"b": [1, "x"]}, "b": [], "c": {}, "d": "s", "e": 2}`, `{"b": 1, "a": {"a": "nested a"}, "b": {"x": null}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		fast, ferr := parseObject(s, nil, false, nil)
		compact, err := strictObject(s)
		var slow *answer
		var serr error
		if err == nil {
			// encoding/json takes a key twice; both paths refuse it,
			// naming the same key and object.
			slow, serr = slowAnswer(compact)
			if isUnclear(ferr) || isUnclear(serr) {
				if !reflect.DeepEqual(ferr, serr) {
					t.Fatalf("%q: fast parser %v, encoding/json walk %v", s, ferr, serr)
				}
				lean, lerr := parseObject(s, map[string]bool{}, true, nil)
				if lean != nil || !reflect.DeepEqual(lerr, ferr) {
					t.Fatalf("%q: a lean parse said %v, a whole one %v", s, lerr, ferr)
				}
				return
			}
		}
		if (fast != nil) != (err == nil) {
			t.Fatalf("%q: fast parser ok=%v, encoding/json err=%v", s, fast != nil, err)
		}
		if fast == nil {
			return
		}
		if want := pyjson.Restyle(nil, compact); string(fast.py) != string(want) {
			t.Fatalf("%q: written %q, want %q", s, fast.py, want)
		}
		if !reflect.DeepEqual(fast.doc, slow.doc) {
			t.Fatalf("%q: doc %#v, want %#v", s, fast.doc, slow.doc)
		}
		if len(fast.leaves) != len(slow.leaves) {
			t.Fatalf("%q: %d strings, want %d", s, len(fast.leaves), len(slow.leaves))
		}
		for i := range fast.leaves {
			if fast.leaves[i].value != slow.leaves[i].value || pathOf(fast.nodes, fast.leaves[i].node) != pathOf(slow.nodes, slow.leaves[i].node) {
				t.Fatalf("%q: string %d = %q at %s, want %q at %s", s, i, fast.leaves[i].value, pathOf(fast.nodes, fast.leaves[i].node), slow.leaves[i].value, pathOf(slow.nodes, slow.leaves[i].node))
			}
		}
		// Build every other member (in sorted key order) and one absent.
		want := map[string]bool{"no such member": true}
		keys := slices.Sorted(maps.Keys(fast.doc))
		for i := 0; i < len(keys); i += 2 {
			want[keys[i]] = true
		}
		part, _ := parseObject(s, want, false, nil)
		if part == nil || string(part.py) != string(fast.py) || !reflect.DeepEqual(part.leaves, fast.leaves) || !reflect.DeepEqual(part.nodes, fast.nodes) {
			t.Fatalf("%q: building %v only changed what was read", s, want)
		}
		wantDoc := map[string]any{}
		for k, v := range fast.doc {
			if want[k] {
				wantDoc[k] = v
			}
		}
		if !reflect.DeepEqual(part.doc, wantDoc) {
			t.Fatalf("%q: building %v: doc %#v, want %#v", s, want, part.doc, wantDoc)
		}
		// Lean: the same bytes and values, the strings counted, and listed
		// as a whole parse lists them once asked.
		lean, _ := parseObject(s, want, true, nil)
		if lean == nil || string(lean.py) != string(fast.py) || !reflect.DeepEqual(lean.doc, wantDoc) || lean.nleaves != len(fast.leaves) || len(lean.leaves) != 0 {
			t.Fatalf("%q: a lean parse of %v differs: %+v", s, want, lean)
		}
		lean.full()
		if !reflect.DeepEqual(lean.leaves, fast.leaves) || !reflect.DeepEqual(lean.nodes, fast.nodes) {
			t.Fatalf("%q: a lean parse made whole lists %v %v, want %v %v", s, lean.leaves, lean.nodes, fast.leaves, fast.nodes)
		}
	})
}

// FuzzMultiMatcherAgainstPerList: one pass over every list finds what each
// list's own matchers find.
func FuzzMultiMatcherAgainstPerList(f *testing.F) {
	f.Add("now|fee|fees|entry requirement", "always verify|verify", "always|never|for sure", "You must always verify the fees now; never for sure.")
	f.Add("a|aa", "aa", "b", "aa a b ab")
	f.Add("entry requirement", "x", "now", "  Entry\t\n REQUIREMENT  \r\n")
	f.Add("a b", "", "c", "A  \v\fB")
	f.Add("naïve|e-ticket|don't", "ski", "fix|dž", "Nai\u0308ve NAÏVE E—Ticket don’t ﬁx ǅ Sk\u0130 a\u00a0b\u0085c")
	f.Fuzz(func(t *testing.T, terms1, exc1, terms2, text string) {
		mk := func(s string) []Term {
			var out []Term
			for _, x := range strings.Split(s, "|") {
				if n := normalize(x); n != "" {
					out = append(out, Term{Text: n})
				}
			}
			return out
		}
		lists := []*WordList{{Name: "a", Terms: mk(terms1), Exceptions: mk(exc1)}, {Name: "b", Terms: mk(terms2)}}
		for _, l := range lists {
			l.match, l.except = compileTerms(l.Terms), compileTerms(l.Exceptions)
		}
		dense := newMultiMatcher(lists)
		sparse := *dense
		sparse.delta = nil // as for a list too big for a table
		s := normalize(text)
		// The prefilter says no only when the full scan finds nothing,
		// and for text it replays (ASCII, and characters foldRune
		// takes) it says yes only when the scan finds something.
		any := false
		dense.scan(s, func(int32, int, int) { any = true })
		may := dense.mayMatch(text)
		if may != any && (!may || replayable(text)) {
			t.Fatalf("mayMatch(%q) = %v, but the scan of %q finds occurrences: %v", text, may, s, any)
		}
		// Lists too big for 16-bit rows take the 32-bit table.
		if wide := widened(dense); wide.mayMatch(text) != may {
			t.Fatalf("mayMatch(%q) = %v in 16 bits, %v in 32", text, may, !may)
		}
		for _, mm := range []*multiMatcher{dense, &sparse} {
			var buf matchBuf
			got := mm.listSpans(s, &buf)
			for li, l := range lists {
				want := l.spansIn(s)
				var g [][2]int
				if got != nil {
					g = got[li]
				}
				if len(g) != len(want) {
					t.Fatalf("list %d in %q: %v, want %v", li, s, g, want)
				}
				for i := range want {
					if g[i] != want[i] {
						t.Fatalf("list %d in %q: %v, want %v", li, s, g, want)
					}
				}
			}
		}
	})
}

func FuzzIsIdent(f *testing.F) {
	for _, s := range []string{"a", "_b9", "9a", "a-b", "", "é"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	f.Fuzz(func(t *testing.T, s string) {
		if isIdent(s) != re.MatchString(s) {
			t.Fatalf("isIdent(%q) = %v", s, isIdent(s))
		}
	})
}

// fences finds exactly what fenceRE finds.
func FuzzFences(f *testing.F) {
	for _, s := range []string{"```json\n{}\n```", "````\n{}```", "```\r\n{\"a\":1}\r\n```", "x ```js  \n1\n``` y ```\n2```", "```\n```", "```\r```", "```\n\r```", "``` \n\n\n```", "```a-b_c\t\n x\r\n\r\n```z```\n```"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		for _, m := range fenceRE.FindAllStringSubmatch(s, -1) {
			want = append(want, m[1])
		}
		if got := fences(s); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("fences(%q) = %q, fenceRE finds %q", s, got, want)
		}
	})
}

// FuzzEvaluateNeverPanics: whatever a teacher answers, the shipped rules
// give a decision, never a crash (a number once crashed the JSON Schema
// library, and with it the run and every rerun), and an accepted answer
// always has a response. Seeded with the reference answers.
func FuzzEvaluateNeverPanics(f *testing.F) {
	r, err := Load("../gates.yaml", Options{})
	if err != nil {
		f.Fatal(err)
	}
	samples, texts := referenceAnswers(f)
	for i, s := range samples {
		f.Add(texts[i], s.PayloadType, true)
	}
	f.Fuzz(func(t *testing.T, raw, payloadType string, strict bool) {
		mode := ModeLenient
		if strict {
			mode = ModeStrict
		}
		d := r.Evaluate(Sample{ID: "x", PayloadType: payloadType}, raw, mode)
		if d.OverallOK && (d.Response == nil || !d.Contract.OverallOK) {
			t.Fatalf("accepted without a valid response: %+v", d.Contract)
		}
	})
}

// Valid answers with slots for the values the schemas check closely.
const (
	itinerarySlots = `{"summary": "Two days; fees may change.", "assumptions": ["a"], "uncertainty_notes": "Check fees.", "next_steps": ["b"], "verification_steps": ["c"], "payload_type": "itinerary", "payload": {"title": "t", "trip_days": [{"day": DAY, "summary": "s", "items": [{"time_block": "morning", "activity": "walk", "cost_estimate": {"currency": "EUR", "amount": AMOUNT}}]}]}}`
	procedureSlots = `{"summary": SUMMARY, "assumptions": [], "uncertainty_notes": "x", "next_steps": [], "verification_steps": ["a"], "payload_type": "procedure", "payload": {"title": "t", "steps": [{"step": STEP, "instruction": "go"}]}}`
)

// FuzzAnswerValuesNeverPanic puts any JSON value where the schemas check
// values closely (a cost's amount, a day's number, a step's number, the
// summary) in an otherwise valid answer: the shipped rules decide, never
// crash. Byte mutations of whole answers rarely stay JSON; this reaches
// the validator with what a model could write (an amount of 1e999999999
// once crashed the run).
func FuzzAnswerValuesNeverPanic(f *testing.F) {
	r, err := Load("../gates.yaml", Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range []string{`1`, `-0`, `1.5`, `1e999999999`, `1e400`, `-1e-400`, `12345678901234567890`, `"x"`, `null`, `[1]`, `{}`, `true`} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !json.Valid([]byte(v)) {
			return
		}
		for _, ans := range []string{
			strings.NewReplacer("DAY", v, "AMOUNT", "1").Replace(itinerarySlots),
			strings.NewReplacer("DAY", "1", "AMOUNT", v).Replace(itinerarySlots),
			strings.NewReplacer("SUMMARY", `"s"`, "STEP", v).Replace(procedureSlots),
			strings.NewReplacer("SUMMARY", v, "STEP", "1").Replace(procedureSlots),
		} {
			pt := "itinerary"
			if strings.Contains(ans, `"procedure"`) {
				pt = "procedure"
			}
			d := r.Evaluate(Sample{ID: "x", PayloadType: pt}, ans, ModeStrict)
			if d.OverallOK && !d.Contract.OverallOK {
				t.Fatalf("accepted a broken contract: %s", ans)
			}
		}
	})
}

// widened is mm with its prefilter's rows in 32 bits, as a matcher for
// lists too big for 16 gets them.
func widened(mm *multiMatcher) *multiMatcher {
	w := *mm
	if mm.mayDelta16 != nil {
		w.mayDelta, w.mayDelta16 = make([]int32, len(mm.mayDelta16)), nil
		for i, r := range mm.mayDelta16 {
			w.mayDelta[i] = int32(r)
		}
	}
	return &w
}
