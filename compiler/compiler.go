// Package compiler turns a directory of CUE policy files into a decision
// table.
//
// Its one entry point is Options: Options{...}.Compile(dir) for a
// directory, Options{...}.CompileFiles(files) for files in memory. A
// process that compiles the same policy again and again keeps the
// incremental Compiler that NewCompiler(opts) makes of the same Options;
// it gives the same results, faster.
//
// Compilation is an ordered list of named stages (parse, evaluate, decode,
// check, resolve, build). Each stage collects every diagnostic it can find,
// and one run reports every error of every kind:
//
//   - parse errors (syntax, package clause) stop the compilation, since
//     nothing can be evaluated without the files;
//   - evaluation keeps the evaluated value even when CUE reports errors;
//     decode then takes every value that evaluated cleanly and skips those
//     that did not, remembering their paths as lost;
//   - check and resolve run on what was decoded, so the rule checks and the
//     record_min_sec check see every part of the policy that evaluated. A
//     record_min_sec that would be compared with a lost value (a time_limit
//     CUE rejected, say, whose fallback would be another scope's) is not
//     checked, and a rule error on a value CUE already rejected is dropped;
//   - build never runs on a policy with errors: Result.Table stays nil.
package compiler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/internal/readlimit"
	"github.com/recpol/recpol/table"
)

// File is one policy source file.
type File struct {
	Name string // as it appears in diagnostics, e.g. "policies/acme.cue"
	Data []byte
}

// Result is the outcome of a compilation.
type Result struct {
	// Table is nil when Diagnostics holds an error.
	Table *table.Table
	// Diagnostics are sorted by position.
	Diagnostics Diagnostics

	settings *settingIndex // see SettingPosition
	// enc is Table's accounts in the manifest's compact form when a
	// compile already has them so (from the manifest), and chunks the
	// same encoded account by account when a compile encoded them, so
	// that MarshalResult does not encode them again.
	enc    []byte
	chunks *accountChunks
}

// MaxFileBytes is the largest policy file ReadDir reads: a larger one is
// an error (wrapping readlimit.ErrTooLarge), never an allocation of its
// size. The generated tree of 5,000 accounts (recpol gen) is about 11 MB
// in all.
const MaxFileBytes = 64 << 20

// ErrNoFiles is returned by ReadDir for a directory without policy files.
var ErrNoFiles = errors.New("no .cue policy files")

// ReadDir reads the policy files of a directory: every .cue file directly in
// it, except those CUE's loader ignores too (names starting with "_" or ".")
// and the schema file, which the compiler supplies itself.
func ReadDir(dir string) ([]File, error) {
	entries, err := listDir(dir)
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(entries))
	for _, e := range entries {
		data, err := readlimit.File(e.path, MaxFileBytes)
		if err != nil {
			return nil, fmt.Errorf("reading policy file: %w", err)
		}
		files = append(files, File{Name: e.path, Data: data})
	}
	return files, nil
}

// dirEntry is a policy file of a directory, as listDir found it.
type dirEntry struct {
	path string
	info fs.FileInfo // of the file a symlink points to
}

// listDir lists the policy files of a directory (see ReadDir) without
// reading them.
func listDir(dir string) ([]dirEntry, error) { return listDirReusing(dir, nil, nil) }

// listDirReusing is listDir reusing the entries of an earlier listing,
// last (by path), for the regular files whose names are not in changed:
// they are not looked at again. A name last does not hold, and a symbolic
// link (its target may change without an event in dir), are looked at.
// A nil last reuses nothing.
func listDirReusing(dir string, changed map[string]bool, last map[string]dirEntry) ([]dirEntry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading policy directory: %w", err)
	}
	var out []dirEntry
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".cue") || strings.HasPrefix(name, "_") ||
			strings.HasPrefix(name, ".") || name == recpolcue.SchemaFileName {
			continue
		}
		path := filepath.Join(dir, name)
		if prev, ok := last[path]; ok && !changed[name] && e.Type().IsRegular() {
			out = append(out, prev)
			continue
		}
		info, err := os.Stat(path) // follows symlinks
		if err != nil {
			return nil, fmt.Errorf("reading policy directory: %w", err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		out = append(out, dirEntry{path: path, info: info})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoFiles)
	}
	return out, nil
}

// Options control how a policy is evaluated, and are the one way into the
// compiler: Options.Compile compiles the policy of a directory,
// Options.CompileFiles a policy given as files (the zero Options are the
// defaults: compiler.Options{}.CompileFiles(files)). The result never
// depends on them: only the time and memory it takes.
//
// A process that compiles the same policy again and again (the runtime's
// reloads) keeps a Compiler made from its Options by NewCompiler: its
// Compile and CompileFiles are those of Options, remembering between calls
// what did not change.
type Options struct {
	// Whole evaluates the policy as one CUE instance instead of one
	// instance per account group.
	Whole bool
	// CacheDir, when set, keeps each account group's evaluated policy on
	// disk, keyed by the content of its files, the shared files and the
	// schema, so that an unchanged group is not evaluated again.
	CacheDir string
	// Parallel is how many groups are evaluated at once; 0 means
	// GOMAXPROCS.
	Parallel int
}

// Compile reads and compiles the policy in dir. The error is for I/O
// problems only; an invalid policy is reported in the Result's
// Diagnostics. With a CacheDir, a directory whose files did not change
// since the last compile that succeeded is not read: its table comes from
// the manifest (manifest.go).
//
// While it runs, it paces the process's collector by a memory budget
// rather than by GOGC, unless the process chose its own (gcbudget.go).
func (o Options) Compile(dir string) (*Result, error) {
	defer paceGC()()
	cm := NewCompiler(o)
	cm.once = true
	return cm.Compile(dir)
}

// CompileFiles compiles a policy given as files of package recpol; an
// invalid policy is reported in the Result's Diagnostics.
func (o Options) CompileFiles(files []File) *Result {
	return NewCompiler(o).CompileFiles(files)
}

func newCompilation(files []File) *compilation {
	c := &compilation{files: files, userFiles: map[string]bool{}}
	for _, f := range files {
		c.userFiles[f.Name] = true
	}
	return c
}

// run runs stages in order. Only an error of the parse stage stops it:
// the later stages work on whatever evaluated (see the package
// documentation), and build skips a policy with errors itself.
func (c *compilation) run(sts []stage) {
	for _, st := range sts {
		st.run(c)
		if st.name == "parse" && c.diags.HasErrors() {
			return
		}
	}
}

// result sorts the diagnostics and returns the outcome.
func (c *compilation) result() *Result {
	c.diags = dropShadowed(c.diags)
	c.diags.Sort()
	res := &Result{Diagnostics: c.diags, settings: newSettingIndex(c.files)}
	if !c.diags.HasErrors() {
		res.Table = c.table
	}
	return res
}

// dropShadowed drops the errors of the later checks (owner, number, url...)
// on a value that CUE itself already rejected at the same path: the schema
// error says what is wrong with the value, and a second report of the same
// value would only repeat it. Decoding skips rejected values, so this is a
// safety net.
func dropShadowed(ds Diagnostics) Diagnostics {
	rejected := map[string]bool{}
	for _, d := range ds {
		if d.Severity == Error && d.Path != "" && (d.Code == CodeSchema || d.Code == CodeIncomplete) {
			rejected[d.Path] = true
		}
	}
	if len(rejected) == 0 {
		return ds
	}
	out := ds[:0]
	for _, d := range ds {
		if d.Severity == Error && d.Code != CodeSchema && d.Code != CodeIncomplete && rejected[d.Path] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// A stage is one step of a compilation.
type stage struct {
	index int // position in stages
	name  string
	run   func(*compilation)
}

// stages run in order; see the package documentation. Groups run the
// stages between parse and build (see groupStages).
var stages = []stage{
	{0, "parse", (*compilation).parse},
	{1, "evaluate", (*compilation).evaluate},
	{2, "decode", (*compilation).decode},
	{3, "check", (*compilation).check},
	{4, "resolve", (*compilation).resolve},
	{5, "build", (*compilation).build},
}

// compilation is the state of one compile, passed from stage to stage.
type compilation struct {
	files     []File
	userFiles map[string]bool
	asts      []*ast.File
	value     cue.Value
	policy    rawPolicy
	defaults  recpolcue.Defaults
	accounts  []*table.Account
	table     *table.Table
	diags     Diagnostics
	// lost are the paths of values that CUE rejected or that could not be
	// decoded: decode leaves them unset, so resolve must not trust a
	// fallback that replaced them.
	lost [][]string
	// interning, when set, is shared with other compilations (resolve).
	interning *interning
}

// add records a diagnostic; its message starts with the CUE path of the
// value concerned, as CUE's own messages do.
func (c *compilation) add(d Diagnostic) {
	if d.Path != "" && !strings.HasPrefix(d.Message, d.Path+": ") {
		d.Message = d.Path + ": " + d.Message
	}
	c.diags = append(c.diags, d)
}

func (c *compilation) errorf(code string, pos Position, path string, format string, args ...any) {
	c.add(Diagnostic{Code: code, Severity: Error, Position: pos, Path: path, Message: fmt.Sprintf(format, args...)})
}

// parse parses every file and checks its package clause.
func (c *compilation) parse() {
	for _, f := range c.files {
		if af, ok := c.parseFile(f); ok {
			c.asts = append(c.asts, af)
		}
	}
}

// parseFile parses one file and checks its package clause and that no
// value refers to a struct it is part of.
func (c *compilation) parseFile(f File) (*ast.File, bool) {
	af, ok := c.parseSyntax(f)
	if !ok {
		return nil, false
	}
	return af, c.noSelfReferences(af)
}

// noSelfReferences reports the references of a file to a struct they are
// part of (selfReferences), and whether there are none.
func (c *compilation) noSelfReferences(af *ast.File) bool {
	n := len(c.diags)
	c.selfReferences(af)
	return len(c.diags) == n
}

// parseSyntax parses one file and checks its package clause.
func (c *compilation) parseSyntax(f File) (*ast.File, bool) {
	af, err := parser.ParseFile(f.Name, f.Data, parser.ParseComments)
	if err != nil {
		c.cueErrors(CodeSyntax, err)
		return nil, false
	}
	switch name := af.PackageName(); name {
	case recpolcue.PackageName:
		return af, true
	case "":
		c.errorf(CodePackage, Position{File: f.Name, Line: 1, Column: 1}, "",
			"policy files must begin with 'package %s'", recpolcue.PackageName)
	default:
		pos := Position{File: f.Name, Line: 1, Column: 1}
		for _, d := range af.Decls {
			if p, ok := d.(*ast.Package); ok {
				pos = position(p.Name.Pos())
			}
		}
		c.errorf(CodePackage, pos, "", "package %s: policy files must be in package %s", name, recpolcue.PackageName)
	}
	return nil, false
}

// evaluate unifies the files with the schema and validates the result.
func (c *compilation) evaluate() {
	schema, err := parser.ParseFile(recpolcue.SchemaFileName, recpolcue.Schema(), parser.ParseComments)
	if err != nil {
		panic(fmt.Sprintf("embedded schema does not parse: %v", err))
	}
	inst := build.NewContext().NewInstance("recpol", nil)
	for _, f := range append([]*ast.File{schema}, c.asts...) {
		if err := inst.AddSyntax(f); err != nil {
			c.cueErrors(CodeSchema, err)
		}
	}
	if c.diags.HasErrors() {
		return
	}
	ctx := cuecontext.New()
	v := ctx.BuildInstance(inst)
	c.value = v // cueErrors looks up what the policy says (an action's module)
	// The value is kept even when it has errors: decode takes what
	// evaluated cleanly. CUE reports incomplete values only when nothing
	// else is wrong; decode reports those it meets otherwise.
	if err := v.Validate(); err != nil {
		c.cueErrors(CodeSchema, err)
		c.hiddenUnknownFields(ctx, v)
	} else if err := v.Validate(cue.Concrete(true)); err != nil {
		c.cueErrors(CodeSchema, err)
	} else if err := v.Err(); err != nil {
		c.cueErrors(CodeSchema, err)
	}
	c.value = v
}

// decode decodes the evaluated policy into Go values, skipping the values
// that have errors (see decoder.fail).
func (c *compilation) decode() {
	c.loadBuiltin()
	if !c.value.Exists() {
		return
	}
	d := decoder{c: c}
	c.policy = d.policy(c.value)
}

// loadBuiltin reads the built-in defaults the resolver falls back to.
func (c *compilation) loadBuiltin() {
	d, err := recpolcue.BuiltinDefaults()
	if err != nil {
		panic(err) // the embedded defaults are tested
	}
	c.defaults = d
}

// DefaultsDigest returns the digest of the built-in defaults that every
// table's version hashes: their canonical JSON. table.New and table.Decode
// take it, so that package table need not load the defaults itself.
func DefaultsDigest() table.DefaultsDigest {
	d, err := defaultsDigest()
	if err != nil {
		panic(err) // the embedded defaults are tested
	}
	return d
}

var defaultsDigest = sync.OnceValues(func() (table.DefaultsDigest, error) {
	d, err := recpolcue.BuiltinDefaults()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("built-in defaults: %w", err)
	}
	return table.DefaultsDigest(b), nil
})

// build indexes the resolved accounts into a table, unless an earlier
// stage reported an error.
func (c *compilation) build() {
	if c.diags.HasErrors() {
		return
	}
	t, err := table.New(c.accounts, DefaultsDigest())
	if err != nil {
		c.errorf(CodeSchema, Position{}, "", "%v", err)
		return
	}
	c.table = t
}

// declPosition finds where a path is declared in the policy files, for
// errors whose positions are all in the schema (an unknown top-level
// field, say). It returns the deepest declaration found.
func (c *compilation) declPosition(path []string) Position {
	best, bestDepth := Position{}, -1
	for _, f := range c.asts {
		var walk func(decls []ast.Decl, depth int)
		walk = func(decls []ast.Decl, depth int) {
			if depth >= len(path) {
				return
			}
			for _, d := range decls {
				fd, ok := d.(*ast.Field)
				if !ok {
					continue
				}
				name, _, err := ast.LabelName(fd.Label)
				if err != nil || name != unquote(path[depth]) {
					continue
				}
				if depth > bestDepth {
					best, bestDepth = position(fd.Label.Pos()), depth
				}
				if st, ok := fd.Value.(*ast.StructLit); ok {
					walk(st.Elts, depth+1)
				}
			}
		}
		walk(f.Decls, 0)
	}
	if bestDepth < 0 && len(c.files) > 0 {
		return Position{File: c.files[0].Name}
	}
	return best
}

// position converts a CUE position.
func position(p token.Pos) Position {
	if !p.IsValid() {
		return Position{}
	}
	return Position{File: p.Filename(), Line: p.Line(), Column: p.Column()}
}

// posOf returns the position of the value at a path in a policy file, or
// the declaration of the path when the value's own position is elsewhere.
// A segment "[i]" selects a list element.
func (c *compilation) posOf(sel ...string) Position {
	if !c.value.Exists() {
		// The plain-data path, which keeps no diagnostic.
		return c.declPosition(sel)
	}
	if p := position(c.value.LookupPath(selectors(sel)).Pos()); c.userFiles[p.File] {
		return p
	}
	return c.declPosition(sel)
}

// selectors makes a CUE path of plain labels, a label "[i]" selecting a
// list element.
func selectors(sel []string) cue.Path {
	sels := make([]cue.Selector, len(sel))
	for i, s := range sel {
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			if n, err := strconv.Atoi(s[1 : len(s)-1]); err == nil {
				sels[i] = cue.Index(n)
				continue
			}
		}
		sels[i] = cue.Str(s)
	}
	return cue.MakePath(sels...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
