package compiler

import (
	"encoding/binary"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// A plain value kept between the inspection of the files and the
// compilation of their groups. The syntax tree of a file is twenty times
// its size, and its plain value (maps of nodes) not much less, while the
// plain-data path needs a file's value only once its group is compiled:
// the first pass over the files (compileFiles) keeps each plain file's
// value in the compact form below instead of its syntax tree, encoded
// straight from the tree (appendPlainFile), and its group decodes it into
// a fresh value (merging changes the values it merges), so that a cold
// compile holds a few bytes per field of every file rather than every
// file's syntax tree, and builds each file's value once.
//
// The form, recursively: a kind byte, then for a struct the count of its
// fields, each label and value, then the count of its templates and each
// template; for a list the count of its elements and each element; for a
// bool nothing more (the kind says true or false); for an int its
// varint; for a string its length and bytes. A struct's fields and
// templates are as the syntax declares them: a label may come twice, and
// decoding merges what plainFile merges (mergePlain), in the order
// declared.

// The kind bytes of the encoded form.
const (
	encStruct byte = iota + 1
	encList
	encFalse
	encTrue
	encInt
	encString
)

// appendPlainFile appends the encoded plain value of a file to b, and
// reports false when the file is not plain data by its syntax (see
// plainFile): what only merging finds (a conflict, a list given twice) is
// left to decodePlain. It is stricter than plainFile in one way: a
// pattern label's identifier must refer to no declaration, so that a
// file it encodes has no reference at all (see inspectFiles).
func appendPlainFile(b []byte, f *ast.File) ([]byte, bool) {
	return appendPlainStruct(b, f.Decls, true)
}

// appendPlainStruct appends the encoded struct of decls (those of a file
// when file is set, which may hold its package clause).
func appendPlainStruct(b []byte, decls []ast.Decl, file bool) ([]byte, bool) {
	fields, templates := 0, 0
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.CommentGroup:
		case *ast.Package:
			if !file {
				return nil, false
			}
		case *ast.Field:
			if d.Constraint != token.ILLEGAL || len(d.Attrs) > 0 {
				return nil, false
			}
			if anyLabel(d.Label) {
				if d.Label.(*ast.ListLit).Elts[0].(*ast.Ident).Node != nil {
					return nil, false
				}
				templates++
			} else {
				fields++
			}
		default:
			return nil, false
		}
	}
	b = binary.AppendUvarint(append(b, encStruct), uint64(fields))
	ok := true
	for _, d := range decls {
		if f, isField := d.(*ast.Field); isField && !anyLabel(f.Label) {
			name, isPlain := plainLabel(f.Label)
			if !isPlain {
				return nil, false
			}
			b = append(binary.AppendUvarint(b, uint64(len(name))), name...)
			if b, ok = appendPlainExpr(b, f.Value); !ok {
				return nil, false
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(templates))
	for _, d := range decls {
		if f, isField := d.(*ast.Field); isField && anyLabel(f.Label) {
			if b, ok = appendPlainExpr(b, f.Value); !ok {
				return nil, false
			}
		}
	}
	return b, true
}

// appendPlainExpr appends the encoded plain value of an expression (see
// plainExpr).
func appendPlainExpr(b []byte, e ast.Expr) ([]byte, bool) {
	switch e := e.(type) {
	case *ast.StructLit:
		return appendPlainStruct(b, e.Elts, false)
	case *ast.ListLit:
		b = binary.AppendUvarint(append(b, encList), uint64(len(e.Elts)))
		ok := true
		for _, el := range e.Elts {
			if b, ok = appendPlainExpr(b, el); !ok {
				return nil, false
			}
		}
		return b, true
	case *ast.BasicLit:
		switch e.Kind {
		case token.TRUE:
			return append(b, encTrue), true
		case token.FALSE:
			return append(b, encFalse), true
		case token.INT:
			n, ok := plainIntLit(e.Value)
			if !ok {
				return nil, false
			}
			return binary.AppendVarint(append(b, encInt), n), true
		case token.STRING:
			s, ok := plainString(e.Value)
			if !ok {
				return nil, false
			}
			b = binary.AppendUvarint(append(b, encString), uint64(len(s)))
			return append(b, s...), true
		}
	}
	return nil, false
}

// decodePlain decodes a value appendPlain encoded, all of b, and reports
// false when b is not such a value.
func decodePlain(b []byte) (*pnode, bool) {
	d := plainDec{b: b, ok: true}
	n := d.node()
	if !d.ok || len(d.b) != 0 {
		return nil, false
	}
	return n, true
}

// plainDec decodes the encoded form; ok turns false at the first error.
type plainDec struct {
	b  []byte
	ok bool
	pnodeSlab
}

// pnodeSlab allocates nodes a few dozen at a time rather than each on its
// own: the nodes of a file's value are let go together, once it is
// encoded or its group's raw policy is built.
type pnodeSlab struct {
	slab []pnode
}

// plainSlab is how many nodes a pnodeSlab allocates at a time.
const plainSlab = 64

// alloc returns a new node of kind k.
func (sl *pnodeSlab) alloc(k pkind) *pnode {
	if len(sl.slab) == 0 {
		sl.slab = make([]pnode, plainSlab)
	}
	n := &sl.slab[0]
	sl.slab = sl.slab[1:]
	n.kind = k
	return n
}

func (d *plainDec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.ok = false
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items of at least one byte each.
func (d *plainDec) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.ok = false
		return 0
	}
	return int(v)
}

func (d *plainDec) str() string {
	n := d.count()
	if !d.ok {
		return ""
	}
	s, ok := plainWords()[string(d.b[:n])]
	if !ok {
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

// plainWords are the labels and enumerated strings of plainSchema, each
// its own key: most labels and many strings of a policy are among them,
// and decoding one of them allocates no string.
var plainWords = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	seen := map[*snode]bool{}
	var walk func(n *snode)
	walk = func(n *snode) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		for k, f := range n.fields {
			m[k] = k
			walk(f.node)
		}
		for k, data := range n.byModule {
			m[k] = k
			walk(data)
		}
		for _, e := range n.enumS {
			m[e] = e
		}
		walk(n.elem)
	}
	walk(plainSchema())
	m["module"], m["data"] = "module", "data"
	return m
})

// node decodes one value.
func (d *plainDec) node() *pnode {
	if !d.ok || len(d.b) == 0 {
		d.ok = false
		return nil
	}
	k := d.b[0]
	d.b = d.b[1:]
	switch k {
	case encStruct:
		n := d.count()
		st := d.alloc(pStruct)
		st.fields = make(map[string]*pnode, n)
		for i := 0; i < n && d.ok; i++ {
			name := d.str()
			v := d.node()
			if !d.ok {
				return nil
			}
			if old, dup := st.fields[name]; dup {
				// Declared twice: merged as plainField merges.
				d.ok = mergePlain(old, v)
				continue
			}
			st.fields[name] = v
		}
		templates := d.count()
		for i := 0; i < templates && d.ok; i++ {
			t := d.node()
			switch {
			case !d.ok:
			case st.tmpl == nil:
				st.tmpl = t
			default:
				d.ok = mergePlain(st.tmpl, t)
			}
		}
		if !d.ok {
			return nil
		}
		return st
	case encList:
		n := d.count()
		l := d.alloc(pList)
		l.elems = make([]*pnode, 0, n)
		for i := 0; i < n && d.ok; i++ {
			l.elems = append(l.elems, d.node())
		}
		return l
	case encFalse, encTrue:
		n := d.alloc(pBool)
		n.b = k == encTrue
		return n
	case encInt:
		v, n := binary.Varint(d.b)
		if n <= 0 {
			d.ok = false
			return nil
		}
		d.b = d.b[n:]
		in := d.alloc(pInt)
		in.i = v
		return in
	case encString:
		n := d.alloc(pString)
		n.s = d.str()
		return n
	}
	d.ok = false
	return nil
}
