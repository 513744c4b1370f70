package compiler

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
)

// SettingPosition returns where the setting a provenance string names is
// written in the policy files: "device:d1 call_recording.outbound.any.enabled",
// "account:a call_recording.account.inbound.offnet.enabled", "defaults
// format", "account:a callflows.sales.actions.0.data.format", "user:u
// metaflows.numbers.72.data.time_limit" (see table.Provenance), or the
// action itself without ".data.<field>". account is the account the
// provenance belongs to: user and device scopes do not name it.
//
// The position is that of the setting's value, in the file and at the
// declaration that sets it; a setting that a template sets for every
// account or endpoint (accounts: [_]: ...) is found at the template, one
// written in a definition the scope refers to (devices: d: #Desk) in the
// definition. When the setting's own declaration cannot be found (the
// scope does not write it, or it comes through another kind of
// expression), the closest declaration on its path is returned, as long
// as it is the scope's or below. ok is
// false for a built-in default, a provenance that names no setting, or a
// scope the files do not declare.
//
// It works from the files' syntax alone, which it parses again the first
// time it is called, so it gives the same answer whether or not the
// compilation evaluated the files or took them from a cache. It is safe
// for concurrent use.
func (r *Result) SettingPosition(account, provenance string) (pos Position, ok bool) {
	if r == nil || r.settings == nil {
		return Position{}, false
	}
	path, scopeDepth := provenancePath(account, provenance)
	for _, el := range path {
		if el == "" {
			return Position{}, false
		}
	}
	if path == nil {
		return Position{}, false
	}
	return r.settings.position(path, scopeDepth)
}

// provenancePath turns a provenance into the CUE path of the setting, with
// the length of the path of its scope (accounts.a, accounts.a.devices.d,
// defaults). It returns nil for what is not in the policy files.
func provenancePath(account, prov string) (path []string, scopeDepth int) {
	scope, rest, ok := strings.Cut(prov, " ")
	if !ok || rest == "" {
		return nil, 0
	}
	if scope == "defaults" {
		if strings.Contains(rest, ".") {
			return nil, 0
		}
		return []string{"defaults", rest}, 1
	}
	kind, id, ok := strings.Cut(scope, ":")
	if !ok || id == "" {
		return nil, 0
	}
	switch kind {
	case "account":
		path = []string{"accounts", id}
	case "user", "device":
		if account == "" {
			return nil, 0
		}
		path = []string{"accounts", account, kind + "s", id}
	default:
		return nil, 0
	}
	scopeDepth = len(path)
	switch {
	case strings.HasPrefix(rest, "call_recording."):
		// Directions, networks and field names are identifiers.
		return append(path, strings.Split(rest, ".")...), scopeDepth
	case strings.HasPrefix(rest, "callflows.") && kind == "account":
		action, data := cutData(strings.TrimPrefix(rest, "callflows."))
		m := callflowAction().FindStringSubmatch(action)
		if m == nil {
			return nil, 0
		}
		path = append(path, "callflows", m[1], "actions", "["+m[2]+"]")
		return append(path, data...), scopeDepth
	case strings.HasPrefix(rest, "metaflows.numbers."), strings.HasPrefix(rest, "metaflows.patterns."):
		kindAndCode := strings.TrimPrefix(rest, "metaflows.")
		action, data := cutData(kindAndCode)
		m, code, _ := strings.Cut(action, ".")
		path = append(path, "metaflows", m, code)
		return append(path, data...), scopeDepth
	}
	return nil, 0
}

// callflowAction matches "<callflow id>.actions.<index>"; an id may hold
// dots, the index never does.
var callflowAction = lazyRegexp(`^(.+)\.actions\.([0-9]+)$`)

// cutData splits "<action>.data.<field>" into the action and ["data",
// field]; a string without such a suffix is the action itself.
func cutData(s string) (action string, data []string) {
	i := strings.LastIndex(s, ".data.")
	if i < 0 {
		return s, nil
	}
	f := s[i+len(".data."):]
	if f == "" || !ast.IsValidIdent(f) {
		return s, nil
	}
	return s[:i], []string{"data", f}
}

// settingIndex finds settings in the syntax of a policy's files.
type settingIndex struct {
	files []File
	// read, when set, reads the files the first time they are needed (a
	// result taken from the manifest has not read them).
	read func() []File
	once sync.Once
	asts []*ast.File
	defs map[string][]ast.Expr // top-level fields (definitions), by name
}

func newSettingIndex(files []File) *settingIndex { return &settingIndex{files: files} }

func (x *settingIndex) load() {
	x.defs = map[string][]ast.Expr{}
	if x.read != nil {
		x.files = x.read()
	}
	for _, f := range x.files {
		af, err := parser.ParseFile(f.Name, f.Data, parser.ParseComments)
		if err != nil {
			continue
		}
		x.asts = append(x.asts, af)
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.Field); ok {
				if name, _, err := ast.LabelName(fd.Label); err == nil {
					x.defs[name] = append(x.defs[name], fd.Value)
				}
			}
		}
	}
}

// match is a declaration found for a prefix of a path.
type match struct {
	depth     int  // how many path elements it declares
	templated bool // reached through a pattern label ([_]: ...) or a reference
	pos       Position
}

func (m match) better(o match) bool {
	if m.depth != o.depth {
		return m.depth > o.depth
	}
	return !m.templated && o.templated
}

// position returns the position of the deepest declaration of path, if
// it declares at least scopeDepth elements: concrete labels before
// templates, then the first in file order.
func (x *settingIndex) position(path []string, scopeDepth int) (Position, bool) {
	x.once.Do(x.load)
	best := match{depth: -1}
	for _, f := range x.asts {
		x.walkDecls(f.Decls, path, 0, false, 0, &best)
	}
	if best.depth < scopeDepth || best.pos.Line == 0 {
		return Position{}, false
	}
	return best.pos, true
}

// maxRefs bounds how many references one walk follows, against cycles.
const maxRefs = 8

func (x *settingIndex) walkDecls(decls []ast.Decl, path []string, depth int, templated bool, refs int, best *match) {
	for _, d := range decls {
		switch d := d.(type) {
		case *ast.Field:
			t := templated
			switch l := d.Label.(type) {
			case *ast.ListLit:
				if !patternMatches(l, path[depth]) {
					continue
				}
				t = true
			default:
				name, _, err := ast.LabelName(d.Label)
				if err != nil || name != path[depth] {
					continue
				}
			}
			pos := position(d.Label.Pos())
			if depth+1 == len(path) {
				if _, isStruct := d.Value.(*ast.StructLit); !isStruct {
					if p := position(d.Value.Pos()); p.Line > 0 {
						pos = p
					}
				}
			}
			if m := (match{depth + 1, t, pos}); m.better(*best) {
				*best = m
			}
			if depth+1 < len(path) {
				x.walkExpr(d.Value, path, depth+1, t, refs, best)
			}
		case *ast.EmbedDecl:
			x.walkExpr(d.Expr, path, depth, templated, refs, best)
		}
	}
}

// walkExpr walks the value of a field whose path elements up to depth
// matched.
func (x *settingIndex) walkExpr(e ast.Expr, path []string, depth int, templated bool, refs int, best *match) {
	switch e := e.(type) {
	case *ast.StructLit:
		x.walkDecls(e.Elts, path, depth, templated, refs, best)
	case *ast.ParenExpr:
		x.walkExpr(e.X, path, depth, templated, refs, best)
	case *ast.BinaryExpr:
		if e.Op.String() == "&" {
			x.walkExpr(e.X, path, depth, templated, refs, best)
			x.walkExpr(e.Y, path, depth, templated, refs, best)
		}
	case *ast.Ident:
		// A reference to a top-level declaration (#Desk), as templates are
		// often written.
		if refs < maxRefs {
			for _, v := range x.defs[e.Name] {
				x.walkExpr(v, path, depth, true, refs+1, best)
			}
		}
	case *ast.ListLit:
		el := path[depth]
		if !strings.HasPrefix(el, "[") || !strings.HasSuffix(el, "]") {
			return
		}
		i, err := strconv.Atoi(el[1 : len(el)-1])
		if err != nil || i < 0 || i >= len(e.Elts) {
			return
		}
		for _, v := range e.Elts[:i+1] {
			if _, plain := v.(*ast.Ellipsis); plain {
				return
			}
			if _, comp := v.(*ast.Comprehension); comp {
				return
			}
		}
		m := match{depth + 1, templated, position(e.Elts[i].Pos())}
		if m.better(*best) {
			*best = m
		}
		if depth+1 < len(path) {
			x.walkExpr(e.Elts[i], path, depth+1, templated, refs, best)
		}
	}
}

// patternMatches reports whether a pattern label ([_], [string], [#Id],
// [=~"re"], [!~"re"]) may match a label. Only regular expressions are
// tested; anything else is taken to match, as the label's value is what
// the walk is after.
func patternMatches(l *ast.ListLit, label string) bool {
	if len(l.Elts) != 1 {
		return true
	}
	u, ok := l.Elts[0].(*ast.UnaryExpr)
	if !ok {
		return true
	}
	lit, ok := u.X.(*ast.BasicLit)
	if !ok {
		return true
	}
	re, err := strconv.Unquote(lit.Value)
	if err != nil {
		return true
	}
	rx, err := regexp.Compile(re)
	if err != nil {
		return true
	}
	switch u.Op.String() {
	case "=~":
		return rx.MatchString(label)
	case "!~":
		return !rx.MatchString(label)
	}
	return true
}
