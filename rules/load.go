// Package rules is everything declarative in pgrules: it loads gates.yaml,
// the word lists in keywords/ and the JSON Schemas, parses a teacher's
// answer (strict or lenient), checks its contract, evaluates the CEL gates
// and runs rule test cases. It does no dataset I/O and knows no provider.
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"go.yaml.in/yaml/v3"

	"github.com/pgrules/pgrules/internal/suggest"
	"github.com/pgrules/pgrules/internal/yamlmsg"
)

// CostLimit bounds the work one gate may do on one answer. Static
// estimates over dyn maps are unbounded, so the runtime limit is what
// protects a run from a pathological expression.
const CostLimit = 1_000_000

// Options tune loading.
type Options struct {
	// Fallback holds built-in copies of word lists and schemas, used when a
	// file gates.yaml names is not next to it.
	Fallback fs.FS
}

// File is one file the rules were built from, for the manifest.
type File struct {
	Path    string `json:"path"`
	Kind    string `json:"kind"`
	SHA256  string `json:"sha256"`
	Builtin bool   `json:"builtin,omitempty"`
}

// Rules is a loaded, compiled gates file. It is immutable and safe for
// concurrent use.
type Rules struct {
	path      string
	srcLines  []string
	env       *cel.Env
	schemas   *schemaSet
	lists     []*WordList
	listByKey map[string]*WordList
	// listIndex and varIndex resolve hits.<list> and variables.<name>.
	listIndex map[string]int
	varIndex  map[string]int
	// matcher scans an answer's strings for every list at once.
	matcher *multiMatcher
	// listsDigest identifies the lists by name and normalised terms (see
	// ListsDigest).
	listsDigest []byte
	// responseFields are the answer's top-level fields the expressions
	// read (nil: any).
	responseFields map[string]bool
	variables      []*variable
	gates          []*Gate
	files          []File
}

type variable struct {
	Name string
	Expr string
	Pos  Pos
	prg  cel.Program
	ast  *cel.Ast
	Used bool
}

// Gate is one compiled gate.
type Gate struct {
	Name     string
	Action   string
	Requires []string
	Reason   string
	Pos      Pos
	// reasonPos is where the literal reason is written.
	reasonPos Pos

	when, expr, reasonExpr *compiled
	details, failDetails   []namedExpr
}

type compiled struct {
	src string
	pos Pos
	prg cel.Program
	ast *cel.Ast
}

type namedExpr struct {
	name string
	*compiled
}

// Pos is a place in a file, 1-based.
type Pos struct {
	File      string
	Line, Col int
}

// String is file:line:col, or file:line when the column is not known.
func (p Pos) String() string {
	if p.Col == 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Actions a gate may take when it fails.
const (
	ActionReject = "reject"
	ActionWarn   = "warn"
	ActionAudit  = "audit"
)

// Load reads a gates file from disk.
func Load(gatesPath string, opt Options) (*Rules, error) {
	data, err := os.ReadFile(gatesPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read gates file %s: %w", gatesPath, errors.Unwrap(err))
	}
	return load(data, gatesPath, source{dir: filepath.Dir(gatesPath), fallback: opt.Fallback})
}

// LoadFS reads a gates file from fsys (the built-in defaults, or a test
// fixture).
func LoadFS(fsys fs.FS, gatesPath string, opt Options) (*Rules, error) {
	data, err := fs.ReadFile(fsys, gatesPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read gates file %s: %w", gatesPath, err)
	}
	return load(data, gatesPath, source{fsys: fsys, dir: path.Dir(gatesPath), fallback: opt.Fallback})
}

// The YAML shape of gates.yaml.
type gatesDoc struct {
	Version int `yaml:"version"`
	Schemas struct {
		Envelope string `yaml:"envelope"`
		Payloads string `yaml:"payloads"`
	} `yaml:"schemas"`
	Lists     yaml.Node `yaml:"lists"`
	Variables []struct {
		Name       string    `yaml:"name"`
		Expression yaml.Node `yaml:"expression"`
	} `yaml:"variables"`
	Gates []gateDoc `yaml:"gates"`
}

type gateDoc struct {
	Name             string    `yaml:"name"`
	Expression       yaml.Node `yaml:"expression"`
	When             yaml.Node `yaml:"when"`
	Reason           yaml.Node `yaml:"reason"`
	ReasonExpression yaml.Node `yaml:"reasonExpression"`
	Details          yaml.Node `yaml:"details"`
	DetailsOnFail    yaml.Node `yaml:"detailsOnFail"`
	Action           string    `yaml:"action"`
	Requires         []string  `yaml:"requires"`
	Description      string    `yaml:"description"`
}

type listDoc struct {
	File       string `yaml:"file"`
	Exceptions string `yaml:"exceptions"`
}

var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// errList gathers every problem so an author fixes them in one pass.
type errList struct{ errs []Problem }

func (e *errList) add(p Pos, format string, args ...any) {
	e.errs = append(e.errs, Problem{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (e *errList) err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return &LoadError{Problems: e.errs}
}

// Problem is one mistake in the rules, where it is.
type Problem struct {
	Pos Pos
	Msg string
}

// LoadError is every mistake found loading the rules, each at
// file:line:col, one per line.
type LoadError struct{ Problems []Problem }

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Pos.String() + ": " + p.Msg
	}
	return strings.Join(lines, "\n")
}

func load(data []byte, file string, src source) (*Rules, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlFileErr(file, err)
	}
	if err := checkKeys(&root, file); err != nil {
		return nil, err
	}
	var doc gatesDoc
	if err := root.Decode(&doc); err != nil {
		if el := (&errList{}); el.explain(&root, "", file, err) {
			return nil, el.err()
		}
		return nil, yamlFileErr(file, err)
	}
	sum := sha256.Sum256(data)
	r := &Rules{path: file, listByKey: map[string]*WordList{}, listIndex: map[string]int{}, varIndex: map[string]int{}, srcLines: strings.Split(string(data), "\n")}
	r.files = append(r.files, File{Path: file, Kind: "gates", SHA256: hex.EncodeToString(sum[:]), Builtin: src.fsys != nil && src.fsys == src.fallback})
	el := &errList{}

	if doc.Schemas.Envelope == "" {
		doc.Schemas.Envelope = "schemas/v0/response_envelope.schema.json"
	}
	if doc.Schemas.Payloads == "" {
		doc.Schemas.Payloads = "schemas/v1"
	}
	var err error
	if r.schemas, err = loadSchemas(src, doc.Schemas.Envelope, doc.Schemas.Payloads); err != nil {
		return nil, err
	}
	r.files = append(r.files, r.schemas.files...)

	if err := r.loadLists(&doc.Lists, file, src, el); err != nil {
		return nil, err
	}
	r.matcher = newMultiMatcher(r.lists)
	r.listsDigest = listsDigest(r.lists)

	opts := append([]cel.EnvOption{
		ext.Strings(ext.StringsVersion(4)),
		ext.Lists(ext.ListsVersion(2)),
		ext.Sets(ext.SetsVersion(0)),
	}, hostVarDecls()...)
	hitType := cel.MapType(cel.StringType, cel.StringType)
	for i, l := range r.lists {
		opts = append(opts, cel.Variable("hits."+l.Name, cel.ListType(hitType)))
		r.listIndex["hits."+l.Name] = i
	}
	if r.env, err = cel.NewEnv(opts...); err != nil {
		return nil, fmt.Errorf("%s: building the CEL environment: %w", file, err)
	}

	// Variables are compiled in order; each may use the ones before it,
	// with the type its expression has, so gates are type-checked against
	// real types.
	seenVar := map[string]bool{}
	for _, v := range doc.Variables {
		p := nodePos(file, &v.Expression)
		if !nameRE.MatchString(v.Name) || seenVar[v.Name] {
			el.add(p, "variable name %q must be unique and lower_snake_case", v.Name)
			continue
		}
		seenVar[v.Name] = true
		c := r.compile(file, &v.Expression, nil, el)
		if c == nil {
			continue
		}
		r.varIndex["variables."+v.Name] = len(r.variables)
		r.variables = append(r.variables, &variable{Name: v.Name, Expr: c.src, Pos: c.pos, prg: c.prg, ast: c.ast})
		if r.env, err = r.env.Extend(cel.Variable("variables."+v.Name, c.ast.OutputType())); err != nil {
			el.add(p, "%v", err)
		}
	}

	seenGate := map[string]bool{}
	for i := range doc.Gates {
		g := &doc.Gates[i]
		p := nodePos(file, &g.Expression)
		if g.Expression.Kind == 0 {
			p = Pos{File: file, Line: 1, Col: 1}
		}
		if !nameRE.MatchString(g.Name) {
			el.add(p, "gate name %q must be lower_snake_case", g.Name)
			continue
		}
		if seenGate[g.Name] {
			el.add(p, "gate %q is defined twice", g.Name)
			continue
		}
		for _, req := range g.Requires {
			if !seenGate[req] {
				el.add(p, "gate %q requires %q, which is not a gate defined above it", g.Name, req)
			}
		}
		seenGate[g.Name] = true
		gate := &Gate{Name: g.Name, Action: g.Action, Requires: g.Requires, Reason: g.Reason.Value, Pos: p, reasonPos: nodePos(file, &g.Reason)}
		switch gate.Action {
		case "":
			gate.Action = ActionReject
		case ActionReject, ActionWarn, ActionAudit:
		default:
			el.add(p, "gate %q: action %q: use reject, warn or audit", g.Name, g.Action)
		}
		if g.Expression.Kind == 0 {
			el.add(p, "gate %q has no expression", g.Name)
			continue
		}
		gate.expr = r.compile(file, &g.Expression, cel.BoolType, el)
		if g.When.Kind != 0 {
			gate.when = r.compile(file, &g.When, cel.BoolType, el)
		}
		switch {
		case g.ReasonExpression.Kind != 0:
			gate.reasonExpr = r.compile(file, &g.ReasonExpression, cel.StringType, el)
		case g.Reason.Kind == 0 || g.Reason.Value == "" && g.Reason.Kind == yaml.ScalarNode:
			el.add(p, "gate %q needs a reason (the reason code written on rejected records) or a reasonExpression", g.Name)
		case g.Reason.Kind != yaml.ScalarNode || !nameRE.MatchString(g.Reason.Value):
			el.add(nodePos(file, &g.Reason), "gate %q: reason %q must be a lower_snake_case code", g.Name, g.Reason.Value)
		case Reserved[g.Reason.Value] != "":
			code := g.Reason.Value
			el.add(nodePos(file, &g.Reason), "gate %q: reason %q is pgrules' own code, for %s: the stats, the health check and --resume would count this gate's rejections as that; give the gate a code of its own", g.Name, code, Reserved[code])
		}
		gate.details = r.compileMap(file, &g.Details, el)
		gate.failDetails = r.compileMap(file, &g.DetailsOnFail, el)
		r.gates = append(r.gates, gate)
	}
	if len(doc.Gates) == 0 {
		el.add(Pos{File: file, Line: 1, Col: 1}, "no gates: a gates file needs a `gates:` list")
	}
	if err := el.err(); err != nil {
		return nil, err
	}
	r.responseFields = responseFields(r.expressions())
	return r, nil
}

func (r *Rules) loadLists(n *yaml.Node, file string, src source, el *errList) error {
	if n.Kind == 0 {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		el.add(nodePos(file, n), "lists must be a mapping of name: {file, exceptions}")
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, body := n.Content[i].Value, n.Content[i+1]
		var ld listDoc
		if err := body.Decode(&ld); err != nil {
			if !el.explain(body, "lists."+name, file, err) {
				el.add(nodePos(file, body), "list %q: %s", name, yamlErr(err))
			}
			continue
		}
		if !nameRE.MatchString(name) {
			el.add(nodePos(file, n.Content[i]), "list name %q must be lower_snake_case", name)
			continue
		}
		wl := &WordList{Name: name}
		for _, f := range []struct {
			path string
			dst  *[]Term
		}{{ld.File, &wl.Terms}, {ld.Exceptions, &wl.Exceptions}} {
			if f.path == "" {
				continue
			}
			data, where, builtin, err := src.read(f.path)
			if err != nil {
				return fmt.Errorf("%s: list %q: %w", nodePos(file, body), name, err)
			}
			terms, err := parseList(where, data)
			if err != nil {
				return err
			}
			*f.dst = terms
			sum := sha256.Sum256(data)
			r.files = append(r.files, File{Path: where, Kind: "wordlist", SHA256: hex.EncodeToString(sum[:]), Builtin: builtin})
			if f.dst == &wl.Terms {
				wl.File = where
			}
		}
		if ld.File == "" {
			el.add(nodePos(file, body), "list %q needs a file", name)
		}
		wl.match, wl.except = compileTerms(wl.Terms), compileTerms(wl.Exceptions)
		r.lists = append(r.lists, wl)
		r.listByKey[name] = wl
	}
	return nil
}

// compile parses and type-checks one expression; errors point into the
// gates file at the expression's own line and column.
func (r *Rules) compile(file string, n *yaml.Node, want *cel.Type, el *errList) *compiled {
	if n.Kind != yaml.ScalarNode {
		el.add(nodePos(file, n), "expected a CEL expression (a string)")
		return nil
	}
	ast, iss := r.env.Compile(n.Value)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			el.add(r.exprPos(file, n, e.Location.Line(), e.Location.Column()), "%s", e.Message)
		}
		return nil
	}
	if want != nil && !ast.OutputType().IsAssignableType(want) && ast.OutputType() != types.DynType {
		el.add(nodePos(file, n), "expression must be a %s, this one is a %s", want, ast.OutputType())
		return nil
	}
	if r.schemas.shape != nil {
		for _, p := range checkFields(r.schemas.shape, ast.NativeRep().Expr()) {
			loc := ast.NativeRep().SourceInfo().GetStartLocation(p.id)
			el.add(r.exprPos(file, n, loc.Line(), loc.Column()), "%s", p)
		}
	}
	// The runtime limit protects a run; a gate that can exceed it on a
	// plausible answer is a mistake better found before any sample.
	if est, err := r.env.EstimateCost(ast, sizeHints{}); err == nil && est.Max > CostLimit {
		el.add(nodePos(file, n), "estimated worst-case CEL cost %d exceeds the limit of %d (assuming lists of up to %d items and strings of up to %d characters): bound the iteration, e.g. iterate one list rather than nesting comprehensions", est.Max, CostLimit, maxListHint, maxStringHint)
		return nil
	}
	prg, err := r.env.Program(ast, cel.CostLimit(CostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		el.add(nodePos(file, n), "%v", err)
		return nil
	}
	return &compiled{src: n.Value, pos: nodePos(file, n), prg: prg, ast: ast}
}

func (r *Rules) compileMap(file string, n *yaml.Node, el *errList) []namedExpr {
	if n.Kind == 0 {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		el.add(nodePos(file, n), "details must be a mapping of name: CEL expression")
		return nil
	}
	var out []namedExpr
	for i := 0; i+1 < len(n.Content); i += 2 {
		if c := r.compile(file, n.Content[i+1], nil, el); c != nil {
			out = append(out, namedExpr{name: n.Content[i].Value, compiled: c})
		}
	}
	return out
}

func nodePos(file string, n *yaml.Node) Pos {
	return Pos{File: file, Line: n.Line, Col: n.Column}
}

// exprPos maps a CEL error location (1-based line, 0-based column within
// the expression) to the gates file.
func (r *Rules) exprPos(file string, n *yaml.Node, line, col int) Pos {
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// Block scalars start on the line after the indicator, with the
		// indentation of their first line stripped from every line.
		indent := 0
		if n.Line < len(r.srcLines) {
			l := r.srcLines[n.Line] // the first content line (0-based index)
			indent = len(l) - len(strings.TrimLeft(l, " "))
		}
		return Pos{File: file, Line: n.Line + line, Col: indent + 1 + col}
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		return Pos{File: file, Line: n.Line + line - 1, Col: n.Column + 1 + col}
	default:
		return Pos{File: file, Line: n.Line + line - 1, Col: n.Column + col}
	}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlFileErr places a YAML syntax error at file:line (yaml.v3 reports no
// column).
func yamlFileErr(file string, err error) error {
	s := err.Error()
	if m := yamlLineRE.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &LoadError{Problems: []Problem{{Pos: Pos{File: file, Line: line}, Msg: "YAML syntax: " + s[len(m[0]):]}}}
	}
	return fmt.Errorf("%s: %s", file, yamlErr(err))
}

func yamlErr(err error) string {
	s := err.Error()
	if m := yamlLineRE.FindStringSubmatch(s); m != nil {
		return m[1] + ": " + s[len(m[0]):]
	}
	return strings.TrimPrefix(s, "yaml: ")
}

// The keys each mapping of a gates file may hold, in the order the
// README lists them.
var (
	topKeys      = []string{"version", "schemas", "lists", "variables", "gates"}
	schemaKeys   = []string{"envelope", "payloads"}
	listKeys     = []string{"file", "exceptions"}
	variableKeys = []string{"name", "expression"}
	gateKeys     = []string{"name", "expression", "when", "reason", "reasonExpression", "details", "detailsOnFail", "action", "requires", "description"}
)

// checkKeys rejects misspelled keys that YAML decoding would silently
// ignore, at every level: "expresion:" leaves a gate without its test,
// and "exception:" leaves a word list without its exceptions, which
// compiles and rejects what the exceptions were there to let through. A
// value of the wrong shape is the decoder's to find (see yamlErrors).
func checkKeys(root *yaml.Node, file string) error {
	el := &errList{}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: a gates file is a YAML mapping with `gates:`", file)
	}
	unknown := func(m *yaml.Node, what string, known []string) {
		if m.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; !slices.Contains(known, k.Value) {
				el.add(nodePos(file, k), "%s", suggest.Unknown(what, k.Value, known))
			}
		}
	}
	top := root.Content[0]
	unknown(top, "key", topKeys)
	for i := 0; i+1 < len(top.Content); i += 2 {
		v := top.Content[i+1]
		var items []*yaml.Node
		switch top.Content[i].Value {
		case "schemas":
			unknown(v, "schemas key", schemaKeys)
		case "lists":
			if v.Kind == yaml.MappingNode {
				for j := 1; j < len(v.Content); j += 2 {
					unknown(v.Content[j], "list key", listKeys)
				}
			}
		case "variables", "gates":
			if v.Kind == yaml.SequenceNode {
				items = v.Content
			}
		}
		what, known := "variable key", variableKeys
		if top.Content[i].Value == "gates" {
			what, known = "gate key", gateKeys
		}
		for _, item := range items {
			unknown(item, what, known)
		}
	}
	return el.err()
}

// explain adds a decoding error of the node at prefix in our words, at
// the line and column of the value of the wrong kind, and reports whether
// it could: the decoder's own message names Go types ("cannot unmarshal
// !!map into []rules.gateDoc") and no column.
func (e *errList) explain(n *yaml.Node, prefix, file string, err error) bool {
	ps, ok := yamlmsg.Explain(n, prefix, err)
	for _, p := range ps {
		e.add(Pos{File: file, Line: p.Line, Col: p.Col}, "%s", p.Msg)
	}
	return ok
}
