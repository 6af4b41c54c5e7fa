package rules

import (
	"cel.dev/cel-go/common/ast"
)

// expressions are every compiled expression of the rules: gates (when,
// expression, reason, details) and variables.
func (r *Rules) expressions() []*compiled {
	var all []*compiled
	for _, g := range r.gates {
		for _, c := range []*compiled{g.expr, g.when, g.reasonExpr} {
			if c != nil {
				all = append(all, c)
			}
		}
		for _, d := range append(append([]namedExpr{}, g.details...), g.failDetails...) {
			all = append(all, d.compiled)
		}
	}
	for _, v := range r.variables {
		all = append(all, &compiled{src: v.Expr, pos: v.Pos, ast: v.ast})
	}
	return all
}

// responseFields names the top-level fields of the answer the expressions
// can read: every use of `response` is a field of it (response.f,
// has(response.f), response["f"]). nil means some expression takes
// response as a whole (passes it on, iterates it, indexes it by a computed
// key): then every field can be read. payload_type is always named: the
// contract reads it.
//
// The rules build only these fields' values from an answer whose schema
// verdict is known; the others are checked and copied, never turned into
// Go values (most of an answer is its payload, which the shipped gates
// never read).
func responseFields(exprs []*compiled) map[string]bool {
	fields := map[string]bool{"payload_type": true}
	for _, c := range exprs {
		if !readFields(c.ast.NativeRep().Expr(), fields, false) {
			return nil
		}
	}
	return fields
}

// readFields adds the fields of response e reads to fields; false when e
// reads response as a whole. shadowed: a comprehension variable named
// response hides it here (then every use is the variable's).
func readFields(e ast.Expr, fields map[string]bool, shadowed bool) bool {
	isResponse := func(x ast.Expr) bool {
		return !shadowed && x.Kind() == ast.IdentKind && x.AsIdent() == "response"
	}
	switch e.Kind() {
	case ast.IdentKind:
		return !isResponse(e)
	case ast.SelectKind:
		sel := e.AsSelect()
		if isResponse(sel.Operand()) {
			fields[sel.FieldName()] = true
			return true
		}
		return readFields(sel.Operand(), fields, shadowed)
	case ast.CallKind:
		c := e.AsCall()
		args := c.Args()
		if c.FunctionName() == "_[_]" && len(args) == 2 && isResponse(args[0]) && args[1].Kind() == ast.LiteralKind {
			if k, ok := args[1].AsLiteral().Value().(string); ok {
				fields[k] = true
				return true
			}
		}
		if c.IsMemberFunction() && !readFields(c.Target(), fields, shadowed) {
			return false
		}
		for _, a := range args {
			if !readFields(a, fields, shadowed) {
				return false
			}
		}
		return true
	case ast.ListKind:
		for _, x := range e.AsList().Elements() {
			if !readFields(x, fields, shadowed) {
				return false
			}
		}
		return true
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			if !readFields(en.AsMapEntry().Key(), fields, shadowed) || !readFields(en.AsMapEntry().Value(), fields, shadowed) {
				return false
			}
		}
		return true
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			if !readFields(f.AsStructField().Value(), fields, shadowed) {
				return false
			}
		}
		return true
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		if !readFields(c.IterRange(), fields, shadowed) {
			return false
		}
		// Each part sees the variables in scope there: the accumulator's
		// start none, the loop both, the result the accumulator.
		accu := shadowed || c.AccuVar() == "response"
		loop := accu || c.IterVar() == "response" || c.IterVar2() == "response"
		return readFields(c.AccuInit(), fields, shadowed) && readFields(c.LoopCondition(), fields, loop) &&
			readFields(c.LoopStep(), fields, loop) && readFields(c.Result(), fields, accu)
	case ast.LiteralKind:
		return true
	}
	// A kind this walk does not know: assume the worst.
	return false
}
