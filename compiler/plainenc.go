package compiler

import (
	"encoding/binary"
	"sync"
)

// A plain value kept between the inspection of the files and the
// compilation of their groups. The syntax tree of a file is twenty times
// its size, and its plain value (maps of nodes) not much less, while the
// plain-data path needs a file's value only once its group is compiled:
// the first pass over the files (compileFiles) keeps each plain file's
// value in the compact form below instead of its syntax tree, and its
// group decodes it into a fresh value (merging changes the values it
// merges), so that a cold compile holds a few bytes per field of every
// file rather than every file's syntax tree.
//
// The form, recursively: a kind byte, then for a struct the count of its
// fields, each label and value (in no particular order: merging does not
// depend on it), then 0, or 1 and the template; for a list the count of
// its elements and each element; for a bool nothing more (the kind says
// true or false); for an int its varint; for a string its length and bytes.

// The kind bytes of the encoded form.
const (
	encStruct byte = iota + 1
	encList
	encFalse
	encTrue
	encInt
	encString
)

// appendPlain appends the encoded form of n to b.
func (n *pnode) appendPlain(b []byte) []byte {
	switch n.kind {
	case pStruct:
		b = append(b, encStruct)
		b = binary.AppendUvarint(b, uint64(len(n.fields)))
		for k, v := range n.fields {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
			b = v.appendPlain(b)
		}
		if n.tmpl == nil {
			return append(b, 0)
		}
		return n.tmpl.appendPlain(append(b, 1))
	case pList:
		b = append(b, encList)
		b = binary.AppendUvarint(b, uint64(len(n.elems)))
		for _, v := range n.elems {
			b = v.appendPlain(b)
		}
		return b
	case pBool:
		if n.b {
			return append(b, encTrue)
		}
		return append(b, encFalse)
	case pInt:
		return binary.AppendVarint(append(b, encInt), n.i)
	}
	b = binary.AppendUvarint(append(b, encString), uint64(len(n.s)))
	return append(b, n.s...)
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
			st.fields[name] = v
		}
		if !d.ok || len(d.b) == 0 {
			d.ok = false
			return nil
		}
		has := d.b[0]
		d.b = d.b[1:]
		switch has {
		case 0:
		case 1:
			st.tmpl = d.node()
		default:
			d.ok = false
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
