package compiler

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"

	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/cue/input"
)

// cueErrors turns CUE errors into diagnostics, positioned at the first
// place in a policy file (not in the schema). The alternatives of a failed
// disjunction (an enum such as record_sample_rate) become one diagnostic
// that lists what is allowed, and an action whose module is rejected does
// not also report every field of its data.
func (c *compilation) cueErrors(code string, err error) {
	type group struct {
		path []string
		errs []cueerrors.Error
	}
	var groups []*group
	byPath := map[string]*group{}
	for _, e := range cueerrors.Errors(err) {
		path := normalizePath(e.Path())
		key := strings.Join(path, "\x00")
		g := byPath[key]
		if g == nil {
			g = &group{path: path}
			byPath[key] = g
			groups = append(groups, g)
		}
		g.errs = append(g.errs, e)
	}
	rejectedModules := map[string]bool{}
	for _, g := range groups {
		if n := len(g.path); n > 0 && g.path[n-1] == "module" {
			rejectedModules[cuePath(g.path[:n-1])] = true
		}
	}
	// An unknown field's own fields are not reported again: the schema
	// knows nothing of them (incoming: any: is one mistake, not two).
	unknown := map[string]bool{}
	for _, g := range groups {
		if c.isUnknownField(g.errs, g.path) {
			unknown[cuePath(g.path)] = true
		}
	}
	for _, g := range groups {
		if n := len(g.path); n >= 2 && rejectedModules[cuePath(g.path[:n-2])] && g.path[n-2] == "data" {
			c.lost = append(c.lost, g.path)
			continue
		}
		if underUnknown(unknown, g.path) {
			continue
		}
		for _, e := range g.errs {
			// An unknown field loses no value the policy defines.
			if !input.UnknownField(e) {
				c.lost = append(c.lost, g.path)
				break
			}
		}
		if d, ok := c.conflict(code, g.errs, g.path); ok {
			c.add(d)
			continue
		}
		if alts, bad, ok := disjunction(g.errs); ok {
			// An alternative's error points at the value itself.
			d := c.cueDiagnostic(code, g.errs[len(g.errs)-1], g.path)
			if v, ok := c.valueAt(d.Position); ok && v.literal {
				bad = v.text
			}
			if allowed := c.allowedValues(g.path); len(allowed) > 0 {
				alts = allowed
			}
			d.Message = d.Path + ": " + input.NotAllowed(bad, alts)
			d.Related = nil
			c.add(d)
			continue
		}
		for _, e := range g.errs {
			c.add(c.cueDiagnostic(code, e, g.path))
		}
	}
}

// normalizePath turns a CUE error path into plain labels
// (input.NormalizePath).
func normalizePath(path []string) []string { return input.NormalizePath(path) }

// cuePath formats a path as CUE does (input.PathString).
func cuePath(path []string) string { return input.PathString(path) }

// cueDiagnostic converts one CUE error, restating the messages an operator
// would otherwise have to decode.
func (c *compilation) cueDiagnostic(code string, e cueerrors.Error, path []string) Diagnostic {
	format, args := e.Msg()
	var primary Position
	var related []Position
	for _, p := range cueerrors.Positions(e) {
		pos := position(p)
		if !c.userFiles[pos.File] {
			continue
		}
		if primary.File == "" {
			primary = pos
		} else if pos != primary {
			related = append(related, pos)
		}
	}
	if primary.File == "" {
		primary = c.declPosition(path)
	}
	n := len(path)
	last := ""
	if n > 0 {
		last = path[n-1]
	}
	arg := func(i int) string {
		if i < len(args) {
			return fmt.Sprint(args[i])
		}
		return ""
	}
	// The wording every CUE input shares (out of range, not set), then
	// the policy's own.
	code, msg := input.Restate(code, e, last)
	switch {
	case input.UnknownField(e) && n >= 2 && isIDMap(path[n-2]) && !idPattern().MatchString(last):
		msg = fmt.Sprintf("%q is not a valid id: ids match %s", last, idPattern())
	case input.UnknownField(e):
		msg = c.unknownFieldMessage(path)
	case n == 1 && c.schemaAt(path) == nil && !c.userPosition(e):
		// The schema's error for a top-level field other than
		// defaults and accounts.
		msg = fmt.Sprintf("unknown top-level field %q: a policy has only defaults and accounts%s",
			last, didYouMean(last, sortedKeys(plainSchema().fields)))
	case last == "url" && len(args) > 0 && CheckURL(unquote(arg(0))) != "":
		msg = fmt.Sprintf("url %q %s", RedactURL(unquote(arg(0))), CheckURL(unquote(arg(0))))
	case format == "invalid value %v (out of bound %s)" && strings.Contains(arg(1), idPattern().String()):
		msg = fmt.Sprintf("%s is not a valid id: ids match %s", arg(0), idPattern())
	}
	p := cuePath(path)
	if p != "" {
		msg = p + ": " + msg
	}
	return Diagnostic{Code: code, Severity: Error, Position: primary, Path: p, Message: msg, Related: related}
}

// unquote returns a path element without CUE's quotes (input.Unquote).
func unquote(s string) string { return input.Unquote(s) }

var idPattern = lazyRegexp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// isIDMap reports whether a field holds a map keyed by ids.
func isIDMap(name string) bool {
	switch name {
	case "accounts", "users", "devices", "callflows":
		return true
	}
	return false
}

// disjunction recognises the errors of an empty disjunction and returns
// the alternatives and the rejected value (input.Disjunction).
func disjunction(errs []cueerrors.Error) (alts []string, bad string, ok bool) {
	return input.Disjunction(errs)
}

// sortValues sorts values as CUE writes them (input.SortValues).
func sortValues(vals []string) { input.SortValues(vals) }

// hiddenUnknownFields reports fields the schema does not declare. CUE
// reports them too, except in a struct that also holds another error; this
// pass, driven by the schema itself, finds those so that every error is
// reported at once.
func (c *compilation) hiddenUnknownFields(ctx *cue.Context, v cue.Value) {
	schema := ctx.CompileBytes(recpolcue.Schema())
	reported := map[string]bool{}
	for _, d := range c.diags {
		reported[d.Path] = true
	}
	var walk func(val, sch cue.Value, path []string)
	walk = func(val, sch cue.Value, path []string) {
		it, err := val.Fields()
		if err != nil {
			return
		}
		for it.Next() {
			label := unquote(it.Selector().String())
			p := append(append([]string(nil), path...), label)
			sub := sch.LookupPath(cue.MakePath(cue.Str(label).Optional()))
			if !sub.Exists() {
				if cp := cuePath(p); !reported[cp] {
					reported[cp] = true
					pos := position(it.Value().Pos())
					if !c.userFiles[pos.File] {
						pos = c.declPosition(p)
					}
					c.add(Diagnostic{Code: CodeSchema, Severity: Error, Position: pos, Path: cp,
						Message: cp + ": " + c.unknownFieldMessage(p)})
				}
				continue
			}
			if sub.IncompleteKind()&cue.StructKind != 0 && sub.IncompleteKind()&cue.ListKind == 0 {
				walk(it.Value(), sub, p)
			}
		}
	}
	if accounts := v.LookupPath(cue.MakePath(cue.Str("accounts"))); accounts.Exists() {
		walk(accounts, schema.LookupPath(cue.MakePath(cue.Str("accounts").Optional())), []string{"accounts"})
	}
}
