package compiler

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// The plain-data path. A policy file that is plain data (struct, list and
// scalar literals only: no references, comprehensions, definitions,
// disjunctions, imports, let clauses, interpolations or attributes) means
// what its syntax says: evaluating it with CUE only unifies it with the
// schema. One kind of template is plain data too: a pattern constraint
// that matches every label (`[_]: v` or `[string]: v`, v plain) in a
// struct the schema makes a map (accounts, users, devices, ...) unifies v
// with each of that struct's fields, which plain.go does in Go
// (applyTemplates); any other pattern is left to CUE. An account group whose files, and the
// shared files, are all plain data is therefore decoded from the syntax
// trees straight into the raw policy, checked against plainSchema (a Go
// rendering of the embedded schema, tested against it field by field in
// plain_test.go), and checked and resolved as usual, with no CUE
// evaluation.
//
// The path is taken only when nothing is in doubt. Anything it does not
// decode exactly as CUE would (a number that is not a plain decimal, a
// string that is not a plain double-quoted one, a list or value given
// twice with a conflict), anything the schema rejects, and any diagnostic
// at all (whose position would come from CUE's value) sends the group
// back to CUE, which then reports exactly what it always did.
// FuzzPlainDataPath holds the two paths to the same tables and
// diagnostics.

// plainDataPath turns the path on; the differential tests turn it off.
var plainDataPath = true

// pkind is the kind of a plain value.
type pkind uint8

const (
	pStruct pkind = iota
	pList
	pBool
	pInt
	pString
)

// pnode is a plain value: what a plain-data file's syntax says, with the
// declarations of the same field merged.
type pnode struct {
	kind   pkind
	fields map[string]*pnode
	// tmpl is a struct's template: the value of its pattern constraints
	// that match every label, unified with each field (applyTemplates).
	tmpl  *pnode
	elems []*pnode
	b     bool
	i     int64
	s     string
}

// plainFile returns the plain value of a file, or false when the file is
// not plain data.
func plainFile(f *ast.File) (*pnode, bool) {
	var sl pnodeSlab
	root := sl.alloc(pStruct)
	root.fields = make(map[string]*pnode, len(f.Decls))
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.Package, *ast.CommentGroup:
		case *ast.Field:
			if !sl.plainField(root, d) {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return root, true
}

// plainField adds a field declaration to a struct.
func (sl *pnodeSlab) plainField(st *pnode, f *ast.Field) bool {
	if f.Constraint != token.ILLEGAL || len(f.Attrs) > 0 {
		return false
	}
	if anyLabel(f.Label) {
		v, ok := sl.plainExpr(f.Value)
		if !ok {
			return false
		}
		if st.tmpl == nil {
			st.tmpl = v
			return true
		}
		return mergePlain(st.tmpl, v)
	}
	name, ok := plainLabel(f.Label)
	if !ok {
		return false
	}
	v, ok := sl.plainExpr(f.Value)
	if !ok {
		return false
	}
	if old, dup := st.fields[name]; dup {
		return mergePlain(old, v)
	}
	st.fields[name] = v
	return true
}

// plainLabel returns the name of a regular field's label: an identifier
// that is not a definition or hidden, or a plain double-quoted string.
func plainLabel(l ast.Label) (string, bool) {
	switch l := l.(type) {
	case *ast.Ident:
		if l.Name == "" || strings.HasPrefix(l.Name, "#") || strings.HasPrefix(l.Name, "_") ||
			!ast.IsValidIdent(l.Name) {
			return "", false
		}
		return l.Name, true
	case *ast.BasicLit:
		if l.Kind != token.STRING {
			return "", false
		}
		return plainString(l.Value)
	}
	return "", false
}

// anyLabel reports whether l is a pattern that matches every label:
// `[_]` or `[string]`.
func anyLabel(l ast.Label) bool {
	ll, ok := l.(*ast.ListLit)
	if !ok || len(ll.Elts) != 1 {
		return false
	}
	id, ok := ll.Elts[0].(*ast.Ident)
	return ok && (id.Name == "_" || id.Name == "string")
}

// plainString unquotes a single-line double-quoted string literal.
func plainString(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || strings.HasPrefix(lit, `"""`) || strings.Contains(lit, `\(`) {
		return "", false
	}
	s, err := literal.Unquote(lit)
	if err != nil || !utf8.ValidString(s) {
		return "", false
	}
	return s, true
}

var plainInt = lazyRegexp(`^(0|[1-9][0-9]*)$`)

// plainIntLit returns the value of an int literal that is a plain
// decimal of 64 bits.
func plainIntLit(lit string) (int64, bool) {
	if !plainInt().MatchString(lit) {
		return 0, false
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	return n, err == nil
}

// plainExpr returns the plain value of an expression, or false when it is
// not plain data.
func (sl *pnodeSlab) plainExpr(e ast.Expr) (*pnode, bool) {
	switch e := e.(type) {
	case *ast.StructLit:
		st := sl.alloc(pStruct)
		st.fields = make(map[string]*pnode, len(e.Elts))
		for _, el := range e.Elts {
			switch el := el.(type) {
			case *ast.CommentGroup:
			case *ast.Field:
				if !sl.plainField(st, el) {
					return nil, false
				}
			default:
				return nil, false
			}
		}
		return st, true
	case *ast.ListLit:
		l := sl.alloc(pList)
		l.elems = make([]*pnode, 0, len(e.Elts))
		for _, el := range e.Elts {
			v, ok := sl.plainExpr(el)
			if !ok {
				return nil, false
			}
			l.elems = append(l.elems, v)
		}
		return l, true
	case *ast.BasicLit:
		switch e.Kind {
		case token.TRUE, token.FALSE:
			n := sl.alloc(pBool)
			n.b = e.Kind == token.TRUE
			return n, true
		case token.INT:
			n, ok := plainIntLit(e.Value)
			if !ok {
				return nil, false
			}
			in := sl.alloc(pInt)
			in.i = n
			return in, true
		case token.STRING:
			s, ok := plainString(e.Value)
			if !ok {
				return nil, false
			}
			n := sl.alloc(pString)
			n.s = s
			return n, true
		}
	}
	return nil, false
}

// mergePlain unifies b into a as CUE would, for what it can be sure of:
// structs merge, equal scalars are one; lists and conflicts are left to
// CUE.
func mergePlain(a, b *pnode) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case pStruct:
		for k, v := range b.fields {
			if old, ok := a.fields[k]; ok {
				if !mergePlain(old, v) {
					return false
				}
				continue
			}
			a.fields[k] = v
		}
		switch {
		case b.tmpl == nil:
		case a.tmpl == nil:
			a.tmpl = b.tmpl
		default:
			// Two templates of one struct: CUE unifies both with each
			// field, as their unification; two that conflict are an
			// error only where a field exists, which CUE is left to say.
			return mergePlain(a.tmpl, b.tmpl)
		}
		return true
	case pList:
		return false
	default:
		return a.b == b.b && a.i == b.i && a.s == b.s
	}
}

// plainPolicy decodes a group's files, each shared and group file, into
// the raw policy, or reports false when the group must go through CUE.
func plainPolicy(files []*ast.File) (rawPolicy, bool) {
	// The smallest files first: a template or a reference most often
	// sits in a small shared file, and is found before the large files
	// are decoded for nothing. The order does not change the outcome:
	// merging is commutative.
	order := make([]*ast.File, len(files))
	copy(order, files)
	for _, f := range order {
		if f == nil {
			return rawPolicy{}, false
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].End().Offset() < order[j].End().Offset() })
	values := make([]*pnode, 0, len(order))
	for _, f := range order {
		v, ok := plainFile(f)
		if !ok {
			return rawPolicy{}, false
		}
		values = append(values, v)
	}
	return plainPolicyOf(values)
}

// plainPolicyOf merges the plain values of a group's files into the raw
// policy, or reports false when the group must go through CUE. It changes
// the values.
func plainPolicyOf(values []*pnode) (rawPolicy, bool) {
	root := &pnode{kind: pStruct, fields: map[string]*pnode{}}
	for _, v := range values {
		if !mergePlain(root, v) {
			return rawPolicy{}, false
		}
	}
	if !applyTemplates(root, plainSchema()) || !plainSchema().check(root) {
		return rawPolicy{}, false
	}
	return rawPolicyOf(root)
}

// applyTemplates unifies each struct's template with each of its fields,
// as CUE does, and reports false, leaving the policy to CUE, where that
// is in doubt: a template in a struct the schema does not make a map (a
// closed struct, an action's data) or a conflict. s is n's schema (nil:
// none known).
func applyTemplates(n *pnode, s *snode) bool {
	switch n.kind {
	case pList:
		for _, e := range n.elems {
			var es *snode
			if s != nil && s.kind == sList {
				es = s.elem
			}
			if !applyTemplates(e, es) {
				return false
			}
		}
		return true
	case pStruct:
	default:
		return true
	}
	if n.tmpl != nil {
		if s == nil || s.kind != sMap {
			return false
		}
		for _, f := range n.fields {
			if !mergePlain(f, n.tmpl.clone()) {
				return false
			}
		}
		n.tmpl = nil
	}
	for k, f := range n.fields {
		var fs *snode
		if s != nil {
			switch s.kind {
			case sStruct:
				fs = s.fields[k].node
			case sMap:
				fs = s.elem
			}
		}
		if !applyTemplates(f, fs) {
			return false
		}
	}
	return true
}

// clone returns a deep copy of n, which merging into another value may
// then change.
func (n *pnode) clone() *pnode {
	c := *n
	if n.fields != nil {
		c.fields = make(map[string]*pnode, len(n.fields))
		for k, v := range n.fields {
			c.fields[k] = v.clone()
		}
	}
	if n.elems != nil {
		c.elems = make([]*pnode, len(n.elems))
		for i, v := range n.elems {
			c.elems[i] = v.clone()
		}
	}
	if n.tmpl != nil {
		c.tmpl = n.tmpl.clone()
	}
	return &c
}
