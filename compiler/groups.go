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
	"sync/atomic"
	"time"

	"cuelang.org/go/cue/ast"

	"cuelang.org/go/cue/parser"

	"github.com/recpol/recpol/internal/readlimit"
	"github.com/recpol/recpol/table"
)

// groupStages are the stages each account group runs on its own instance.
var groupStages = stages[1:5] // evaluate, decode, check, resolve

// groupResult is what one account group produced.
type groupResult struct {
	accounts []*table.Account
	diags    Diagnostics
	err      string // the group produced other accounts than its files define
}

// Compiler is the incremental form of Options: it compiles a policy again
// and again, as the runtime's reloads do, with the results Options would
// give, reusing in memory what did not change: the inspection of unchanged
// files and the resolved accounts of unchanged account groups. Its methods
// are safe for concurrent use; compilations run one at a time.
type Compiler struct {
	opts Options
	mu   sync.Mutex
	// started is set by the first Compile: only that one uses the
	// manifest, so that later reloads, which reuse what is in memory,
	// do not pay for writing it.
	started bool
	files   map[string]fileMemo     // by file name
	groups  map[string]*groupResult // by group key: error-free groups only
	chunks  chunkCache              // the last table's accounts, encoded
	read    map[string]readFile     // by path: the files the last Compile read
	now     func() time.Time        // the clock of readFiles; time.Now if nil
	// warmDir is the directory the last Compile took from the manifest.
	warmDir string
	// deferManifest: Compile leaves its manifest write in
	// pendingManifest (DeferManifest).
	deferManifest   bool
	pendingManifest func()
	// listed is the last listing of listedDir (by path), which
	// CompileChanged reuses for the files it is told did not change; nil
	// after a compile that failed.
	listed    map[string]dirEntry
	listedDir string
	// once: the compiler compiles once and is dropped (Options.Compile),
	// so that Compile keeps nothing for a next compile: the manifest is
	// written account by account (writeManifestOf), with no encoded
	// accounts kept.
	once bool
}

// fileMemo is what an earlier compilation learnt about a file.
type fileMemo struct {
	sum  [32]byte
	info fileInfo
}

// NewCompiler returns an incremental compiler with the given options.
func NewCompiler(o Options) *Compiler {
	return &Compiler{opts: o, files: map[string]fileMemo{}, groups: map[string]*groupResult{}}
}

// Compile reads and compiles the policy in dir. With a CacheDir, its first
// call takes the table from the manifest when no file changed (see
// manifest.go), and every successful compile writes the manifest, so that
// it always holds the last table that compiled (LastGood).
func (cm *Compiler) Compile(dir string) (*Result, error) { return cm.compile(dir, nil) }

// CompileChanged is Compile when the caller watches dir (fsnotify) and
// knows which of its files may have changed since the last compile of
// dir: changed are their base names (files created, written, removed,
// renamed or whose mode changed). Each other file is taken to be as the
// last compile saw it, without looking at it again: a reload of one
// changed file in a thousand does not stat the thousand. A symbolic link,
// and a name the last compile did not see, are looked at all the same.
// When the last compile was of another directory, or failed, it is
// Compile. The caller must not leave out a name it has an event for, nor
// pass a list after it may have missed events (an overflow of the
// watcher's queue, a watch added late): that is a Compile.
func (cm *Compiler) CompileChanged(dir string, changed []string) (*Result, error) {
	set := make(map[string]bool, len(changed))
	for _, n := range changed {
		set[n] = true
	}
	return cm.compile(dir, set)
}

// compile is Compile, or CompileChanged when changed is not nil.
func (cm *Compiler) compile(dir string, changed map[string]bool) (res *Result, err error) {
	cm.WriteManifest() // a deferred one, before this compile's
	cm.mu.Lock()
	first := !cm.started
	cm.started = true
	cm.mu.Unlock()
	if cm.opts.CacheDir == "" {
		files, err := ReadDir(dir)
		if err != nil {
			return nil, dirError(dir, err)
		}
		return cm.CompileFiles(files), nil
	}
	cm.mu.Lock()
	var last map[string]dirEntry
	if changed != nil && cm.listedDir == dir {
		last = cm.listed
	}
	cm.listed, cm.listedDir = nil, ""
	cm.mu.Unlock()
	entries, err := listDirReusing(dir, changed, last)
	if err != nil {
		return nil, dirError(dir, err)
	}
	defer func() {
		if err != nil || cm.once {
			return
		}
		listed := make(map[string]dirEntry, len(entries))
		for _, e := range entries {
			listed[e.path] = e
		}
		cm.mu.Lock()
		cm.listed, cm.listedDir = listed, dir
		cm.mu.Unlock()
	}()
	if first {
		if res, ok := warmCompile(cm.opts.CacheDir, dir, entries); ok {
			cm.mu.Lock()
			cm.warmDir = dir
			cm.mu.Unlock()
			return res, nil
		}
	}
	files, ids, sums, err := cm.readFiles(entries)
	if err != nil {
		return nil, dirError(dir, err)
	}
	res = cm.compileFiles(files, sums)
	if res.Table != nil && cm.once {
		writeManifestOf(cm.opts.CacheDir, dir, ids, sums, res.Diagnostics, res.Table)
		return res, nil
	}
	if res.Table != nil {
		cm.mu.Lock()
		if cm.chunks == nil {
			cm.chunks = chunkCache{}
		}
		chunks := accountChunksCached(res.Table, cm.chunks)
		res.chunks = &chunks
		write := func() {
			// Written here, after a worker's answer when deferred: the
			// answer needs only the chunks that changed.
			writeManifest(cm.opts.CacheDir, dir, ids, sums, res.Diagnostics, res.Table.Version, chunks.parts())
		}
		if cm.deferManifest {
			cm.pendingManifest = write
			write = nil
		}
		cm.mu.Unlock()
		if write != nil {
			write()
		}
	}
	return res, nil
}

// DeferManifest makes each later Compile leave the writing of its manifest
// to WriteManifest (or to the next Compile), so that a compile worker
// answers before it writes: the manifest is the whole table, megabytes
// for a thousand accounts. A process killed in between leaves the
// manifest of the compile before (LastGood is then that table).
func (cm *Compiler) DeferManifest() {
	cm.mu.Lock()
	cm.deferManifest = true
	cm.mu.Unlock()
}

// WriteManifest writes the manifest of the last Compile, if it deferred it.
func (cm *Compiler) WriteManifest() {
	cm.mu.Lock()
	write := cm.pendingManifest
	cm.pendingManifest = nil
	cm.mu.Unlock()
	if write != nil {
		write()
	}
}

// Prime fills the compiler's memory (files read, account groups, encoded
// accounts) when the last Compile of dir took its table from the manifest,
// which fills none of it, by compiling dir again, and does nothing
// otherwise: a worker that primes after it answered a warm start makes its
// first reload as fast as the next ones.
func (cm *Compiler) Prime(dir string) {
	cm.mu.Lock()
	warm := cm.warmDir == dir
	cm.warmDir = ""
	cm.mu.Unlock()
	if warm {
		_, _ = cm.Compile(dir)
		cm.WriteManifest()
	}
}

// readFile is a policy file as the last Compile read it.
type readFile struct {
	id     fileIdentity
	readNS int64 // when it was read
	data   []byte
	sum    [32]byte
}

// filesPerReader is how many files at least each goroutine of readFiles
// reads.
const filesPerReader = 32

// readFiles reads the files entries lists, except those whose identity
// (size, times, inode) is the one they had when the last Compile read
// them, and were not changed within doubtWindow before that read (a
// change within a timestamp's granularity keeps the identity): a reload
// reads the files that changed, not the whole tree.
func (cm *Compiler) readFiles(entries []dirEntry) ([]File, []fileIdentity, [][32]byte, error) {
	cm.mu.Lock()
	last := cm.read
	cm.mu.Unlock()
	next := make(map[string]readFile, len(entries))
	files := make([]File, len(entries))
	ids := make([]fileIdentity, len(entries))
	sums := make([][32]byte, len(entries))
	got := make([]readFile, len(entries))
	var toRead []int
	for i, e := range entries {
		id := identityOf(e)
		k, ok := last[e.path]
		if !ok || k.id != id || (id.Dev == 0 && id.Ino == 0) ||
			max(id.MtimeNS, id.CtimeNS) >= k.readNS-int64(doubtWindow) {
			toRead = append(toRead, i)
			k = readFile{id: id}
		}
		got[i], ids[i] = k, id
	}
	// The files are read and summed in parallel: a cold compile reads
	// them all. After an error no further file is read (those before
	// it are): the error returned is the first in the entries' order,
	// as when they were read one by one.
	errs := make([]error, len(entries))
	var failed atomic.Bool
	read := func(i int) {
		now := time.Now()
		if cm.now != nil {
			now = cm.now()
		}
		data, err := readlimit.File(entries[i].path, MaxFileBytes)
		if err != nil {
			errs[i] = fmt.Errorf("reading policy file: %w", err)
			failed.Store(true)
			return
		}
		k := &got[i]
		k.readNS, k.data = now.UnixNano(), data
		k.sum = fileSum(File{Name: entries[i].path, Data: data})
	}
	workers := cm.opts.Parallel
	if workers <= 0 {
		workers = goruntime.GOMAXPROCS(0)
	}
	workers = min(workers, 1+len(toRead)/filesPerReader)
	var nextRead atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := int(nextRead.Add(1) - 1); j < len(toRead) && !failed.Load(); j = int(nextRead.Add(1) - 1) {
				read(toRead[j])
			}
		}()
	}
	wg.Wait()
	for _, i := range toRead {
		if errs[i] != nil {
			return nil, nil, nil, errs[i]
		}
	}
	for i, e := range entries {
		k := got[i]
		next[e.path] = k
		files[i], sums[i] = File{Name: e.path, Data: k.data}, k.sum
	}
	cm.mu.Lock()
	cm.read = next
	cm.mu.Unlock()
	return files, ids, sums, nil
}

func dirError(dir string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such policy directory", dir)
	}
	return err
}

// CompileFiles compiles a policy given as files of package recpol.
func (cm *Compiler) CompileFiles(files []File) *Result {
	return cm.compileFiles(files, nil)
}

// compileFiles is CompileFiles with the files' sums when the caller has
// them (fileSum), nil otherwise.
func (cm *Compiler) compileFiles(files []File, known [][32]byte) *Result {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	top := newCompilation(files)
	infos := make([]fileInfo, len(files))
	asts := make([]*ast.File, len(files))
	plains := make([][]byte, len(files))
	names := make([]string, len(files))
	sums := make([][32]byte, len(files))
	unwritten := &unwrittenInfos{dir: cm.opts.CacheDir, sums: sums, infos: infos, files: make([]bool, len(files))}
	firsts := cm.inspectFiles(top, known)
	for i, f := range firsts {
		names[i], sums[i], infos[i] = files[i].Name, f.sum, f.info
		asts[i], plains[i] = f.ast, f.plain
		unwritten.files[i] = f.unwritten
		top.diags = append(top.diags, f.diags...)
		top.lost = append(top.lost, f.lost...)
	}
	if top.diags.HasErrors() {
		unwritten.write(nil)
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
		if c, ok := plainCompilation(files, whole.asts); ok {
			c.build()
			return c.result()
		}
		unwritten.write(nil)
		whole.run(stages[1:])
		return whole.result()
	}
	res := cm.compileGroups(top, asts, plains, part, sums, unwritten)
	return res
}

// firstPass is what compileFiles learns of one file before it partitions
// the policy (inspectFiles).
type firstPass struct {
	sum  [32]byte
	info fileInfo
	// ast is the file's syntax tree when it was parsed and is not the
	// plain data of an account file; plain is that value, encoded
	// (plainenc.go), when it is. Neither is set for a file whose
	// inspection was known.
	ast   *ast.File
	plain []byte
	diags Diagnostics // of parsing the file
	lost  [][]string
	// unwritten is set when the file's inspection is to be cached but
	// was not yet (see unwrittenInfos).
	unwritten bool
}

// unwrittenInfos are the inspections of plain account files that
// inspectFiles did not cache. Where the plain-data path compiles a file's
// group, a later process parses the file again anyway (plain groups are
// not cached; plainSources), so caching its inspection there would only
// cost a file created in the cache for each account (the most of a cold
// compile's system time). Every other path writes them (write).
type unwrittenInfos struct {
	dir   string
	sums  [][32]byte
	infos []fileInfo
	files []bool // the files whose inspection is unwritten
}

// write caches the unwritten inspections of the files idx (nil: every
// file), once.
func (u *unwrittenInfos) write(idx []int) {
	one := func(i int) {
		if u.files[i] {
			u.files[i] = false
			writeFileInfo(u.dir, u.sums[i], u.infos[i])
		}
	}
	if idx == nil {
		for i := range u.files {
			one(i)
		}
		return
	}
	for _, i := range idx {
		one(i)
	}
}

// inspectFiles sums, parses and inspects top's files, in parallel, each
// file on its own (known, when not nil, are the files' sums). A file the
// compiler or the cache already inspected is not parsed. Of a parsed
// account file that is plain data, only its plain value is kept, encoded:
// syntax trees are many times their files' size, and holding every
// file's tree until its group is compiled was most of a cold compile's
// memory.
func (cm *Compiler) inspectFiles(top *compilation, known [][32]byte) []firstPass {
	files := top.files
	out := make([]firstPass, len(files))
	one := func(i int) {
		f, r := files[i], &out[i]
		if known != nil {
			r.sum = known[i]
		} else {
			r.sum = fileSum(f)
		}
		if m, ok := cm.files[f.Name]; ok && m.sum == r.sum {
			r.info = m.info
			return
		}
		if cm.opts.CacheDir != "" {
			if info, ok := readFileInfo(cm.opts.CacheDir, r.sum); ok {
				r.info = info
				return
			}
		}
		// Parsed as top parses, with its own diagnostics, which
		// compileFiles joins in the files' order. A file of plain data
		// by its syntax (appendPlainFile) refers to nothing, so that
		// it can neither refer to a struct it is part of nor to
		// accounts: the walks that look for either are skipped.
		c := &compilation{files: top.files, userFiles: top.userFiles}
		af, ok := c.parseSyntax(f)
		var enc []byte
		plain := false
		if ok && plainDataPath {
			enc, plain = appendPlainFile(nil, af)
		}
		if ok && !plain {
			ok = c.noSelfReferences(af)
		}
		r.diags, r.lost = c.diags, c.lost
		if !ok {
			return
		}
		if plain {
			r.info = inspectDecls(af)
		} else {
			r.info = inspectFile(af)
		}
		r.ast = af
		if plain && len(r.info.accounts) > 0 && !r.info.shared && r.info.whole == "" {
			r.ast, r.plain = nil, enc
		}
		if cm.opts.CacheDir != "" {
			if r.plain != nil {
				r.unwritten = true
			} else {
				writeFileInfo(cm.opts.CacheDir, r.sum, r.info)
			}
		}
	}
	workers := cm.opts.Parallel
	if workers <= 0 {
		workers = goruntime.GOMAXPROCS(0)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers && w < len(files); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(files); i = int(next.Add(1) - 1) {
				one(i)
			}
		}()
	}
	wg.Wait()
	return out
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
// The diagnostics are those of a whole evaluation: every group runs every
// stage up to resolve whatever errors it has (see the package
// documentation), and the table is built only when no group has an error.
func (cm *Compiler) compileGroups(top *compilation, asts []*ast.File, plains [][]byte, part partitioning, sums [][32]byte, unwritten *unwrittenInfos) *Result {
	sharedFiles := pick(top.files, part.shared)
	workers := cm.opts.Parallel
	if workers <= 0 {
		workers = goruntime.GOMAXPROCS(0)
	}
	results := make([]*groupResult, len(part.groups))
	keys := make([]string, len(part.groups))
	var todo []int
	for gi, idx := range part.groups {
		files := append(append([]File(nil), sharedFiles...), pick(top.files, idx)...)
		keys[gi] = cacheKey(append(append([][32]byte(nil), pick(sums, part.shared)...), pick(sums, idx)...))
		if r, ok := cm.groups[keys[gi]]; ok {
			results[gi] = r
			continue
		}
		if cm.opts.CacheDir != "" {
			if e, ok := readCache(cm.opts.CacheDir, keys[gi]); ok {
				c := newCompilation(files)
				c.policy = e.Policy
				c.diags = append(c.diags, e.Diagnostics...)
				c.loadBuiltin()
				c.resolve()
				r := c.groupResult(cm.wanted(top, asts, idx))
				results[gi] = &r
				continue
			}
		}
		todo = append(todo, gi)
	}
	left := cm.plainGroups(top, asts, plains, part, todo, results)
	plain := make([]bool, len(part.groups))
	for _, gi := range todo {
		plain[gi] = true
	}
	for _, gi := range left {
		plain[gi] = false
	}
	for gi, idx := range part.groups {
		if !plain[gi] {
			unwritten.write(idx)
		}
	}
	cm.evaluateGroups(top, asts, sharedFiles, part, left, keys, results, workers)
	if len(left) < len(todo) {
		for _, gi := range left {
			if r := results[gi]; r.err != "" || r.diags.HasErrors() {
				// Where CUE places an error that names no file
				// depends on the batch it was evaluated in: the
				// groups are evaluated again in the batches they
				// would have had without the plain-data path, so
				// that an invalid policy is reported as CUE alone
				// reports it.
				for _, gi := range todo {
					unwritten.write(part.groups[gi])
				}
				cm.evaluateGroups(top, asts, sharedFiles, part, todo, keys, results, workers)
				break
			}
		}
	}

	for _, r := range results {
		if r.err != "" {
			whole := newCompilation(top.files)
			whole.parse()
			whole.run(stages[1:])
			return whole.result()
		}
	}
	keep := make(map[string]*groupResult, len(results))
	out := newCompilation(top.files)
	for gi, r := range results {
		out.diags = append(out.diags, r.diags...)
		out.accounts = append(out.accounts, r.accounts...)
		if !r.diags.HasErrors() {
			keep[keys[gi]] = r
		}
	}
	cm.groups = keep
	if !out.diags.HasErrors() {
		sort.Slice(out.accounts, func(i, j int) bool { return out.accounts[i].ID < out.accounts[j].ID })
		out.build()
	}
	return out.result()
}

// evaluateGroups evaluates the groups of todo with CUE, in batches: one
// CUE instance for several groups costs far less than one each (the schema
// and the shared part are evaluated once per instance), while a batch
// stays small enough to keep memory low; each group's result is still
// kept and cached on its own.
func (cm *Compiler) evaluateGroups(top *compilation, asts []*ast.File, sharedFiles []File, part partitioning, todo []int, keys []string, results []*groupResult, workers int) {
	var batches [][]int
	accounts := 0
	for _, gi := range todo {
		n := 0
		for _, i := range part.groups[gi] {
			n += len(part.accounts[i])
		}
		if len(batches) == 0 || accounts+n > batchAccounts {
			batches = append(batches, nil)
			accounts = 0
		}
		batches[len(batches)-1] = append(batches[len(batches)-1], gi)
		accounts += n
	}
	jobs := make(chan []int)
	var wg sync.WaitGroup
	for w := 0; w < workers && w < len(batches); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				cm.evaluateBatch(top, asts, sharedFiles, part, b, keys, results)
			}
		}()
	}
	for _, b := range batches {
		jobs <- b
	}
	close(jobs)
	wg.Wait()
}

// plainGroups compiles the groups of todo whose files and shared files are
// all plain data without CUE (see plain.go), in parallel, storing their
// results, and returns the groups left. A group file's plain value is
// decoded from plains, and plains forgets it: a group is compiled once.
func (cm *Compiler) plainGroups(top *compilation, asts []*ast.File, plains [][]byte, part partitioning, todo []int, results []*groupResult) []int {
	if !plainDataPath || len(todo) == 0 {
		return todo
	}
	var shared []*ast.File
	for _, i := range part.shared {
		af := asts[i]
		if af == nil {
			var err error
			if af, err = parser.ParseFile(top.files[i].Name, top.files[i].Data, parser.ParseComments); err != nil {
				return todo
			}
		}
		if _, ok := plainFile(af); !ok {
			return todo
		}
		shared = append(shared, af)
	}
	sharedFiles := pick(top.files, part.shared)
	workers := cm.opts.Parallel
	if workers <= 0 {
		workers = goruntime.GOMAXPROCS(0)
	}
	done := make([]bool, len(todo))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers && w < len(todo); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := newInterning() // this worker's groups share their values
			for ti := int(next.Add(1) - 1); ti < len(todo); ti = int(next.Add(1) - 1) {
				gi := todo[ti]
				files := append([]File(nil), sharedFiles...)
				for _, i := range part.groups[gi] {
					files = append(files, top.files[i])
				}
				c, ok := plainCompilationOf(files, plainSources(top, shared, asts, plains, part.groups[gi]), in)
				if !ok {
					continue
				}
				if r := c.groupResult(cm.wanted(top, asts, part.groups[gi])); r.err == "" {
					results[gi], done[ti] = &r, true
				}
			}
		}()
	}
	wg.Wait()
	var left []int
	for ti, gi := range todo {
		if !done[ti] {
			left = append(left, gi)
		}
	}
	return left
}

// plainSources returns the plain values of the shared files and of the
// group files idx, decoded afresh (merging changes them), or nil when a
// file is not plain data. A group file's value comes from plains, which
// then forgets it, or from its syntax tree, parsed again if need be.
func plainSources(top *compilation, shared []*ast.File, asts []*ast.File, plains [][]byte, idx []int) []*pnode {
	var out []*pnode
	for _, af := range shared {
		v, ok := plainFile(af)
		if !ok {
			return nil
		}
		out = append(out, v)
	}
	for _, i := range idx {
		var v *pnode
		ok := false
		switch {
		case plains[i] != nil:
			v, ok = decodePlain(plains[i])
			plains[i] = nil
		case asts[i] != nil:
			v, ok = plainFile(asts[i])
		default:
			if af, err := parser.ParseFile(top.files[i].Name, top.files[i].Data, parser.ParseComments); err == nil {
				v, ok = plainFile(af)
			}
		}
		if !ok {
			return nil
		}
		out = append(out, v)
	}
	return out
}

// plainCompilation decodes, checks and resolves a policy of plain-data
// files without CUE. It reports false, leaving the policy to CUE, when a
// file is not plain data, the schema rejects a value, or any diagnostic
// arises: the positions of diagnostics are CUE's to give.
func plainCompilation(files []File, asts []*ast.File) (*compilation, bool) {
	if !plainDataPath || len(asts) != len(files) {
		return nil, false
	}
	pol, ok := plainPolicy(asts)
	if !ok {
		return nil, false
	}
	return plainCompilationOfPolicy(files, asts, pol, nil)
}

// plainCompilationOf is plainCompilation of the files' plain values
// (plainSources; nil: not plain data), resolved with in's interning.
func plainCompilationOf(files []File, values []*pnode, in *interning) (*compilation, bool) {
	if !plainDataPath || values == nil {
		return nil, false
	}
	pol, ok := plainPolicyOf(values)
	if !ok {
		return nil, false
	}
	return plainCompilationOfPolicy(files, nil, pol, in)
}

// plainCompilationOfPolicy checks and resolves a policy the plain-data
// path decoded (asts: the files' syntax trees, when there are; in: the
// interning to share, nil for its own).
func plainCompilationOfPolicy(files []File, asts []*ast.File, pol rawPolicy, in *interning) (*compilation, bool) {
	c := newCompilation(files)
	c.asts = asts
	c.interning = in
	c.policy = pol
	c.loadBuiltin()
	c.check()
	c.resolve()
	if len(c.diags) > 0 {
		return nil, false
	}
	plainCompiled.Add(1)
	return c, true
}

// plainCompiled counts the policies and groups the plain-data path
// compiled, for the tests.
var plainCompiled atomic.Int64

// batchAccounts is how many accounts at most are evaluated in one CUE
// instance.
const batchAccounts = 40

// wanted returns the accounts the files idx define.
func (cm *Compiler) wanted(top *compilation, asts []*ast.File, idx []int) map[string]bool {
	want := map[string]bool{}
	for _, i := range idx {
		for _, a := range cm.files[top.files[i].Name].info.accounts {
			want[a] = true
		}
	}
	return want
}

// evaluateBatch evaluates the groups of a batch together with the shared
// files as one CUE instance and stores each group's result in results.
// An error is reported on the batch's first group.
func (cm *Compiler) evaluateBatch(top *compilation, asts []*ast.File, sharedFiles []File, part partitioning, batch []int, keys []string, results []*groupResult) {
	files := append([]File(nil), sharedFiles...)
	c := newCompilation(nil)
	// Shared files are parsed afresh for each instance, because evaluation
	// annotates a file's syntax tree and batches run concurrently; a
	// group's own files are used by its batch only.
	for _, f := range sharedFiles {
		af, err := parser.ParseFile(f.Name, f.Data, parser.ParseComments)
		if err != nil {
			results[batch[0]] = &groupResult{err: err.Error()}
			return
		}
		c.asts = append(c.asts, af)
	}
	wants := make([]map[string]bool, len(batch))
	all := map[string]bool{}
	for bi, gi := range batch {
		for _, i := range part.groups[gi] {
			af := asts[i]
			if af == nil {
				var err error
				if af, err = parser.ParseFile(top.files[i].Name, top.files[i].Data, parser.ParseComments); err != nil {
					results[batch[0]] = &groupResult{err: err.Error()}
					return
				}
			}
			c.asts = append(c.asts, af)
			files = append(files, top.files[i])
		}
		wants[bi] = cm.wanted(top, asts, part.groups[gi])
		for a := range wants[bi] {
			all[a] = true
		}
	}
	c.files = files
	for _, f := range files {
		c.userFiles[f.Name] = true
	}
	c.run(groupStages)
	r := c.groupResult(all)
	for _, gi := range batch {
		results[gi] = &groupResult{}
	}
	if r.err != "" || r.diags.HasErrors() {
		results[batch[0]] = &r
		return
	}
	byID := map[string]*table.Account{}
	for _, a := range r.accounts {
		byID[a.ID] = a
	}
	for bi, gi := range batch {
		g := &groupResult{diags: r.diags}
		pol := rawPolicy{Defaults: c.policy.Defaults, Accounts: map[string]*rawAccount{}}
		for _, id := range sortedKeys(wants[bi]) {
			g.accounts = append(g.accounts, byID[id])
			pol.Accounts[id] = c.policy.Accounts[id]
		}
		results[gi] = g
		if cm.opts.CacheDir != "" {
			writeCache(cm.opts.CacheDir, keys[gi], pol, r.diags)
		}
	}
}

func (c *compilation) groupResult(want map[string]bool) groupResult {
	if c.diags.HasErrors() {
		return groupResult{diags: c.diags}
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
	return groupResult{accounts: c.accounts, diags: c.diags}
}

func pick[T any](s []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}
