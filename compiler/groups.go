package compiler

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"

	"cuelang.org/go/cue/ast"

	"cuelang.org/go/cue/parser"

	"github.com/recpol/recpol/table"
)

// groupStages are the stages each account group runs on its own instance.
var groupStages = stages[1:5] // evaluate, decode, check, resolve

// groupResult is what one account group produced.
type groupResult struct {
	accounts []*table.Account
	diags    Diagnostics
	stageOf  []int
	err      string // the group produced other accounts than its files define
}

// Compiler compiles a policy again and again, as the runtime's reloads
// do, reusing in memory what did not change: the inspection of unchanged
// files and the resolved accounts of unchanged account groups. Its methods
// are safe for concurrent use; compilations run one at a time.
type Compiler struct {
	opts   Options
	mu     sync.Mutex
	files  map[string]fileMemo     // by file name
	groups map[string]*groupResult // by group key: error-free groups only
}

// fileMemo is what an earlier compilation learnt about a file.
type fileMemo struct {
	sum  [32]byte
	info fileInfo
}

// NewCompiler returns a compiler with the given options.
func NewCompiler(o Options) *Compiler {
	return &Compiler{opts: o, files: map[string]fileMemo{}, groups: map[string]*groupResult{}}
}

// Compile reads and compiles the policy in dir.
func (cm *Compiler) Compile(dir string) (*Result, error) {
	files, err := ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such policy directory", dir)
		}
		return nil, err
	}
	return cm.CompileFiles(files), nil
}

// CompileFiles compiles a policy given as files of package recpol.
func (cm *Compiler) CompileFiles(files []File) *Result {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	top := newCompilation(files)
	infos := make([]fileInfo, len(files))
	asts := make([]*ast.File, len(files))
	names := make([]string, len(files))
	sums := make([][32]byte, len(files))
	for i, f := range files {
		names[i] = f.Name
		sums[i] = fileSum(f)
		if m, ok := cm.files[f.Name]; ok && m.sum == sums[i] {
			infos[i] = m.info
			continue
		}
		af, ok := top.parseFile(f)
		if !ok {
			continue
		}
		asts[i], infos[i] = af, inspectFile(af)
	}
	if top.diags.HasErrors() {
		return top.result()
	}
	memo := make(map[string]fileMemo, len(files))
	for i, f := range files {
		memo[f.Name] = fileMemo{sums[i], infos[i]}
	}
	cm.files = memo

	part := partition(infos, names)
	if cm.opts.Whole || part.whole || len(part.groups) < 2 {
		whole := newCompilation(files)
		whole.parse()
		whole.run(stages[1:])
		return whole.result()
	}
	res := cm.compileGroups(top, asts, part)
	return res
}

// fileSum identifies a file by its name and content.
func fileSum(f File) [32]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(f.Name)))
	h.Write(n[:])
	h.Write([]byte(f.Name))
	h.Write(f.Data)
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// compileGroups evaluates each account group with the shared part, in
// parallel, reusing unchanged groups, and builds one table from the
// groups' accounts. Should a group not produce exactly the accounts its
// files define, the policy is compiled as one whole instance instead.
//
// The diagnostics are those of a whole evaluation: compilation stops after
// the first stage that reports an error, so when any group fails, every
// group's diagnostics of later stages are dropped (a warning of the check
// stage, say, when another group has a CUE error).
func (cm *Compiler) compileGroups(top *compilation, asts []*ast.File, part partitioning) *Result {
	sharedFiles := pick(top.files, part.shared)
	workers := cm.opts.Parallel
	if workers <= 0 {
		workers = goruntime.GOMAXPROCS(0)
	}
	results := make([]*groupResult, len(part.groups))
	keys := make([]string, len(part.groups))
	var todo []int
	for gi, idx := range part.groups {
		keys[gi] = cacheKey(append(append([]File(nil), sharedFiles...), pick(top.files, idx)...))
		if r, ok := cm.groups[keys[gi]]; ok {
			results[gi] = r
		} else {
			todo = append(todo, gi)
		}
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers && w < len(todo); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gi := range jobs {
				r := cm.opts.compileGroup(top, asts, sharedFiles, part.groups[gi], keys[gi])
				results[gi] = &r
			}
		}()
	}
	for _, gi := range todo {
		jobs <- gi
	}
	close(jobs)
	wg.Wait()

	failed := len(stages) // the first stage that failed in any group
	for _, r := range results {
		if r.err != "" {
			whole := newCompilation(top.files)
			whole.parse()
			whole.run(stages[1:])
			return whole.result()
		}
		for i, d := range r.diags {
			if d.Severity == Error && r.stageOf[i] < failed {
				failed = r.stageOf[i]
			}
		}
	}
	keep := make(map[string]*groupResult, len(results))
	out := newCompilation(top.files)
	for gi, r := range results {
		for i, d := range r.diags {
			if r.stageOf[i] <= failed {
				out.diags = append(out.diags, d)
			}
		}
		out.accounts = append(out.accounts, r.accounts...)
		if !r.diags.HasErrors() {
			keep[keys[gi]] = r
		}
	}
	cm.groups = keep
	if !out.diags.HasErrors() {
		sort.Slice(out.accounts, func(i, j int) bool { return out.accounts[i].ID < out.accounts[j].ID })
		out.stage = stages[5].index
		out.build()
	}
	return out.result()
}

// compileGroup evaluates one account group together with the shared
// files, or loads it from the disk cache.
func (o Options) compileGroup(top *compilation, asts []*ast.File, sharedFiles []File, idx []int, key string) groupResult {
	files := append(append([]File(nil), sharedFiles...), pick(top.files, idx)...)
	c := newCompilation(files)
	want := map[string]bool{}
	// Shared files are parsed afresh for each group, because evaluation
	// annotates a file's syntax tree and groups run concurrently; a
	// group's own files are used by that group only.
	for _, f := range sharedFiles {
		af, err := parser.ParseFile(f.Name, f.Data, parser.ParseComments)
		if err != nil {
			return groupResult{err: err.Error()}
		}
		c.asts = append(c.asts, af)
	}
	for _, i := range idx {
		af := asts[i]
		if af == nil {
			var err error
			if af, err = parser.ParseFile(top.files[i].Name, top.files[i].Data, parser.ParseComments); err != nil {
				return groupResult{err: err.Error()}
			}
		}
		for _, a := range inspectFile(af).accounts {
			want[a] = true
		}
		c.asts = append(c.asts, af)
	}
	if o.CacheDir != "" {
		if e, ok := readCache(o.CacheDir, key); ok {
			c.policy = e.Policy
			for _, d := range e.Diagnostics {
				c.diags = append(c.diags, d)
				c.stageOf = append(c.stageOf, stages[3].index) // warnings come from check
			}
			c.loadBuiltin()
			c.resolve()
			return c.groupResult(want)
		}
	}
	c.run(groupStages)
	if o.CacheDir != "" && !c.diags.HasErrors() {
		writeCache(o.CacheDir, key, c)
	}
	return c.groupResult(want)
}

func (c *compilation) groupResult(want map[string]bool) groupResult {
	if c.diags.HasErrors() {
		return groupResult{diags: c.diags, stageOf: c.stageOf}
	}
	var got []string
	for id := range c.policy.Accounts {
		got = append(got, id)
	}
	if len(got) != len(want) {
		return groupResult{err: fmt.Sprintf("group defines %s", strings.Join(got, ", "))}
	}
	for _, id := range got {
		if !want[id] {
			return groupResult{err: fmt.Sprintf("group defines %s", strings.Join(got, ", "))}
		}
	}
	return groupResult{accounts: c.accounts, diags: c.diags, stageOf: c.stageOf}
}

func pick(files []File, idx []int) []File {
	out := make([]File, len(idx))
	for i, j := range idx {
		out[i] = files[j]
	}
	return out
}
