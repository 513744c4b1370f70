package input

import (
	"fmt"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/recpol/recpol/internal/readlimit"
	"github.com/recpol/recpol/internal/suggest"
)

// DefaultMaxBytes is the size limit of a file read by a Loader without one.
const DefaultMaxBytes = 1 << 20

// Loader reads one kind of CUE input (JSON is CUE too) and checks it
// against its schema.
type Loader struct {
	// Kind names the input in messages: "runtime config", "scenario".
	Kind string
	// SchemaName names the schema in CUE's positions, after schemaPrefix
	// so that no input file has its name; no diagnostic points there.
	SchemaName string
	// Schema is the CUE source of the schema.
	Schema []byte
	// Definition is the definition of the schema an input must satisfy
	// (#Runtime); empty: the whole schema.
	Definition string
	// MaxBytes bounds the size of a file ReadFile reads; 0 is
	// DefaultMaxBytes.
	MaxBytes int64
}

// schemaPrefix starts the file name of a schema in CUE's positions: an
// input named as the schema (runtime.cue) must not take its positions for
// its own.
const schemaPrefix = "<schema>/"

// Input is a loaded file: its own value and the value unified with the
// schema.
type Input struct {
	// File is the name of the input in positions.
	File string
	// Raw is the file's value on its own, whose positions are all in
	// File.
	Raw cue.Value
	// Value is Raw unified with the schema and validated: concrete, and
	// with the schema's defaults.
	Value cue.Value

	conv converter
}

// ReadFile reads a file within the loader's size limit and loads it. An
// I/O error is returned wrapped; a file that does not satisfy the schema
// is reported as Diagnostics.
func (l Loader) ReadFile(path string) (*Input, error) {
	max := l.MaxBytes
	if max == 0 {
		max = DefaultMaxBytes
	}
	data, err := readlimit.File(path, max)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", l.Kind, err)
	}
	return l.Load(path, data)
}

// Load compiles data, named name in positions, unifies it with the schema
// and validates it. The error is Diagnostics listing every problem CUE
// found, positioned in the file, unless the schema itself is broken.
func (l Loader) Load(name string, data []byte) (*Input, error) {
	ctx := cuecontext.New()
	schema := ctx.CompileBytes(l.Schema, cue.Filename(schemaPrefix+l.SchemaName))
	if l.Definition != "" {
		schema = schema.LookupPath(cue.ParsePath(l.Definition))
	}
	if err := schema.Err(); err != nil {
		return nil, fmt.Errorf("%s schema: %w", l.Kind, err)
	}
	in := &Input{File: name, conv: converter{file: name, kind: l.Kind, schema: schema}}
	f, err := parser.ParseFile(name, data, parser.ParseComments)
	if err != nil {
		return nil, in.conv.convert(CodeSyntax, err)
	}
	in.Raw = ctx.BuildFile(f)
	in.conv.raw = in.Raw
	if err := in.Raw.Err(); err != nil {
		return nil, in.conv.convert(CodeSchema, err)
	}
	in.Value = schema.Unify(in.Raw)
	if err := in.Value.Validate(cue.Concrete(true)); err != nil {
		ds := in.conv.convert(CodeSchema, err)
		ds = append(ds, in.conv.hiddenUnknownFields(ds)...)
		ds.Sort()
		return nil, ds
	}
	return in, nil
}

// Decode decodes the input's value into x (see cue.Value.Decode). The
// error is Diagnostics.
func (in *Input) Decode(x any) error {
	if err := in.Value.Decode(x); err != nil {
		return in.conv.convert(CodeSchema, err)
	}
	return nil
}

// Errors converts CUE errors about the input (those of a value looked up
// in it, say) into Diagnostics with the given code.
func (in *Input) Errors(code string, err error) Diagnostics {
	return in.conv.convert(code, err)
}

// At returns the position in the file of the value at a CUE path
// (calls[0].legs[1].name), or of its nearest parent written in the file,
// or the file alone.
func (in *Input) At(path string) Position {
	return in.conv.locate(splitPath(path))
}

// Errorf returns a diagnostic of code CodeInvalid about the value at path,
// positioned by At, whose message is the path and the formatted text, as
// a CUE error's would be.
func (in *Input) Errorf(path, format string, args ...any) Diagnostic {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return Diagnostic{Code: CodeInvalid, Severity: Error, Position: in.At(path), Path: path, Message: msg}
}

// splitPath splits a path as PathString writes it into NormalizePath's
// labels.
func splitPath(path string) []string {
	if path == "" {
		return nil
	}
	sel := cue.ParsePath(path).Selectors()
	out := make([]string, len(sel))
	for i, s := range sel {
		if s.Type() == cue.IndexLabel {
			out[i] = "[" + strconv.Itoa(s.Index()) + "]"
		} else {
			out[i] = Unquote(s.String())
		}
	}
	return out
}

// converter turns the CUE errors of one input file into diagnostics.
type converter struct {
	file   string    // the input's name
	kind   string    // what it is, for messages
	raw    cue.Value // the file's value on its own, to find a path in it
	schema cue.Value // the schema it must satisfy, for the names of fields
}

// group is the errors of one path.
type group struct {
	path []string
	errs []cueerrors.Error
}

// convert turns err into diagnostics, one per offending value: the
// alternatives of a failed disjunction become one diagnostic that lists
// what is allowed, and the fields of an unknown field are not reported
// again.
func (c converter) convert(code string, err error) Diagnostics {
	var groups []*group
	byPath := map[string]*group{}
	for _, e := range cueerrors.Errors(err) {
		path := e.Path()
		if len(path) > 0 && strings.HasPrefix(path[0], "#") {
			path = path[1:] // the schema's definition
		}
		path = NormalizePath(path)
		key := strings.Join(path, "\x00")
		g := byPath[key]
		if g == nil {
			g = &group{path: path}
			byPath[key] = g
			groups = append(groups, g)
		}
		g.errs = append(g.errs, e)
	}
	unknown := map[string]bool{}
	for _, g := range groups {
		for _, e := range g.errs {
			if format, _ := e.Msg(); format == fmtNotAllowed {
				unknown[PathString(g.path)] = true
			}
		}
	}
	var out Diagnostics
	for _, g := range groups {
		if underUnknown(unknown, g.path) || c.summaryOnly(g, groups) {
			continue
		}
		out = append(out, c.group(code, g)...)
	}
	if len(out) == 0 {
		// Not a CUE error: the message is all there is.
		out = Diagnostics{{Code: code, Severity: Error, Position: Position{File: c.file}, Message: err.Error()}}
	}
	out.Sort()
	return out
}

// group converts the errors of one path.
func (c converter) group(code string, g *group) Diagnostics {
	p := PathString(g.path)
	last := ""
	if n := len(g.path); n > 0 {
		last = g.path[n-1]
	}
	diag := func(code, msg string, e cueerrors.Error) Diagnostic {
		d := Diagnostic{Code: code, Severity: Error, Path: p, Message: msg}
		d.Position, d.Related = c.positions(e, g.path)
		if p != "" {
			d.Message = p + ": " + msg
		}
		return d
	}
	if alts, bad, ok := Disjunction(g.errs); ok {
		d := diag(code, NotAllowed(bad, alts), g.errs[len(g.errs)-1])
		d.Related = nil
		return Diagnostics{d}
	}
	// A disjunction none of whose alternatives accepts the value for
	// another reason than a conflict (a bound, say): those reasons are
	// the news, the conflicts with the other alternatives (a default)
	// are not.
	errs := g.errs
	if other := withoutDisjunction(errs); len(other) > 0 && len(other) < len(errs) {
		errs = other
	}
	var out Diagnostics
	for _, e := range errs {
		code, msg := Restate(code, e, last)
		if format, _ := e.Msg(); format == fmtNotAllowed {
			msg = c.unknownField(g.path)
		}
		out = append(out, diag(code, msg, e))
	}
	return out
}

// withoutDisjunction returns the errors of errs that are neither the
// summary of an empty disjunction nor the conflict of an alternative, when
// errs hold such a summary; otherwise nil.
func withoutDisjunction(errs []cueerrors.Error) []cueerrors.Error {
	var other []cueerrors.Error
	summary := false
	for _, e := range errs {
		switch format, _ := e.Msg(); format {
		case fmtDisjunctions:
			summary = true
		case fmtConflict, fmtMismatched:
		default:
			other = append(other, e)
		}
	}
	if !summary {
		return nil
	}
	return other
}

// summaryOnly reports whether g holds only the summaries of empty
// disjunctions while the errors of the alternatives are at paths below it
// (a struct none of whose forms accepts a field): those say what is wrong.
func (c converter) summaryOnly(g *group, groups []*group) bool {
	for _, e := range g.errs {
		if format, _ := e.Msg(); format != fmtDisjunctions {
			return false
		}
	}
	prefix := PathString(g.path)
	for _, o := range groups {
		if len(o.path) > len(g.path) && strings.HasPrefix(PathString(o.path), prefix) {
			return true
		}
	}
	return false
}

// underUnknown reports whether a proper prefix of path is an unknown field.
func underUnknown(unknown map[string]bool, path []string) bool {
	for i := 1; i < len(path); i++ {
		if unknown[PathString(path[:i])] {
			return true
		}
	}
	return false
}

// positions returns the first position of e in the input file and its
// other positions there; when e has none there, where the path is in the
// file. The positions of the structs that enclose the value (CUE lists
// them too) are not the value's.
func (c converter) positions(e cueerrors.Error, path []string) (Position, []Position) {
	enclosing := c.enclosing(path)
	var primary Position
	var related []Position
	for _, p := range cueerrors.Positions(e) {
		pos := PositionOf(p)
		if pos.File != c.file || containsPos(enclosing, pos) {
			continue
		}
		if primary.File == "" {
			primary = pos
		} else if pos != primary && !containsPos(related, pos) {
			related = append(related, pos)
		}
	}
	if primary.File == "" {
		primary = c.locate(path)
	}
	return primary, related
}

// enclosing returns the positions of the values that enclose the one at
// path in the file: the file's own, then each parent's.
func (c converter) enclosing(path []string) []Position {
	if !c.raw.Exists() {
		return nil
	}
	sels := selectors(path)
	out := []Position{PositionOf(c.raw.Pos())}
	for i := 1; i < len(sels); i++ {
		v := c.raw.LookupPath(cue.MakePath(sels[:i]...))
		out = append(out, PositionOf(v.Pos()))
		if st, ok := v.Source().(interface{ Pos() token.Pos }); ok {
			out = append(out, PositionOf(st.Pos()))
		}
	}
	return out
}

func containsPos(ps []Position, p Position) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// locate returns where the value at path, or its nearest parent, is
// written in the file, or the file alone.
func (c converter) locate(path []string) Position {
	if c.raw.Exists() {
		sels := selectors(path)
		for ; len(sels) > 0; sels = sels[:len(sels)-1] {
			if p := PositionOf(c.raw.LookupPath(cue.MakePath(sels...)).Pos()); p.File == c.file && p.Line > 0 {
				return p
			}
		}
	}
	return Position{File: c.file}
}

// selectors turns NormalizePath's labels into CUE selectors.
func selectors(path []string) []cue.Selector {
	sels := make([]cue.Selector, 0, len(path))
	for _, p := range path {
		if i, ok := index(p); ok {
			sels = append(sels, cue.Index(i))
		} else {
			sels = append(sels, cue.Str(p))
		}
	}
	return sels
}

// index returns the index of a "[i]" label.
func index(label string) (int, bool) {
	s, ok := strings.CutPrefix(label, "[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil
}

// unknownField says that the field at path is not in the schema, with
// the fields it may have meant there.
func (c converter) unknownField(path []string) string {
	last := path[len(path)-1]
	fields := c.fieldsAt(path[:len(path)-1])
	if len(path) == 1 && len(fields) > 0 && len(fields) <= 4 {
		return fmt.Sprintf("unknown top-level field %q: %s %s has only %s",
			last, article(c.kind), c.kind, andList(fields))
	}
	return fmt.Sprintf("unknown field %q%s", last, DidYouMean(last, fields))
}

// hiddenUnknownFields reports the fields of the file the schema does not
// declare that ds do not report already. CUE reports an unknown field
// only when nothing else is wrong in its struct; this walk, driven by the
// schema, finds the others so that every error is reported at once.
func (c converter) hiddenUnknownFields(ds Diagnostics) Diagnostics {
	reported := map[string]bool{}
	for _, d := range ds {
		reported[d.Path] = true
	}
	var out Diagnostics
	var walk func(val, sch cue.Value, path []string)
	walk = func(val, sch cue.Value, path []string) {
		if !closedStruct(sch) {
			return
		}
		it, err := val.Fields()
		if err != nil {
			return
		}
		for it.Next() {
			label := it.Selector().Unquoted()
			p := append(append([]string(nil), path...), label)
			sub := field(sch, label)
			if !sub.Exists() {
				if ps := PathString(p); !reported[ps] {
					reported[ps] = true
					pos := PositionOf(it.Value().Pos())
					if pos.File != c.file {
						pos = Position{File: c.file}
					}
					out = append(out, Diagnostic{Code: CodeSchema, Severity: Error, Position: pos, Path: ps,
						Message: ps + ": " + c.unknownField(p)})
				}
				continue
			}
			switch it.Value().Kind() {
			case cue.StructKind:
				walk(it.Value(), sub, p)
			case cue.ListKind:
				elem := sub.LookupPath(cue.MakePath(cue.AnyIndex))
				items, err := it.Value().List()
				for i := 0; err == nil && elem.Exists() && items.Next(); i++ {
					walk(items.Value(), elem, append(append([]string(nil), p...), "["+strconv.Itoa(i)+"]"))
				}
			}
		}
	}
	walk(c.raw, c.schema, nil)
	return out
}

// closedStruct reports whether a schema value is one struct (not a
// disjunction of several, whose fields differ) that declares fields.
func closedStruct(v cue.Value) bool {
	if !v.Exists() || v.IncompleteKind() != cue.StructKind {
		return false
	}
	if op, _ := v.Expr(); op == cue.OrOp {
		return false
	}
	if v.LookupPath(cue.MakePath(cue.AnyString)).Exists() {
		return false // a map: any label is allowed
	}
	it, err := v.Fields(cue.Optional(true))
	return err == nil && it.Next()
}

// field returns the schema's field of a struct, required, optional or by
// a pattern.
func field(v cue.Value, label string) cue.Value {
	next := v.LookupPath(cue.MakePath(cue.Str(label)))
	if !next.Exists() {
		next = v.LookupPath(cue.MakePath(cue.Str(label).Optional()))
	}
	if !next.Exists() {
		next = v.LookupPath(cue.MakePath(cue.AnyString))
	}
	return next
}

// fieldsAt returns the names of the fields the schema declares at path,
// or nil when the path cannot be followed in it.
func (c converter) fieldsAt(path []string) []string {
	v := c.schema
	for _, p := range path {
		if !v.Exists() {
			return nil
		}
		if _, ok := index(p); ok {
			v = v.LookupPath(cue.MakePath(cue.AnyIndex))
			continue
		}
		v = field(v, p)
	}
	if !v.Exists() {
		return nil
	}
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	var out []string
	for it.Next() {
		out = append(out, Unquote(it.Selector().Unquoted()))
	}
	return out
}

// article is "a" or "an" for a noun.
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an"
	}
	return "a"
}

// andList joins names as "a", "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// suggestNames is suggest.Names.
func suggestNames(name string, candidates []string) []string { return suggest.Names(name, candidates) }
