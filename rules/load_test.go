package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgrules/pgrules"
)

func writeGates(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gates.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const listsHeader = `lists:
  time_sensitive: {file: keywords/time_sensitive.txt}
  overconfidence: {file: keywords/overconfidence.txt, exceptions: keywords/overconfidence_exceptions.txt}
`

func TestLoadErrorsPointIntoTheGatesFile(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"syntax error in a plain scalar", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: size(hits.overconfidence) == = 0\n", "gates.yaml:7:46: Syntax error"},
		{"type error", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: contract.overall_ok + 1\n", "gates.yaml:7:37: found no matching overload for '_+_'"},
		{"unknown list is a compile error", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: size(hits.overconfidense) == 0\n", "gates.yaml:7:26: undeclared reference to 'hits.overconfidense'"},
		{"error inside a block scalar", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: |\n      contract.overall_ok &&\n        sample.nope == \"x\"\n", "gates.yaml:9:9: undeclared reference to 'sample'"},
		{"non-bool expression", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: sample.id\n", "gates.yaml:7:17: expression must be a bool"},
		{"missing reason", listsHeader + "gates:\n  - name: g\n    expression: true\n", `gate "g" needs a reason`},
		{"misspelled key", listsHeader + "gates:\n  - name: g\n    reason: r\n    expresion: true\n", `gates.yaml:7:5: unknown gate key "expresion"; did you mean expression? (known: name, expression,`},
		// Each of these compiled before, and the key was ignored.
		{"misspelled exceptions of a list", "lists:\n  overconfidence: {file: keywords/overconfidence.txt, exception: keywords/overconfidence_exceptions.txt}\ngates:\n  - name: g\n    reason: r\n    expression: true\n", `gates.yaml:2:55: unknown list key "exception"; did you mean exceptions? (known: file, exceptions)`},
		{"misspelled schemas key", "schemas:\n  payload: schemas/v1\n" + listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: true\n", `gates.yaml:2:3: unknown schemas key "payload"; did you mean payloads?`},
		{"misspelled variable key", listsHeader + "variables:\n  - nam: v\n    expression: true\ngates:\n  - name: g\n    reason: r\n    expression: true\n", `gates.yaml:5:5: unknown variable key "nam"; did you mean name?`},
		{"unknown top-level key", "gate:\n  - name: g\n", `gates.yaml:1:1: unknown key "gate"; did you mean gates?`},
		// A value of the wrong shape: the decoder's errors named Go types
		// ("cannot unmarshal !!map into []struct { Name string ...") and
		// no column; internal/yamlmsg says them at the value, by its path.
		{"gates as a mapping", listsHeader + "gates: {g: 1}\n", `gates.yaml:4:8: gates: expected a list ([a, b] or one "- item" a line), got a mapping`},
		{"a gate as a string", listsHeader + "gates: [contract_ok]\n", `gates.yaml:4:9: gates[0]: expected a mapping (key: value), got the text "contract_ok"`},
		{"requires as a string", listsHeader + "gates:\n  - name: g\n    reason: r\n    requires: contract_ok\n    expression: true\n", `gates.yaml:7:15: gates[0].requires: expected a list ([a, b] or one "- item" a line), got the text "contract_ok"`},
		{"variables as a mapping", "variables: {v: true}\n" + listsHeader + "gates: []\n", `gates.yaml:1:12: variables: expected a list ([a, b] or one "- item" a line), got a mapping`},
		{"schemas as a list", "schemas: [schemas/v1]\n" + listsHeader + "gates: []\n", `gates.yaml:1:10: schemas: expected a mapping (key: value), got a list`},
		{"version as a word", "version: one\n" + listsHeader + "gates: []\n", `gates.yaml:1:10: version: expected a whole number, got the text "one"`},
		{"a word list as a path", "lists:\n  a: keywords/time_sensitive.txt\ngates: []\n", `gates.yaml:2:6: lists.a: expected a mapping (key: value), got the text "keywords/time_sensitive.txt"`},
		{"a word list's file as a list", "lists:\n  a: {file: [x]}\ngates: []\n", "gates.yaml:2:13: lists.a.file: expected text, got a list"},
		{"a gate's name as a list", listsHeader + "gates:\n  - name: [g]\n    reason: r\n    expression: true\n", "gates.yaml:5:11: gates[0].name: expected text, got a list"},
		{"a reason pgrules writes itself", listsHeader + "gates:\n  - name: g\n    reason: teacher_error\n    expression: true\n", `gates.yaml:6:13: gate "g": reason "teacher_error" is pgrules' own code, for a teacher call that failed`},
		{"the reason of a passed gate", listsHeader + "gates:\n  - name: g\n    reason: ok\n    expression: true\n", `reason "ok" is pgrules' own code, for a gate that passed`},
		{"bad action", listsHeader + "gates:\n  - name: g\n    reason: r\n    action: block\n    expression: true\n", `action "block": use reject, warn or audit`},
		{"requires an unknown gate", listsHeader + "gates:\n  - name: g\n    reason: r\n    requires: [h]\n    expression: true\n", `requires "h", which is not a gate defined above it`},
		{"missing word list", "lists:\n  x: {file: keywords/nope.txt}\ngates:\n  - name: g\n    reason: r\n    expression: true\n", "keywords/nope.txt"},
		{"unknown answer field", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: response.sumary != \"\"\n", `gates.yaml:7:25: response.sumary: the response schema has no field "sumary" here; did you mean summary?`},
		{"unknown answer field in has()", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: has(response.verificaton_steps)\n", `response.verificaton_steps: the response schema has no field "verificaton_steps" here; did you mean verification_steps?`},
		{"unknown answer field by index", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: response['uncertainty'] == ''\n", `response.uncertainty: the response schema has no field "uncertainty"`},
		{"unknown payload field", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: response.payload.titel != ''\n", `response.payload.titel: the response schema has no field "titel" here; did you mean title?`},
		{"unknown field of a list item", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: response.payload.steps.exists(s, s.instuction == '')\n", `response.payload.steps[].instuction: the response schema has no field "instuction" here; did you mean instruction?`},
		{"unknown field in a variable", listsHeader + "variables:\n  - name: v\n    expression: response.next_step\ngates:\n  - name: g\n    reason: r\n    expression: true\n", `response.next_step: the response schema has no field "next_step" here; did you mean next_steps?`},
		{"cost over the limit", listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: response.next_steps.all(a, response.next_steps.all(b, response.next_steps.all(c, a + b + c != '')))\n", "estimated worst-case CEL cost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeGates(t, tc.body), Options{Fallback: pgrules.Defaults})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "unmarshal") {
				t.Fatalf("err = %v\nwant it to contain %q, in our words", err, tc.want)
			}
		})
	}
}

// Fields the schemas allow compile: known envelope and payload fields,
// fields under an open object, and metadata (additionalProperties: true).
func TestKnownAnswerFieldsCompile(t *testing.T) {
	for _, expr := range []string{
		"has(response.verification_steps) && response.summary != ''",
		"response.payload.groups.all(g, g.items.all(i, i.text != ''))",
		"response.payload.trip_days.exists(d, d.day == 1)",
		"has(response.metadata) && has(response.metadata.anything)",
		"response.payload['title'] != ''",
	} {
		body := listsHeader + "gates:\n  - name: g\n    reason: r\n    expression: \"" + expr + "\"\n"
		if _, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults}); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
}

func TestWarnAndAuditGatesNeverReject(t *testing.T) {
	body := listsHeader + `variables:
  - name: ts
    expression: size(hits.time_sensitive) > 0
gates:
  - name: contract_ok
    expression: contract.overall_ok
    reason: contract_failed
  - name: two_steps
    action: warn
    requires: [contract_ok]
    expression: size(response.verification_steps) >= 2
    reason: fewer_than_two_steps
  - name: mentions_city
    action: audit
    expression: response.summary.contains("Lisbon")
    reason: no_city
`
	r, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults})
	if err != nil {
		t.Fatal(err)
	}
	ans := `{"summary": "Visa rules.", "assumptions": [], "uncertainty_notes": "x", "next_steps": [], "verification_steps": ["a"], "payload_type": "procedure", "payload": {"title": "t", "steps": [{"step": 1, "instruction": "go"}]}}`
	d := r.Evaluate(Sample{PayloadType: "procedure"}, ans, ModeStrict)
	if !d.OverallOK || len(d.ReasonCodes) != 0 {
		t.Fatalf("warn/audit gates rejected: %v", d.ReasonCodes)
	}
	if strings.Join(d.Warnings, ",") != "fewer_than_two_steps" || strings.Join(d.Audits, ",") != "no_city" {
		t.Errorf("warnings %v audits %v", d.Warnings, d.Audits)
	}
	findings, _ := r.Lint()
	var msgs []string
	for _, f := range findings {
		msgs = append(msgs, f.String())
	}
	if !strings.Contains(strings.Join(msgs, "\n"), `variable "ts" is never used`) {
		t.Errorf("lint did not report the unused variable:\n%s", strings.Join(msgs, "\n"))
	}
}

func TestKeywordMatching(t *testing.T) {
	terms, _ := parseList("t.txt", []byte("now\nfee\nvisa\nentry requirement\nentry requirements\ndon't need to verify\n100%\n# comment\n\nalways\n"))
	exc, _ := parseList("e.txt", []byte("always verify\n"))
	w := &WordList{Name: "l", Terms: terms, Exceptions: exc, match: compileTerms(terms), except: compileTerms(exc)}
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"I know the coffee fees", nil},
		{"Right now, a fee applies", []string{"now", "fee"}},
		{"VISA-free; visas differ", []string{"visa"}},
		{"Entry Requirements apply", []string{"entry requirements"}},
		{"You don’t need to verify", []string{"don't need to verify"}},
		{"It is 100% sure", []string{"100%"}},
		{"1100% not a word", nil},
		{"Always verify; always go", []string{"always"}},
		{"nowhere knowing", nil},
	} {
		var got []string
		for _, h := range w.find("$.x", tc.text) {
			got = append(got, h.Term)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: hits %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestWalkStringsSkipsKeysAndGivesPaths(t *testing.T) {
	got, dup := walkStrings([]byte(`{"cost_estimate": {"currency": "EUR"}, "a b": ["x", {"y": "z"}], "n": 1}`))
	if dup != nil {
		t.Fatal(dup)
	}
	var paths []string
	for _, s := range got {
		paths = append(paths, s.path+"="+s.value)
	}
	if want := `$.cost_estimate.currency=EUR|$["a b"][0]=x|$["a b"][1].y=z`; strings.Join(paths, "|") != want {
		t.Errorf("got %v, want %s", paths, want)
	}
}

// An answer with a key twice in one object, or a lone surrogate escape, is
// refused wherever the object stands (alone, in a fence, in prose), at
// whatever depth, however the key is spelled, and by every parse (lean or
// whole): the dataset would hold text that readers take in different
// ways, with a value no gate saw, or U+FFFD where the teacher wrote none.
func TestAnUnclearAnswerIsRefused(t *testing.T) {
	many := `{`
	for i := range 40 {
		many += fmt.Sprintf(`"k%d": %d, `, i, i)
	}
	for _, tc := range []struct {
		name, raw, key, path string
	}{
		{"top level", `{"summary": 42, "payload": {}, "summary": "ok"}`, "summary", "$"},
		{"nested in an array", `{"payload": {"groups": [{"name": "a"}, {"name": "b", "items": [], "name": "c"}]}}`, "name", "$.payload.groups[1]"},
		{"spelled with an escape", `{"a\u0062c": 1, "abc": 2}`, "abc", "$"},
		{"an escaped key twice", `{"\n": 1, "\u000a": 2}`, "\n", "$"},
		{"among many keys", many + `"k17": 0}`, "k17", "$"},
		{"in a fence", "Here:\n```json\n{\"a\": {\"b\": 1, \"b\": 1}}\n```", "b", "$.a"},
		{"in prose", `Sure: {"x y": {"q": [1], "q": [1]}} hope that helps`, "q", `$["x y"]`},
		// key: the escape, whether a key holds it
		{"a lone high surrogate", `{"summary": "caf\u00e9 \ud800!"}`, `\ud800`, "$.summary false"},
		{"a lone low surrogate in an array", `{"a": ["ok \ud83d\ude00", "x\uDC00"]}`, `\uDC00`, "$.a[1] false"},
		{"a high surrogate before another escape", `{"a": {"b": "\ud83d\n"}}`, `\ud83d`, "$.a.b false"},
		{"in a key", `{"payload": {"k\udfff": 1}}`, `\udfff`, "$.payload true"},
		// key: the number, and what is wrong with it
		{"a number beyond a double", `{"a": {"b": [1, 1e400]}}`, "1e400 is beyond the range of a double", "$.a.b[1]"},
		{"an exponent beyond reading", `{"amount": -2.5E+999999999}`, "-2.5E+999999999 has an exponent beyond ±1000", "$.amount"},
		{"a tiny exponent beyond reading", `{"amount": 1e-999999999}`, "1e-999999999 has an exponent beyond ±1000", "$.amount"},
		{"too many digits", `{"n": 1` + strings.Repeat("0", 1000) + `}`, "1" + strings.Repeat("0", 1000) + " has 1001 digits", "$.n"},
	} {
		for _, lean := range []bool{false, true} {
			want := map[string]bool(nil)
			if lean {
				want = map[string]bool{}
			}
			a, _, strictOK, err := parseAnswer(tc.raw, ModeLenient, want, lean)
			var d *DuplicateKeyError
			var l *LoneSurrogateError
			var n *NumberError
			switch {
			case a != nil || strictOK:
				t.Errorf("%s (lean %v): accepted", tc.name, lean)
			case errors.As(err, &d):
				if d.Key != tc.key || d.Path != tc.path {
					t.Errorf("%s (lean %v): key %q at %s, want %q at %s", tc.name, lean, d.Key, d.Path, tc.key, tc.path)
				}
			case errors.As(err, &l):
				if got := fmt.Sprintf("%s %s %v", l.Escape, l.Path, l.Key); got != tc.key+" "+tc.path {
					t.Errorf("%s (lean %v): %s, want %s %s", tc.name, lean, got, tc.key, tc.path)
				}
			case errors.As(err, &n):
				if got := n.Number + " " + n.Why; !strings.HasPrefix(got, tc.key) || n.Path != tc.path {
					t.Errorf("%s (lean %v): %s at %s, want %s at %s", tc.name, lean, got, n.Path, tc.key, tc.path)
				}
			default:
				t.Errorf("%s (lean %v): error %v", tc.name, lean, err)
			}
		}
	}
	// The same key in sibling objects, or in an object and its parent,
	// is no repeat.
	for _, raw := range []string{
		`{"items": [{"text": "a"}, {"text": "b"}]}`,
		`{"a": {"a": {"a": 1}}, "b": {"a": 2}}`,
		many + `"k40": 0}`,
		`{"a": "\ud83d\ude00 and \\ud800, which is text"}`,
		// the largest double, one that reads as 0, a long integer
		`{"a": [1e308, -1e-400, 0e1000, 1` + strings.Repeat("0", 299) + `]}`,
	} {
		if _, _, _, err := parseAnswer(raw, ModeStrict, nil, false); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

// A word list saved in another encoding than UTF-8 is refused at its
// place: loaded as it is, a UTF-16 list's terms match nothing and its gate
// passes every answer. A UTF-8 byte order mark is dropped, not glued to
// the first term.
func TestWordListsMustBeUTF8(t *testing.T) {
	utf16le := func(s string) []byte {
		var b []byte
		for _, c := range []byte(s) {
			b = append(b, c, 0)
		}
		return b
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"utf-16 with a byte order mark":    {append([]byte{0xff, 0xfe}, utf16le("now\n")...), "t.txt:1:1: the file is UTF-16"},
		"utf-16 big endian":                {[]byte{0xfe, 0xff, 0, 'n', 0, 'o'}, "t.txt:1:1: the file is UTF-16"},
		"utf-16 without a byte order mark": {utf16le("# list\nnow\n"), "t.txt:1:2: control character U+0000"},
		"latin-1":                          {[]byte("visa\ncaf\xe9 hours\n"), "t.txt:2:4: byte 0xe9 is not UTF-8"},
	} {
		if _, err := parseList("t.txt", tc.data); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "save") {
			t.Errorf("%s: err = %v, want %q and what to do", name, err, tc.want)
		}
	}
	terms, err := parseList("t.txt", []byte("\xef\xbb\xbfnow\n\tvisa\t\r\n"))
	if err != nil || len(terms) != 2 || terms[0].Text != "now" || terms[1].Text != "visa" {
		t.Errorf("a UTF-8 byte order mark, tabs and CRLF: %+v, %v", terms, err)
	}
}

// The contract is not the gates' to waive: with no gate on it, or with
// contract_ok turned into a warn gate, an answer that does not parse or
// breaks a schema is still rejected, under the code contract_ok would give
// (an accepted record used to hold "response": null). Lint says so.
func TestTheContractHoldsWithoutItsGate(t *testing.T) {
	valid := `{"summary": "Visa rules.", "assumptions": [], "uncertainty_notes": "x", "next_steps": [], "verification_steps": ["a"], "payload_type": "procedure", "payload": {"title": "t", "steps": [{"step": 1, "instruction": "go"}]}}`
	for name, body := range map[string]string{
		"no contract gate": listsHeader + `gates:
  - name: short
    expression: "!has(response.summary) || size(response.summary) < 100"
    reason: long_summary
`,
		"a warn contract gate": listsHeader + `gates:
  - name: contract_ok
    action: warn
    expression: contract.overall_ok
    reason: contract_broken
`,
	} {
		r, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults})
		if err != nil {
			t.Fatal(err)
		}
		for ans, want := range map[string]string{
			valid:                      "",
			`Sure! Here is your plan.`: "parse_failed",
			strings.Replace(valid, `"summary": "Visa rules.", `, "", 1):     "envelope_invalid",
			strings.Replace(valid, `"instruction": "go"`, `"how": "go"`, 1): "payload_invalid",
		} {
			d := r.Evaluate(Sample{PayloadType: "procedure"}, ans, ModeStrict)
			if got := strings.Join(d.ReasonCodes, ","); got != want || d.OverallOK != (want == "") || d.ByContract != (want != "") {
				t.Errorf("%s: %.40s: accepted %v, reasons %q; want %q", name, ans, d.OverallOK, got, want)
			}
		}
		findings, _ := r.Lint()
		var lint []string
		for _, f := range findings {
			lint = append(lint, f.Rule)
		}
		if !slices.Contains(lint, "no-contract-gate") {
			t.Errorf("%s: lint says %v", name, lint)
		}
	}
	if r := shipped(t); slices.ContainsFunc(mustLint(r), func(f Finding) bool { return f.Rule == "no-contract-gate" }) {
		t.Error("lint finds no contract gate in the shipped gates")
	}
}

func mustLint(r *Rules) []Finding {
	f, _ := r.Lint()
	return f
}

// A reasonExpression must give a reason code, as a literal reason must be
// one: text taken from the answer would become a "code" no one wrote down,
// and the stats would count each answer's own. It is a gate_error, which
// makes the run unhealthy, naming the expression's position.
func TestAReasonExpressionMustGiveACode(t *testing.T) {
	body := listsHeader + `gates:
  - name: summary_short
    expression: size(response.summary) < 5
    reasonExpression: 'size(response.summary) > 20 ? "summary too long: " + response.summary : "summary_long"'
`
	r, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults})
	if err != nil {
		t.Fatal(err)
	}
	ans := func(summary string) string {
		return `{"summary": "` + summary + `", "assumptions": [], "uncertainty_notes": "x", "next_steps": [], "verification_steps": ["a"], "payload_type": "procedure", "payload": {"title": "t", "steps": [{"step": 1, "instruction": "go"}]}}`
	}
	if d := r.Evaluate(Sample{PayloadType: "procedure"}, ans("Visa rules."), ModeStrict); strings.Join(d.ReasonCodes, ",") != "summary_long" {
		t.Errorf("a code: reasons %v", d.ReasonCodes)
	}
	d := r.Evaluate(Sample{PayloadType: "procedure"}, ans("Visa rules change often; check them."), ModeStrict)
	if strings.Join(d.ReasonCodes, ",") != ReasonGateError {
		t.Fatalf("text as a reason: reasons %v, want gate_error", d.ReasonCodes)
	}
	msg := d.Gates[0].Details[0].Value.(string)
	if !strings.Contains(msg, "gates.yaml:7:23: reasonExpression gave \"summary too long: Visa rules change often; check them.\", not a lower_snake_case reason code") {
		t.Errorf("error detail %q", msg)
	}
	// Nor may it give a code pgrules writes itself: a rejection under
	// teacher_error would be asked again by --resume and counted as a
	// failed call.
	body = strings.Replace(body, `"summary_long"`, `"teacher_error"`, 1)
	if r, err = Load(writeGates(t, body), Options{Fallback: pgrules.Defaults}); err != nil {
		t.Fatal(err)
	}
	d = r.Evaluate(Sample{PayloadType: "procedure"}, ans("Visa rules."), ModeStrict)
	if strings.Join(d.ReasonCodes, ",") != ReasonGateError || !strings.Contains(d.Gates[0].Details[0].Value.(string), `reasonExpression gave "teacher_error", which pgrules writes for a teacher call that failed`) {
		t.Errorf("a reserved code: reasons %v, details %v", d.ReasonCodes, d.Gates[0].Details)
	}
}

// A teacher answer with a number the JSON Schema library cannot read
// (1e999999999 where the schema has a minimum) crashed the run, and every
// rerun after it, the answer being cached. The parser refuses the number;
// and were the validator to fail on another answer, that answer is
// rejected and the run goes on.
func TestAHostileNumberDoesNotCrashTheRun(t *testing.T) {
	r := shipped(t)
	answer := strings.NewReplacer("DAY", "1", "AMOUNT", "20").Replace(itinerarySlots)
	if d := r.Evaluate(Sample{PayloadType: "itinerary"}, answer, ModeStrict); !d.Contract.OverallOK {
		t.Fatalf("the itinerary is not valid to begin with: %v", d.Contract.Errors)
	}
	hostile := strings.Replace(answer, `"amount": 20`, `"amount": 1e999999999`, 1)
	d := r.Evaluate(Sample{PayloadType: "itinerary"}, hostile, ModeStrict)
	if d.OverallOK || strings.Join(d.ReasonCodes, ",") != "parse_failed" || !strings.Contains(strings.Join(d.Contract.Errors, "\n"), "(1e999999999) has an exponent beyond ±1000") {
		t.Errorf("accepted %v, reasons %v, errors %v", d.OverallOK, d.ReasonCodes, d.Contract.Errors)
	}

	// The same number put past the parser, straight into the schema check.
	a, err := parseFast([]byte(answer), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	setAmounts(a.doc, json.Number("1e999999999"))
	c := Contract{ParseMode: string(ModeStrict)}
	r.schemas.check(a.doc, "itinerary", &c)
	if c.PayloadOK || !c.EnvelopeOK || !strings.Contains(strings.Join(c.Errors, "\n"), "payload: the JSON Schema validator failed on this answer") || c.Reason() != "payload_invalid" {
		t.Errorf("a validator that fails: %+v", c)
	}
}

// setAmounts sets every "amount" in v to n.
func setAmounts(v any, n json.Number) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "amount" {
				x[k] = n
			} else {
				setAmounts(e, n)
			}
		}
	case []any:
		for _, e := range x {
			setAmounts(e, n)
		}
	}
}

// A lenient answer with two different objects does not say which is the
// answer ("the draft: {…} the refined answer: {…}"): taking the first, as
// pgrules did, could put the unrefined draft in the dataset. The same
// object twice, or one object next to code that is not one, is clear.
func TestALenientAnswerWithTwoObjectsIsAmbiguous(t *testing.T) {
	a, b := `{"summary": "draft"}`, `{"summary": "refined"}`
	for _, tc := range []struct {
		name, raw, err string
	}{
		{"two fences", "Draft:\n```json\n" + a + "\n```\nRefined:\n```json\n" + b + "\n```", `the answer holds different JSON objects in code fences (the first starts "{\"summary\": \"draft\"}", another "{\"summary\": \"refined\"}"): which one is the answer is ambiguous`},
		{"two in prose", "The draft was " + a + " and the refined answer is " + b + ".", `different JSON objects in its text`},
		{"the same one twice, then another", b + " " + b + ` {"x": 1}`, `different JSON objects in its text (the first starts "{\"summary\": \"refined\"}", another "{\"x\": 1}")`},
		{"the same one twice", "Answer: " + b + " (again: " + b + ")", ""},
		{"the same one, spaced otherwise", "```json\n" + b + "\n```\n```\n{\"summary\":\"refined\"}\n```", ""},
		{"a fence of code beside it", "```bash\ncurl -s x\n```\n```json\n" + b + "\n```", ""},
		{"a fence wins over prose", "See " + a + " below:\n```json\n" + b + "\n```", ""},
	} {
		ans, mode, _, err := parseAnswer(tc.raw, ModeLenient, nil, false)
		switch {
		case tc.err == "" && (err != nil || mode != string(ModeLenient) || !strings.Contains(string(ans.py), "refined")):
			t.Errorf("%s: %v, mode %q", tc.name, err, mode)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || ans != nil):
			t.Errorf("%s: %v, want %s", tc.name, err, tc.err)
		}
	}
}

// A mistake in a schema file is reported at the file:line:col of the value
// it is about, in the author's words, not as the validator's internal URL
// and its tree of the metaschema's combinators.
func TestSchemaFileErrorsPointIntoTheFile(t *testing.T) {
	orig, err := fs.ReadFile(pgrules.Defaults, "schemas/v1/checklist.payload.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"a keyword of the wrong value", `"type": "object"`, `"type": "objet"`,
			`/checklist.payload.schema.json:6:11: /type: not a valid JSON Schema: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'`},
		{"a syntax error", `"type": "object"`, `"type": "object",`,
			`/checklist.payload.schema.json:6:20: not valid JSON: invalid character ',' looking for beginning of object key string`},
		{"a bad pattern", `"type": "string"`, `"type": "string", "pattern": "[a-"`,
			`/checklist.payload.schema.json:13:36: /properties/title/pattern: not a valid JSON Schema: '[a-' is not valid regex`},
		{"an item of a list", "\"title\",\n    \"groups\"", "\"title\",\n    5",
			`/checklist.payload.schema.json:9:5: /required/1: not a valid JSON Schema: got number, want string`},
		{"a $ref to nothing", `"type": "string"`, `"$ref": "#/$defs/nope"`,
			`/checklist.payload.schema.json: json-pointer in "`},
		{"the file cut short", "", "",
			`/checklist.payload.schema.json:9:4: not valid JSON: the file ends inside a value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mine := filepath.Join(dir, "myschemas")
			if err := os.MkdirAll(mine, 0o755); err != nil {
				t.Fatal(err)
			}
			body := strings.Replace(string(orig), tc.old, tc.new, 1)
			if tc.old == "" {
				body = string(orig[:300])
			}
			if err := os.WriteFile(filepath.Join(mine, "checklist.payload.schema.json"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			gates := filepath.Join(dir, "gates.yaml")
			if err := os.WriteFile(gates, []byte("schemas:\n  payloads: myschemas\n"+listsHeader+"gates:\n  - name: g\n    reason: r\n    expression: true\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(gates, Options{Fallback: pgrules.Defaults})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "file:///") {
				t.Fatalf("err = %v\nwant it to contain %q, and no internal URL", err, tc.want)
			}
		})
	}
}

// Two gates with one literal reason are counted as one in the stats:
// lint says so (info: they may mean the same), naming both; the shipped
// gates give each its own.
func TestLintSaysWhenGatesShareAReason(t *testing.T) {
	body := listsHeader + `gates:
  - name: short_summary
    reason: low_quality
    expression: size(response.summary) > 5
  - name: no_steps
    reason: low_quality
    expression: size(response.next_steps) > 0
  - name: own_reason
    reason: other
    expression: true
`
	r, err := Load(writeGates(t, body), Options{Fallback: pgrules.Defaults})
	if err != nil {
		t.Fatal(err)
	}
	var shared []Finding
	for _, f := range mustLint(r) {
		if f.Rule == "shared-reason" {
			shared = append(shared, f)
		}
	}
	if len(shared) != 1 || shared[0].Severity != "info" || shared[0].Pos.Line != 9 ||
		!strings.Contains(shared[0].Msg, `gate "no_steps" gives reason "low_quality", as gate "short_summary" does`) {
		t.Errorf("shared-reason findings: %+v", shared)
	}
	if slices.ContainsFunc(mustLint(shipped(t)), func(f Finding) bool { return f.Rule == "shared-reason" }) {
		t.Error("the shipped gates share a reason")
	}
}
