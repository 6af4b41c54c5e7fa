// Package ruletest runs unit tests for gates.yaml: YAML cases giving a
// sample, the teacher's answer and the expected verdict, with coverage of
// gates and word lists. It is what `pgrules test-rules` runs.
package ruletest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pgrules/pgrules/internal/suggest"
	"github.com/pgrules/pgrules/internal/yamlmsg"
	"github.com/pgrules/pgrules/rules"
)

// Case is one rule test.
type Case struct {
	Name   string
	File   string
	Line   int
	Sample rules.Sample
	Mode   rules.Mode
	Raw    string
	Expect Expect
}

// Expect is what a case asserts; unset fields are not checked.
type Expect struct {
	Overall     string            // "accept" or "reject"
	ReasonCodes *[]string         // exact list, in gate order
	Warnings    *[]string         // reason codes of failing warn gates
	Gates       map[string]GateEx // chosen gates
	Hits        map[string][]string
	NoHits      map[string][]string
}

// GateEx is the expected result of one gate. Details are matched as a
// subset: only the keys written are compared.
type GateEx struct {
	Passed     *bool          `yaml:"passed"`
	ReasonCode string         `yaml:"reason_code"`
	Details    map[string]any `yaml:"details"`
}

type caseDoc struct {
	Name     string       `yaml:"name"`
	Sample   rules.Sample `yaml:"sample"`
	Mode     string       `yaml:"mode"`
	Raw      *string      `yaml:"raw"`
	Response yaml.Node    `yaml:"response"`
	Expect   expectDoc    `yaml:"expect"`
}

type expectDoc struct {
	Overall     string              `yaml:"overall"`
	ReasonCodes *[]string           `yaml:"reason_codes"`
	Warnings    *[]string           `yaml:"warnings"`
	Gates       map[string]GateEx   `yaml:"gates"`
	Hits        map[string][]string `yaml:"hits"`
	NoHits      map[string][]string `yaml:"no_hits"`
}

// LoadFile reads one case file. Errors carry file:line:col.
func LoadFile(path string) ([]Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read case file %s: %w", path, errors.Unwrap(err))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s:%s", path, yamlPos(err))
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	top := root.Content[0]
	var list *yaml.Node
	if top.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == "cases" {
				list = top.Content[i+1]
			} else {
				return nil, fmt.Errorf("%s:%d:%d: unknown key %q (a case file has `cases:`)", path, top.Content[i].Line, top.Content[i].Column, top.Content[i].Value)
			}
		}
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d:%d: a case file is a mapping with a `cases:` list", path, top.Line, top.Column)
	}
	var out []Case
	for _, n := range list.Content {
		var d caseDoc
		if err := n.Decode(&d); err != nil {
			if ps, ok := yamlmsg.Explain(n, "", err); ok {
				name := ""
				if v := valueOf(n, "name"); v != nil {
					name = v.Value
				}
				return nil, fmt.Errorf("%s:%d:%d: case %q: %s", path, ps[0].Line, ps[0].Col, name, ps[0].Msg)
			}
			return nil, fmt.Errorf("%s:%d:%d: %s", path, n.Line, n.Column, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		where := fmt.Sprintf("%s:%d:%d", path, n.Line, n.Column)
		if err := checkCaseKeys(path, n, d.Name); err != nil {
			return nil, err
		}
		if d.Name == "" {
			return nil, fmt.Errorf("%s: a case needs a name", where)
		}
		c := Case{Name: d.Name, File: path, Line: n.Line, Mode: rules.Mode(d.Mode),
			Sample: d.Sample,
			Expect: Expect{Overall: d.Expect.Overall, ReasonCodes: d.Expect.ReasonCodes, Warnings: d.Expect.Warnings, Gates: d.Expect.Gates, Hits: d.Expect.Hits, NoHits: d.Expect.NoHits}}
		if c.Mode == "" {
			c.Mode = rules.ModeStrict
		}
		if c.Mode != rules.ModeStrict && c.Mode != rules.ModeLenient {
			return nil, fmt.Errorf("%s: case %q: mode %q: use strict or lenient", where, d.Name, d.Mode)
		}
		switch {
		case d.Raw != nil && d.Response.Kind != 0:
			return nil, fmt.Errorf("%s: case %q: give either raw or response, not both", where, d.Name)
		case d.Raw != nil:
			c.Raw = *d.Raw
		case d.Response.Kind != 0:
			var v any
			if err := d.Response.Decode(&v); err != nil {
				return nil, fmt.Errorf("%s: case %q: response: %v", where, d.Name, err)
			}
			b, err := json.Marshal(jsonable(v))
			if err != nil {
				return nil, fmt.Errorf("%s: case %q: response: %v", where, d.Name, err)
			}
			c.Raw = string(b)
			if c.Sample.PayloadType == "" {
				if m, ok := v.(map[string]any); ok {
					c.Sample.PayloadType, _ = m["payload_type"].(string)
				}
			}
		default:
			return nil, fmt.Errorf("%s: case %q needs raw (the teacher's text) or response (an object)", where, d.Name)
		}
		if o := c.Expect.Overall; o != "" && o != "accept" && o != "reject" {
			return nil, fmt.Errorf("%s: case %q: expect.overall %q: use accept or reject", where, d.Name, o)
		}
		out = append(out, c)
	}
	return out, nil
}

// keyPos is file:line:col of key in mapping n.
// The keys each mapping of a case may hold.
var (
	caseKeys   = []string{"name", "sample", "mode", "raw", "response", "expect"}
	sampleKeys = []string{"id", "category", "difficulty", "payload_type", "region_tags"}
	expectKeys = []string{"overall", "reason_codes", "warnings", "gates", "hits", "no_hits"}
	gateExKeys = []string{"passed", "reason_code", "details"}
)

// checkCaseKeys refuses a misspelled key anywhere in a case, which YAML
// decoding would ignore: a case whose "passd: false" is dropped asserts
// less than its author wrote, and passes.
func checkCaseKeys(path string, n *yaml.Node, name string) error {
	unknown := func(m *yaml.Node, what string, known []string) error {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i]
			if slices.Contains(known, k.Value) {
				continue
			}
			return fmt.Errorf("%s:%d:%d: case %q: %s", path, k.Line, k.Column, name, suggest.Unknown(what, k.Value, known))
		}
		return nil
	}
	expect := valueOf(n, "expect")
	errs := []error{
		unknown(n, "key", caseKeys),
		unknown(valueOf(n, "sample"), "sample key", sampleKeys),
		unknown(expect, "expect key", expectKeys),
	}
	if gates := valueOf(expect, "gates"); gates != nil && gates.Kind == yaml.MappingNode {
		for i := 1; i < len(gates.Content); i += 2 {
			errs = append(errs, unknown(gates.Content[i], "key of gate "+strconv.Quote(gates.Content[i-1].Value), gateExKeys))
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// valueOf is the value under key in the mapping n; nil when there is none.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// jsonable turns YAML maps into JSON-marshalable ones. yaml.v3 decodes
// mappings as map[string]any already; nested any slices are walked.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = jsonable(x)
		}
	case []any:
		for i, x := range t {
			t[i] = jsonable(x)
		}
	}
	return v
}

func yamlPos(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(s, "line ") {
		s = strings.TrimPrefix(s, "line ")
		if i := strings.Index(s, ":"); i > 0 {
			return s[:i] + ":1:" + s[i+1:]
		}
	}
	return " " + s
}

// Collect finds the case files under paths (files or directories, *.yaml).
func Collect(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", p, errors.Unwrap(err))
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	return files, nil
}

// Result is one case's outcome.
type Result struct {
	Case     Case
	Failures []string
	Decision *rules.Decision
}

// Passed says whether every expectation held.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Run evaluates one case.
func Run(rs *rules.Rules, c Case) Result {
	d := rs.Evaluate(c.Sample, c.Raw, c.Mode)
	res := Result{Case: c, Decision: d}
	fail := func(what string, want, got any) {
		res.Failures = append(res.Failures, fmt.Sprintf("%s:\n    - want: %s\n    + got:  %s", what, show(want), show(got)))
	}
	// rawFailure is a failure whose got is worded already.
	rawFailure := func(what string, want any, got string) {
		res.Failures = append(res.Failures, fmt.Sprintf("%s:\n    - want: %s\n    + got:  %s", what, show(want), got))
	}
	e := c.Expect
	if e.Overall != "" {
		got := "reject"
		if d.OverallOK {
			got = "accept"
		}
		if got != e.Overall {
			// A reject says why: the reason codes are what to look at next.
			why := ""
			if len(d.ReasonCodes) > 0 {
				why = " (reason_codes " + show(d.ReasonCodes) + ")"
			}
			rawFailure("overall", e.Overall, show(got)+why)
		}
	}
	if e.ReasonCodes != nil && !reflect.DeepEqual(nonNil(*e.ReasonCodes), nonNil(d.ReasonCodes)) {
		fail("reason_codes", *e.ReasonCodes, nonNil(d.ReasonCodes))
	}
	if e.Warnings != nil && !reflect.DeepEqual(nonNil(*e.Warnings), nonNil(d.Warnings)) {
		fail("warnings", *e.Warnings, nonNil(d.Warnings))
	}
	byName := map[string]rules.GateResult{}
	for _, g := range d.Gates {
		byName[g.Name] = g
	}
	for _, name := range sortedKeys(e.Gates) {
		want := e.Gates[name]
		g, ok := byName[name]
		if !ok {
			fail("gates."+name, "a gate of that name", "no such gate in the rules")
			continue
		}
		if want.Passed != nil && (g.Passed == nil || *g.Passed != *want.Passed) {
			fail("gates."+name+".passed", *want.Passed, g.Passed)
		}
		if want.ReasonCode != "" && want.ReasonCode != g.ReasonCode {
			fail("gates."+name+".reason_code", want.ReasonCode, g.ReasonCode)
		}
		for _, k := range sortedKeys(want.Details) {
			got, ok := g.Details.Get(k)
			if !ok {
				fail("gates."+name+".details."+k, want.Details[k], "absent")
				continue
			}
			if !sameJSON(want.Details[k], got) {
				fail("gates."+name+".details."+k, want.Details[k], got)
			}
		}
	}
	hits := map[string][]string{}
	for _, h := range d.Hits() {
		hits[h.List] = append(hits[h.List], h.Term)
	}
	for _, list := range sortedKeys(e.Hits) {
		for _, term := range e.Hits[list] {
			if !contains(hits[list], strings.ToLower(term)) {
				fail("hits."+list, "to contain "+show(term), hits[list])
			}
		}
	}
	for _, list := range sortedKeys(e.NoHits) {
		for _, term := range e.NoHits[list] {
			if contains(hits[list], strings.ToLower(term)) {
				fail("no_hits."+list, "no hit of "+show(term), hits[list])
			}
		}
	}
	return res
}

func show(v any) string {
	if p, ok := v.(*bool); ok {
		if p == nil {
			return "not evaluated"
		}
		v = *p
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var x, y any
	json.Unmarshal(ja, &x)
	json.Unmarshal(jb, &y)
	return reflect.DeepEqual(x, y)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
