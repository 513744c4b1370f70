package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/compiler/isolate"
	"github.com/recpol/recpol/gen"
	"github.com/recpol/recpol/internal/bench/procstat"
	recpolruntime "github.com/recpol/recpol/runtime"
	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
)

// copyTree copies the .cue files of src into a new directory dst.
func copyTree(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(src, "*.cue"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// defaultDebounce is the runtime's reload debounce when the config does
// not set it, read from the runtime's own config loader.
func (r *runner) defaultDebounce() (time.Duration, error) {
	dir, err := os.MkdirTemp(r.cfg.Work, "cfg-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "runtime.cue")
	conf := `switches: [{address: "127.0.0.1:8021", password: "ClueCon"}]
policies: "policies"
storage: "storage"
spool: "spool"
`
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		return 0, err
	}
	cfg, err := recpolruntime.LoadConfig(p)
	if err != nil {
		return 0, err
	}
	return cfg.ReloadDebounce, nil
}

// reloadFigure measures hot reload: one account file of the main tree is
// rewritten (a new user added) and the time runs from the write to the
// first lookup of that user that succeeds on the live table, through the
// runtime's policy watcher with its default debounce and an on-disk cache.
func (r *runner) reloadFigure(ctx context.Context) {
	f := r.figure(fmt.Sprintf("hot reload, one account file changed in %d, write -> new table live", r.sz.accounts), "p99 < 50 ms")
	debounce, err := r.defaultDebounce()
	if err != nil {
		r.fail(f, err)
		return
	}
	dir := filepath.Join(r.cfg.Work, "reload-policy")
	os.RemoveAll(dir)
	if err := copyTree(r.tree, dir); err != nil {
		r.fail(f, err)
		return
	}
	time.Sleep(r.sz.treeAge)
	cache := filepath.Join(r.cfg.Work, "reload-cache")
	os.RemoveAll(cache)
	log := slog.New(slog.DiscardHandler)
	cpu0 := procstat.Self()
	lat, err := r.reloads(ctx, dir, cache, debounce, r.sz.reloads, log)
	cpu := procstat.Self() - cpu0
	if err != nil {
		r.fail(f, err)
		return
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	f.Commands = []string{fmt.Sprintf("in-process: runtime.LoadPolicy(%s, {compiler.Options{CacheDir}, the default compile budget}: compiles in a child worker as the runtime does) + Policy.Watch(debounce %s, the runtime default); %d times: rewrite %s.cue with one more user, poll Table().Lookup of that user until it is found",
		r.rel(dir), dur(debounce), len(lat), gen.AccountID(r.sz.accounts/2))}
	f.Value = fmt.Sprintf("p99 %s, p50 %s (%s)", dur(p99), dur(p50), spread(lat))
	f.CPU = fmt.Sprintf("%s per reload (the harness process's rusage over the %d reloads, the polling lookups included; the compile worker's CPU is not counted)", dur(cpu/time.Duration(len(lat))), len(lat))
	f.Peer = "cold compile (see above)"
	for _, x := range r.rep.Figures {
		if strings.HasPrefix(x.Name, "cold compile, "+fmt.Sprint(r.sz.accounts)+" ") {
			f.Peer = "cold compile: " + strings.SplitN(x.Value, ",", 2)[0]
		}
	}
	f.Ratio = "-"
	f.Met = met(p99 < 50*time.Millisecond)
	f.Notes = append(f.Notes, fmt.Sprintf("the debounce (%s, the runtime's default reload_debounce_ms) is part of every measurement", dur(debounce)))
	if r.sz.treeAge > 0 {
		f.Notes = append(f.Notes, fmt.Sprintf("the copy of the tree is %s old when it is loaded: the compiler reads again every file modified within 2 s of its last read (a change within a timestamp's granularity keeps a file's identity), so a reload just after the whole tree was written reads all of it (the first reload after a fresh copy took 66 ms on 9d3212a, the others 32-39 ms)", dur(r.sz.treeAge)))
	}
	r.add(f)
	if !*f.Met {
		f.Profile = r.profile(f.Name, func() error {
			_, err := r.reloads(ctx, dir, cache, debounce, max(1, r.sz.reloads/10), log)
			return err
		}) + fmt.Sprintf("\n(profile: the same reload loop in-process, %d reloads)", max(1, r.sz.reloads/10))
	}
}

var reloadSeq int

// reloads starts a policy watcher on dir and measures n reloads.
func (r *runner) reloads(ctx context.Context, dir, cache string, debounce time.Duration, n int, log *slog.Logger) ([]time.Duration, error) {
	p, err := recpolruntime.LoadPolicy(dir, recpolruntime.PolicyOptions{Compiler: compiler.Options{CacheDir: cache}, Budget: &isolate.Budget{}}, log, recpolruntime.NewMetrics())
	if err != nil {
		return nil, err
	}
	defer p.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Watch(wctx, debounce, nil) }()
	// Let the watcher's first reload pass.
	time.Sleep(debounce + r.sz.settle)
	acct := gen.AccountID(r.sz.accounts / 2)
	file := filepath.Join(dir, acct+".cue")
	orig, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := 0; i < n; i++ {
		reloadSeq++
		user := fmt.Sprintf("reload%05d", reloadSeq)
		src := strings.Replace(string(orig), "\tusers: {\n", fmt.Sprintf("\tusers: {\n\t\t%q: {}\n", user), 1)
		if src == string(orig) {
			return nil, fmt.Errorf("%s has no users block", file)
		}
		start := time.Now()
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			return nil, err
		}
		deadline := start.Add(30 * time.Second)
		for {
			if _, ok := p.Table().Lookup(acct, table.User, user, table.Inbound, table.Offnet); ok {
				lat = append(lat, time.Since(start))
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("reload %d: the new table did not go live within 30 s", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
		time.Sleep(debounce + 100*time.Millisecond)
	}
	os.WriteFile(file, orig, 0o644)
	cancel()
	<-done
	return lat, nil
}

// mainTable compiles the main tree in-process.
func (r *runner) mainTable() (*table.Table, error) {
	res, err := compiler.Options{CacheDir: filepath.Join(r.cfg.Work, "warm-cache")}.Compile(r.tree)
	if err != nil {
		return nil, err
	}
	if res.Table == nil {
		return nil, fmt.Errorf("%s", res.Diagnostics.Errors())
	}
	return res.Table, nil
}

// lookupFigure measures Table.Lookup on the main table against a read of
// a plain Go map keyed by account id, with testing.Benchmark.
func (r *runner) lookupFigure(ctx context.Context) {
	f := r.figure("decision lookup", "< 50 ns/op, 0 allocs/op")
	t, err := r.mainTable()
	if err != nil {
		r.fail(f, err)
		return
	}
	acct := gen.AccountID(r.sz.accounts / 2)
	m := map[string]*table.Account{}
	for _, id := range t.AccountIDs() {
		a, _ := t.Account(id)
		m[id] = a
	}
	var lns, mns []float64
	var allocs float64
	cpu0, wall0 := procstat.Self(), time.Now()
	for i := 0; i < r.sz.fastRuns; i++ {
		lr, la := opLoop(r.sz.benchtime, func() { t.Lookup(acct, table.Device, "d010", table.Inbound, table.Offnet) })
		mr, _ := opLoop(r.sz.benchtime, func() { _ = m[acct] })
		lns, mns = append(lns, lr), append(mns, mr)
		allocs = max(allocs, la)
	}
	l, mm := median(lns), median(mns)
	cpu, wall := procstat.Self()-cpu0, time.Since(wall0)
	f.CPU = fmt.Sprintf("%s over %s of lookups and map reads (the harness process's rusage: one goroutine, so CPU ~ wall, %.2fx)", dur(cpu), dur(wall), float64(cpu)/float64(wall))
	f.Commands = []string{fmt.Sprintf("in-process, %s of calls x %d runs: table.Lookup(%q, Device, \"d010\", Inbound, Offnet) on the %d-account table; peer: m[%q] on a map[string]*table.Account of the same accounts (the same loop, through a func value in both)",
		r.sz.benchtime, r.sz.fastRuns, acct, r.sz.accounts, acct)}
	f.Value = fmt.Sprintf("%.1f ns/op, %g allocs/op", l, allocs)
	f.Peer = fmt.Sprintf("map read: %.1f ns/op", mm)
	f.Ratio = ratio(l, mm)
	f.Met = met(l < 50 && allocs == 0)
	r.add(f)
	if !*f.Met {
		f.Profile = r.profile(f.Name, func() error {
			for start := time.Now(); time.Since(start) < r.sz.profileFor; {
				for i := 0; i < 10000; i++ {
					t.Lookup(acct, table.Device, "d010", table.Inbound, table.Offnet)
				}
			}
			return nil
		})
	}
}

// simulateFigure times simulate.Run over the in-memory main table.
func (r *runner) simulateFigure(ctx context.Context) {
	f := r.figure(fmt.Sprintf("simulate every call of every account, %d accounts", r.sz.accounts), "< 2 s")
	t, err := r.mainTable()
	if err != nil {
		r.fail(f, err)
		return
	}
	var ds, cs []time.Duration
	calls := 0
	for i := 0; i < r.sz.fastRuns; i++ {
		start, cpu0 := time.Now(), procstat.Self()
		res, err := simulate.Run(t)
		d := time.Since(start)
		cs = append(cs, procstat.Self()-cpu0)
		if err != nil {
			r.fail(f, err)
			return
		}
		calls = countCalls(res)
		ds = append(ds, d)
	}
	md := median(ds)
	f.Commands = []string{fmt.Sprintf("in-process: simulate.Run(table) on the %d-account table compiled in memory, not rendered, x %d", r.sz.accounts, len(ds))}
	f.Value = fmt.Sprintf("%s (%s), %d calls", dur(md), spread(ds), calls)
	f.CPU = fmt.Sprintf("%s (the harness process's rusage around each run; %s)", dur(median(cs)), spread(cs))
	f.Peer, f.Ratio = "-", "-"
	f.Met = met(md < 2*time.Second)
	r.add(f)
	if !*f.Met {
		f.Profile = r.profile(f.Name, func() error { _, err := simulate.Run(t); return err })
	}
}

func countCalls(res *simulate.Result) int {
	n := 0
	for _, a := range res.Accounts {
		n += len(a.Calls)
	}
	return n
}

// opLoop calls fn repeatedly for about d and returns the time and heap
// allocations per call.
func opLoop(d time.Duration, fn func()) (ns, allocs float64) {
	n := 1
	for {
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		start := time.Now()
		for i := 0; i < n; i++ {
			fn()
		}
		took := time.Since(start)
		goruntime.ReadMemStats(&after)
		if took >= d || n >= 1<<30 {
			return float64(took.Nanoseconds()) / float64(n), float64(after.Mallocs-before.Mallocs) / float64(n)
		}
		n *= 2
		if took > 0 {
			n = max(n, int(float64(n/2)*float64(d)/float64(took)*1.1))
		}
	}
}
