package compiler

import (
	"cuelang.org/go/cue/ast"
)

// selfReferences reports bare references from inside a struct to the
// struct itself (x: {x} or x: {b: x}). CUE rejects them as structural
// cycles, but some forms (a struct that embeds itself) send its evaluator
// into unbounded recursion, which no recover can stop; so they are
// reported here, from the syntax, before CUE evaluates anything. A
// selection such as x.a is not a cycle and is left alone.
func (c *compilation) selfReferences(f *ast.File) {
	var stack []ast.Node
	ancestors := map[ast.Node]bool{}
	ast.Walk(f, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && id.Node != nil && ancestors[id.Node] {
			selected := false
			if len(stack) > 0 {
				switch p := stack[len(stack)-1].(type) {
				case *ast.SelectorExpr:
					selected = p.X == id
				case *ast.IndexExpr:
					selected = p.X == id
				}
			}
			if !selected {
				c.errorf(CodeSchema, position(id.Pos()), "",
					"structural cycle: %s refers to the struct it is part of", id.Name)
			}
		}
		stack = append(stack, n)
		ancestors[n] = true
		return true
	}, func(n ast.Node) {
		stack = stack[:len(stack)-1]
		delete(ancestors, n)
	})
}
