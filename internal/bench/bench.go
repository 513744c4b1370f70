// Package bench measures recpol against its performance goals and writes
// BENCHMARKS.md: cold and warm compiles against the CUE CLI's own `cue vet`,
// hot reload, decision lookup against a plain map read, simulation, and the
// runtime against the fake switch over loopback TCP. Each figure is the
// median of several runs with its peer measured in the same run; a figure
// that misses its goal carries the top of a CPU profile of the same work.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/recpol/recpol/gen"
	"github.com/recpol/recpol/internal/bench/procstat"
)

// Config says what to measure and where.
type Config struct {
	// Root is the module root (where go.mod is).
	Root string
	// Work is a scratch directory for generated trees, caches and
	// recordings; it is created if needed.
	Work string
	// Recpol is the recpol binary; Cue the CUE CLI (empty or missing:
	// the cue vet peer is reported as unavailable).
	Recpol, Cue string
	// Quick uses small trees and few runs, so that the harness runs in a
	// few seconds under go test.
	Quick bool
	// Log receives progress lines; nil discards.
	Log io.Writer
	// Only, when not empty, names the groups of figures to measure
	// (compile, reload, lookup, simulate, runtime); the others are left
	// out of the report. For iterating on one figure, never for
	// BENCHMARKS.md.
	Only []string
}

// sizes are the generated trees and run counts of a full or quick run.
type sizes struct {
	accounts, large   int // the main tree and the large cold-compile tree
	users, devices    int
	slowRuns          int           // runs of figures that take seconds
	fastRuns          int           // runs of figures that take milliseconds
	reloads           int           // hot reloads measured
	setups            int           // calls placed for the runtime throughput figure
	pacedSetups       int           // calls placed at the paced rate
	pacedRate         int           // setups per second of the latency figure
	cpuCalls          int           // calls of two 3 s recordings for the CPU per call figure
	halfFor           time.Duration // how long calls are placed at half the sustained rate
	benchtime         time.Duration // per run of a loop measured in-process
	profileFor        time.Duration // how long a repeated operation is profiled
	settle            time.Duration // how long a new policy watcher is left alone
	treeAge           time.Duration // how old the reload figure's copied tree is before it is loaded
	skipPeerLargeOver time.Duration // a cue vet run of the large tree longer than this is run once
}

// treeAge is how long the reload figure leaves its copy of the tree alone
// before loading it: the compiler reads again every file modified within
// two seconds of its last read (doubtWindow in compiler/manifest.go: a
// change within a timestamp's granularity keeps the file's identity), so a
// reload soon after the whole tree was written reads all of it again. The
// figure is of one file changed in a tree that was not just written.
const treeAge = 2*time.Second + 200*time.Millisecond

func (c *Config) sizes() sizes {
	if c.Quick {
		return sizes{accounts: 20, large: 40, users: 10, devices: 20, slowRuns: 1, fastRuns: 3, reloads: 2, settle: 100 * time.Millisecond,
			setups: 100, pacedSetups: 50, pacedRate: 1000, cpuCalls: 50, halfFor: 2 * time.Second, benchtime: 50 * time.Millisecond, profileFor: 200 * time.Millisecond}
	}
	return sizes{accounts: 1000, large: 5000, users: 10, devices: 20, slowRuns: 3, fastRuns: 7, reloads: 30, settle: 500 * time.Millisecond, treeAge: treeAge,
		setups: 3000, pacedSetups: 3000, pacedRate: 1000, cpuCalls: 400, halfFor: 20 * time.Second, benchtime: time.Second, profileFor: 3 * time.Second, skipPeerLargeOver: 2 * time.Minute}
}

// Figure is one measured figure.
type Figure struct {
	Name     string
	Commands []string // the command lines measured, or how it was measured in-process
	Value    string   // the median (and spread)
	Peer     string   // the peer's median, "-" when there is none
	Ratio    string   // value / peer, "-" when there is none
	Goal     string
	Met      *bool    // nil: not measured
	Notes    []string // method details and anything missing
	Profile  string   // top of a CPU profile when the goal is not met
	// CPU is the CPU time (user + system) of the work measured, and
	// whose it is (the child's rusage, or the harness's own).
	CPU string
	// LoadStart and LoadEnd are the machine's load averages (1, 5 and
	// 15 min) when the figure's measurement started and ended.
	LoadStart, LoadEnd string
}

// Report is everything a run measured.
type Report struct {
	Machine  []string
	Started  time.Time
	Took     time.Duration
	Quick    bool
	Commands []string
	Figures  []*Figure
}

type runner struct {
	cfg    Config
	sz     sizes
	rep    *Report
	tree   string // the main generated tree, with the schema beside it
	large  string // the large generated tree
	schema []byte
	load0  string // the load average when the run started
	// launcher starts every child measured (internal/bench/procstat):
	// its peak RSS and CPU are then its own.
	launcher string
}

// figure starts a figure: the load average now is its LoadStart.
func (r *runner) figure(name, goal string) *Figure {
	return &Figure{Name: name, Goal: goal, LoadStart: loadavg()}
}

// add ends a figure's measurement (the load average now is its LoadEnd)
// and adds it to the report.
func (r *runner) add(f *Figure) {
	f.LoadEnd = loadavg()
	r.rep.Figures = append(r.rep.Figures, f)
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string { return procstat.LoadAvg() }

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "bench: %s "+format+"\n", append([]any{time.Since(r.rep.Started).Round(time.Millisecond)}, args...)...)
	}
}

// Run measures every figure and returns the report. A figure that cannot
// be measured is reported with its reason; only a failure to set up the
// trees is an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	r := &runner{cfg: cfg, sz: cfg.sizes(), rep: &Report{Started: time.Now(), Quick: cfg.Quick}}
	r.rep.Machine = machine()
	r.load0 = loadavg()
	if err := os.MkdirAll(cfg.Work, 0o755); err != nil {
		return nil, err
	}
	var err error
	if r.launcher, err = procstat.Build(cfg.Root, cfg.Work); err != nil {
		return nil, err
	}
	if err := r.setup(); err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		run  func(context.Context)
	}{{"compile", r.compileFigures}, {"reload", r.reloadFigure}, {"lookup", r.lookupFigure}, {"simulate", r.simulateFigure}, {"runtime", r.runtimeFigures}}
	for _, step := range steps {
		if ctx.Err() != nil {
			break
		}
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, step.name) {
			continue
		}
		r.logf("%s figures", step.name)
		step.run(ctx)
	}
	r.logf("done")
	r.rep.Machine = append(r.rep.Machine, "Load average (1, 5, 15 min) at the start: "+r.load0+"; at the end: "+loadavg()+
		". Other work on the machine during the run shows here and makes the figures slower than they are.")
	r.rep.Took = time.Since(r.rep.Started)
	return r.rep, nil
}

// setup generates the trees (seeded) and writes `recpol schema` beside them.
func (r *runner) setup() error {
	out, err := exec.Command(r.cfg.Recpol, "schema").Output()
	if err != nil {
		return fmt.Errorf("recpol schema: %w", err)
	}
	r.schema = out
	r.tree = filepath.Join(r.cfg.Work, fmt.Sprintf("tree-%d", r.sz.accounts))
	r.large = filepath.Join(r.cfg.Work, fmt.Sprintf("tree-%d", r.sz.large))
	for _, t := range []struct {
		dir string
		n   int
	}{{r.tree, r.sz.accounts}, {r.large, r.sz.large}} {
		if err := os.RemoveAll(t.dir); err != nil {
			return err
		}
		r.logf("generating %d accounts in %s", t.n, t.dir)
		if err := gen.Write(t.dir, gen.Options{Accounts: t.n, Users: r.sz.users, Devices: r.sz.devices, Seed: 1}); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(t.dir, "recpol_schema.cue"), r.schema, 0o644); err != nil {
			return err
		}
		r.rep.Commands = append(r.rep.Commands,
			fmt.Sprintf("recpol gen --accounts %d --users %d --devices %d --seed 1 -o %s", t.n, r.sz.users, r.sz.devices, r.rel(t.dir)),
			fmt.Sprintf("recpol schema > %s/recpol_schema.cue", r.rel(t.dir)))
	}
	return nil
}

// rel shortens a path under the work directory for display.
func (r *runner) rel(p string) string {
	if rel, err := filepath.Rel(r.cfg.Work, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "$WORK/" + rel
	}
	return p
}

// proc is one child process run: wall time, CPU time and peak resident
// set size, its own (see procstat).
type proc struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	maxRSS int64         // bytes
}

// runProc runs a command as a child process, through the launcher, and
// measures it.
func (r *runner) runProc(ctx context.Context, dir string, env []string, name string, args ...string) (proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	p, err := procstat.Start(r.launcher, cmd)
	if err != nil {
		return proc{}, err
	}
	stop := context.AfterFunc(ctx, func() { p.Signal(syscall.SIGKILL) })
	u, err := p.Wait()
	stop()
	if err != nil {
		return proc{}, fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return proc{wall: u.Wall, cpu: u.CPU(), maxRSS: u.PeakRSS}, nil
}

// peakNote says how a child's peak RSS was measured.
const peakNote = "peak RSS: wait4's ru_maxrss of the child, started by a launcher of a few MB (internal/bench/procstat) so that it is the child's own peak, not the harness's memory at the fork"

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the p-th percentile (0 < p <= 100), nearest rank.
func percentile(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s))*p/100+0.999999) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func spread(xs []time.Duration) string {
	if len(xs) < 2 {
		return fmt.Sprintf("n=%d", len(xs))
	}
	return fmt.Sprintf("min %s, max %s, n=%d", dur(slices.Min(xs)), dur(slices.Max(xs)), len(xs))
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d >= time.Microsecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	}
	return fmt.Sprintf("%d ns", d.Nanoseconds())
}

// cpuDur formats a CPU time.
func cpuDur(d time.Duration) string { return dur(d) + " CPU" }

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func met(ok bool) *bool { return &ok }

// fail records a figure that could not be measured.
func (r *runner) fail(f *Figure, err error) {
	r.logf("%s: %v", f.Name, err)
	f.Value = "not measured"
	f.Notes = append(f.Notes, "not measured: "+firstLine(err.Error()))
	r.add(f)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// profile runs fn under the CPU profiler and returns the top 10 entries by
// cumulative time, as `go tool pprof -top -cum` prints them.
func (r *runner) profile(name string, fn func() error, flags ...string) string {
	path := filepath.Join(r.cfg.Work, "profiles", strings.NewReplacer(" ", "-", ",", "", "/", "-").Replace(name)+".pprof")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "profile: " + err.Error()
	}
	f, err := os.Create(path)
	if err != nil {
		return "profile: " + err.Error()
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return "profile: " + err.Error()
	}
	ferr := fn()
	pprof.StopCPUProfile()
	f.Close()
	if ferr != nil {
		return "profile: the profiled run failed: " + ferr.Error()
	}
	return topCum(path, flags...)
}

// topCum formats a profile with `go tool pprof -top -cum`, keeping the
// header and the first 10 entries.
func topCum(path string, flags ...string) string {
	gobin := filepath.Join(goruntime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	// The harness's own frames (the profiled closure and its callers) sit
	// at 100% and say nothing: they are hidden.
	args := append([]string{"tool", "pprof", "-top", "-cum", "-nodecount=10", `-hide=recpol/internal/bench\.|^main\.|^runtime\.main$`}, flags...)
	out, err := exec.Command(gobin, append(args, path)...).CombinedOutput()
	if err != nil {
		return "go tool pprof: " + err.Error() + "\n" + string(out)
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if !strings.HasPrefix(l, "File: ") && !strings.HasPrefix(l, "Build ID: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// machine describes the machine the figures were measured on.
func machine() []string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "MemTotal:")), "%d", &kb)
				mem = fmt.Sprintf("%.1f GB", float64(kb)/(1<<20))
			}
		}
	}
	host, _ := os.Hostname()
	return []string{
		fmt.Sprintf("CPU: %s, %d logical cores (GOMAXPROCS %d)", cpu, goruntime.NumCPU(), goruntime.GOMAXPROCS(0)),
		fmt.Sprintf("Memory: %s", mem),
		fmt.Sprintf("OS/arch: %s/%s, host %s", goruntime.GOOS, goruntime.GOARCH, host),
		fmt.Sprintf("Go: %s", goruntime.Version()),
	}
}

var errNoCue = errors.New("the cue CLI is not installed (make bench installs it into bin/)")
