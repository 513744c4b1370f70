package compiler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/token"
)

// isUnknownField reports whether errs say that the field at path is not
// in the schema: CUE's "field not allowed", or the schema's own error for
// a top-level field other than defaults and accounts.
func (c *compilation) isUnknownField(errs []cueerrors.Error, path []string) bool {
	for _, e := range errs {
		if format, _ := e.Msg(); format == "field not allowed" {
			return true
		}
		if len(path) == 1 && c.schemaAt(path) == nil && !c.userPosition(e) {
			return true
		}
	}
	return false
}

// underUnknown reports whether a proper prefix of path is an unknown field.
func underUnknown(unknown map[string]bool, path []string) bool {
	for i := 1; i < len(path); i++ {
		if unknown[cuePath(path[:i])] {
			return true
		}
	}
	return false
}

// userPosition reports whether any position of e is in a policy file.
func (c *compilation) userPosition(e cueerrors.Error) bool {
	for _, p := range cueerrors.Positions(e) {
		if c.userFiles[position(p).File] {
			return true
		}
	}
	return false
}

// conflict turns the errors of two values of the policy that disagree
// (the same field set to 2 in a template and to 10 in an account) into
// one diagnostic naming both values, as written, and, when one of them is
// a template's, how to make it a default the other may override. It
// reports false when no error of errs is such a conflict: a value the
// schema rejects is the business of disjunction or cueDiagnostic.
func (c *compilation) conflict(code string, errs []cueerrors.Error, path []string) (Diagnostic, bool) {
	for _, e := range errs {
		if format, _ := e.Msg(); format != "conflicting values %s and %s" {
			continue
		}
		var positions []Position
		inPolicy := true
		for _, p := range cueerrors.Positions(e) {
			pos := position(p)
			if !c.userFiles[pos.File] {
				inPolicy = false
				break
			}
			if !slices.Contains(positions, pos) {
				positions = append(positions, pos)
			}
		}
		if !inPolicy || len(positions) != 2 {
			continue
		}
		a, okA := c.valueAt(positions[0])
		b, okB := c.valueAt(positions[1])
		if !okA || !okB {
			continue
		}
		d := c.cueDiagnostic(code, e, path)
		msg := fmt.Sprintf("conflicting values %s and %s", a.text, b.text)
		switch {
		case a.template && !b.template:
			msg += templateHint(a, positions[0])
		case b.template && !a.template:
			msg += templateHint(b, positions[1])
		}
		d.Message = d.Path + ": " + msg
		return d, true
	}
	return Diagnostic{}, false
}

// templateHint explains a template's value that another value contradicts.
func templateHint(v policyValue, at Position) string {
	return fmt.Sprintf(": the template at %s gives every account %s, which no account can change; "+
		"to make it a default that an account may override, write *%s | %s", at, v.text, v.text, v.kind)
}

// policyValue is a value as a policy file writes it.
type policyValue struct {
	text     string // as written (a literal) or formatted (an expression)
	literal  bool   // a basic literal: 2, "wav", true
	kind     string // for a literal, its CUE type: int, string, bool; else _
	template bool   // inside a pattern constraint ([_]: ...)
}

// valueAt returns the expression of a policy file that starts at pos, and
// whether it is inside a template (a field whose label is a pattern
// constraint such as [_] or [string]).
func (c *compilation) valueAt(pos Position) (policyValue, bool) {
	for _, f := range c.asts {
		if f.Filename != pos.File {
			continue
		}
		var found *policyValue
		var inTemplate []bool
		ast.Walk(f, func(n ast.Node) bool {
			if found != nil {
				return false
			}
			if fd, ok := n.(*ast.Field); ok {
				_, pattern := fd.Label.(*ast.ListLit)
				inTemplate = append(inTemplate, pattern || len(inTemplate) > 0 && inTemplate[len(inTemplate)-1])
			}
			expr, ok := n.(ast.Expr)
			if !ok || position(n.Pos()) != pos {
				return true
			}
			v := policyValue{kind: "_", template: len(inTemplate) > 0 && inTemplate[len(inTemplate)-1]}
			if lit, ok := expr.(*ast.BasicLit); ok {
				v.text, v.literal = lit.Value, true
				switch lit.Kind {
				case token.INT, token.FLOAT:
					v.kind = "number"
					if lit.Kind == token.INT {
						v.kind = "int"
					}
				case token.STRING:
					v.kind = "string"
				case token.TRUE, token.FALSE:
					v.kind = "bool"
				}
			} else if b, err := format.Node(expr); err == nil {
				v.text = strings.TrimSpace(string(b))
			} else {
				return true
			}
			found = &v
			return false
		}, func(n ast.Node) {
			if _, ok := n.(*ast.Field); ok && len(inTemplate) > 0 {
				inTemplate = inTemplate[:len(inTemplate)-1]
			}
		})
		if found != nil {
			return *found, true
		}
	}
	return policyValue{}, false
}

// allowedValues returns the values the schema allows at path when it
// allows only a few (an enum: record_sample_rate, format), formatted as
// CUE writes them, or nil.
func (c *compilation) allowedValues(path []string) []string {
	n := c.schemaAt(path)
	if n == nil {
		return nil
	}
	var out []string
	for _, i := range n.enumI {
		out = append(out, strconv.FormatInt(i, 10))
	}
	for _, s := range n.enumS {
		out = append(out, strconv.Quote(s))
	}
	sortValues(out)
	return out
}
