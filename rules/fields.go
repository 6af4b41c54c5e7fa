package rules

import (
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/common/ast"

	"github.com/pgrules/pgrules/internal/suggest"
)

// shape is what the JSON Schemas say an answer's value may hold, for
// checking the fields a gate names at compile time. A misspelled field is
// otherwise silent in CEL: response.sumary is a run-time "no such key" on
// every answer, and has(response.verificaton_steps) is simply false.
type shape struct {
	props map[string]*shape // nil: the schema names no properties here
	// closed: additionalProperties is false, so a name not in props can
	// never be present.
	closed bool
	items  *shape // the elements of an array
}

// shapeOf reads a JSON Schema document (decoded JSON).
func shapeOf(doc any) *shape {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	s := &shape{}
	if props, ok := m["properties"].(map[string]any); ok {
		s.props = map[string]*shape{}
		for k, v := range props {
			s.props[k] = shapeOf(v)
			if s.props[k] == nil {
				s.props[k] = &shape{}
			}
		}
	}
	if ap, ok := m["additionalProperties"].(bool); ok && !ap && s.props != nil {
		s.closed = true
	}
	if it, ok := m["items"]; ok {
		s.items = shapeOf(it)
	}
	// Combinators: a value may hold what any branch allows.
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		if branches, ok := m[key].([]any); ok {
			for _, b := range branches {
				s = union(s, shapeOf(b))
			}
		}
	}
	return s
}

// union is a shape holding what either may hold.
func union(a, b *shape) *shape {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := &shape{closed: a.closed && b.closed, items: union(a.items, b.items)}
	if a.props == nil && b.props == nil {
		return out
	}
	if a.props == nil || b.props == nil {
		// One side names no properties: anything may be there.
		out.closed = false
	}
	out.props = map[string]*shape{}
	for k, v := range a.props {
		out.props[k] = v
	}
	for k, v := range b.props {
		out.props[k] = union(out.props[k], v)
	}
	return out
}

// fieldProblem is a reference to a field no schema allows.
type fieldProblem struct {
	id      int64  // the expression node, for its position
	path    string // response.payload.titel
	name    string
	known   []string
	suggest string
}

func (p fieldProblem) String() string {
	msg := fmt.Sprintf("%s: the response schema has no field %q here", p.path, p.name)
	if p.suggest != "" {
		msg += fmt.Sprintf("; did you mean %s?", p.suggest)
	}
	return msg + " (known: " + strings.Join(p.known, ", ") + ")"
}

// checkFields finds selections of response fields the schemas cannot
// hold, following them through indexes and comprehension variables.
func checkFields(root *shape, e ast.Expr) []fieldProblem {
	var out []fieldProblem
	type bound struct {
		s    *shape
		path string
	}
	var walk func(e ast.Expr, env map[string]bound) (*shape, string)
	field := func(s *shape, path, name string, id int64) (*shape, string) {
		if s == nil || s.props == nil {
			return nil, ""
		}
		p := path + "." + name
		if c, ok := s.props[name]; ok {
			return c, p
		}
		if s.closed {
			known := make([]string, 0, len(s.props))
			for k := range s.props {
				known = append(known, k)
			}
			sort.Strings(known)
			out = append(out, fieldProblem{id: id, path: p, name: name, known: known, suggest: suggest.Closest(name, known)})
		}
		return nil, ""
	}
	walk = func(e ast.Expr, env map[string]bound) (*shape, string) {
		switch e.Kind() {
		case ast.IdentKind:
			if b, ok := env[e.AsIdent()]; ok {
				return b.s, b.path
			}
			if e.AsIdent() == "response" {
				return root, "response"
			}
		case ast.SelectKind:
			sel := e.AsSelect()
			s, p := walk(sel.Operand(), env)
			if p == "" {
				return nil, ""
			}
			return field(s, p, sel.FieldName(), e.ID())
		case ast.CallKind:
			c := e.AsCall()
			var target *shape
			var tpath string
			if c.IsMemberFunction() {
				target, tpath = walk(c.Target(), env)
			}
			var args []*shape
			var paths []string
			for _, a := range c.Args() {
				s, p := walk(a, env)
				args, paths = append(args, s), append(paths, p)
			}
			if c.FunctionName() == "_[_]" && len(c.Args()) == 2 && paths[0] != "" {
				idx := c.Args()[1]
				if idx.Kind() == ast.LiteralKind {
					switch v := idx.AsLiteral().Value().(type) {
					case string:
						return field(args[0], paths[0], v, e.ID())
					case int64:
						if args[0] != nil && args[0].items != nil {
							return args[0].items, fmt.Sprintf("%s[%d]", paths[0], v)
						}
					}
				}
			}
			_ = target
			_ = tpath
		case ast.ListKind:
			for _, x := range e.AsList().Elements() {
				walk(x, env)
			}
		case ast.MapKind:
			for _, en := range e.AsMap().Entries() {
				walk(en.AsMapEntry().Key(), env)
				walk(en.AsMapEntry().Value(), env)
			}
		case ast.ComprehensionKind:
			c := e.AsComprehension()
			r, rp := walk(c.IterRange(), env)
			inner := map[string]bound{}
			for k, v := range env {
				inner[k] = v
			}
			inner[c.AccuVar()] = bound{}
			if r != nil && r.items != nil && rp != "" {
				inner[c.IterVar()] = bound{s: r.items, path: rp + "[]"}
			} else {
				inner[c.IterVar()] = bound{}
			}
			if v2 := c.IterVar2(); v2 != "" {
				inner[v2] = bound{}
			}
			walk(c.AccuInit(), inner)
			walk(c.LoopCondition(), inner)
			walk(c.LoopStep(), inner)
			walk(c.Result(), inner)
		}
		return nil, ""
	}
	walk(e, map[string]bound{})
	return out
}
