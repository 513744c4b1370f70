package compiler

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

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

// compileGroups evaluates each account group with the shared part, in
// parallel, and builds one table from the groups' accounts. Should a group
// not produce exactly the accounts its files define, the policy is
// compiled as one whole instance instead.
//
// The diagnostics are those of a whole evaluation: compilation stops after
// the first stage that reports an error, so when any group fails, every
// group's diagnostics of later stages are dropped (a warning of the check
// stage, say, when another group has a CUE error).
func (o Options) compileGroups(top *compilation, part partitioning) *Result {
	sharedFiles := pick(top.files, part.shared)
	workers := o.Parallel
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	results := make([]groupResult, len(part.groups))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gi := range jobs {
				results[gi] = o.compileGroup(top, sharedFiles, part.groups[gi])
			}
		}()
	}
	for gi := range part.groups {
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
	out := newCompilation(top.files)
	for _, r := range results {
		for i, d := range r.diags {
			if r.stageOf[i] <= failed {
				out.diags = append(out.diags, d)
			}
		}
		out.accounts = append(out.accounts, r.accounts...)
	}
	if !out.diags.HasErrors() {
		sort.Slice(out.accounts, func(i, j int) bool { return out.accounts[i].ID < out.accounts[j].ID })
		out.stage = stages[5].index
		out.build()
	}
	return out.result()
}

// compileGroup evaluates one account group together with the shared files.
func (o Options) compileGroup(top *compilation, sharedFiles []File, idx []int) groupResult {
	files := append(append([]File(nil), sharedFiles...), pick(top.files, idx)...)
	want := map[string]bool{}
	for _, i := range idx {
		for _, a := range inspectFile(top.asts[i]).accounts {
			want[a] = true
		}
	}
	c := newCompilation(files)
	// The group's own files were parsed once already and are used by this
	// group only; the shared files are parsed afresh, because evaluation
	// annotates a file's syntax tree and groups run concurrently.
	for _, f := range sharedFiles {
		af, err := parser.ParseFile(f.Name, f.Data, parser.ParseComments)
		if err != nil {
			return groupResult{err: err.Error()}
		}
		c.asts = append(c.asts, af)
	}
	for _, i := range idx {
		c.asts = append(c.asts, top.asts[i])
	}

	key := ""
	if o.CacheDir != "" {
		key = cacheKey(files)
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
	if key != "" && !c.diags.HasErrors() {
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
