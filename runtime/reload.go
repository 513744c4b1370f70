package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/compiler/isolate"
	"github.com/recpol/recpol/table"
)

// Policy holds the live decision table of a policy directory and reloads
// it. A reload re-evaluates only the account groups whose files changed
// (or all of them when the shared files did). A reload compiles the
// directory fully before anything changes; an invalid policy, or one whose
// compile goes over its budget, keeps the old table live; an unchanged one
// is not swapped. Calls in progress keep the table they started with.
//
// A runtime compiles in a child process within a budget of time and
// memory (package isolate), so that no policy can take it down: a compile
// over budget is killed and reported as a failed reload with the bound it
// crossed.
type Policy struct {
	dir      string
	cacheDir string
	// compile compiles dir; with changed not nil, only the files it
	// names may have changed since the last compile (a watcher's events:
	// compiler.Compiler.CompileChanged).
	compile func(ctx context.Context, dir string, changed []string) (*compiler.Result, error)
	close   func() error
	log     *slog.Logger
	metrics *Metrics
	cur     atomic.Pointer[table.Table]
	// failed is the last reload's failure, nil when it succeeded.
	failed atomic.Pointer[reloadFailure]
	// OnSwap, when set, is called after a new table goes live.
	OnSwap func(*table.Table)
	// supersedeAfter is how long a compile in progress may still run
	// once a newer change waits (DefaultSupersedeAfter).
	supersedeAfter time.Duration
}

// DefaultSupersedeAfter is how long a compile in progress may still run
// once a newer change is waiting: a normal compile finishes and the change
// is compiled right after (killing the worker would lose its warm state
// and make every reload of a busy directory cold); a heavy one (up to the
// compile budget) is stopped then, so a newer change never waits longer.
const DefaultSupersedeAfter = 10 * time.Second

// PolicyOptions say how a policy directory is compiled.
type PolicyOptions struct {
	// Compiler are the compiler's options; CacheDir also keeps the last
	// table that compiled (compiler.LastGood).
	Compiler compiler.Options
	// Budget bounds each compile, which then runs in a child process
	// (package isolate: the program must call isolate.Main first). Nil
	// compiles in this process without a bound: for tools and benchmarks,
	// never for a runtime beside a switch.
	Budget *isolate.Budget
}

// LoadPolicy compiles a policy directory. When the first compile fails,
// the policy starts on the last table that compiled with the same cache
// (compiler.LastGood), with the failure reported as a failed reload; with
// no such table, LoadPolicy fails.
func LoadPolicy(dir string, o PolicyOptions, log *slog.Logger, m *Metrics) (*Policy, error) {
	p := &Policy{dir: dir, cacheDir: o.Compiler.CacheDir, log: log, metrics: m, close: func() error { return nil },
		supersedeAfter: DefaultSupersedeAfter}
	if o.Budget != nil {
		ic := isolate.New(o.Compiler, *o.Budget)
		p.close = ic.Close
		p.compile = func(ctx context.Context, dir string, changed []string) (*compiler.Result, error) {
			if changed == nil {
				return ic.Compile(ctx, dir)
			}
			return ic.CompileChanged(ctx, dir, changed)
		}
	} else {
		cm := compiler.NewCompiler(o.Compiler)
		p.compile = func(_ context.Context, dir string, changed []string) (*compiler.Result, error) {
			if changed == nil {
				return cm.Compile(dir)
			}
			return cm.CompileChanged(dir, changed)
		}
	}
	err := p.Reload()
	if err == nil {
		return p, nil
	}
	if p.cacheDir == "" {
		p.close()
		return nil, err
	}
	last, written, lerr := compiler.LastGood(p.cacheDir, dir)
	if lerr != nil {
		p.close()
		if errors.Is(lerr, compiler.ErrNoLastGood) {
			return nil, err
		}
		return nil, fmt.Errorf("%w (and the last good table: %v)", err, lerr)
	}
	p.swap(last.Table)
	p.log.Error("the policy does not compile: starting on the last table that did", "dir", dir,
		"version", last.Table.Version, "compiled_at", time.Unix(0, written).UTC().Format(time.RFC3339), "error", err)
	return p, nil
}

// Close stops the policy's compile worker, if it has one.
func (p *Policy) Close() error { return p.close() }

// reloadFailure is a failed reload: when, and the error's first line.
type reloadFailure struct {
	at  time.Time
	err string
}

// LastReloadFailure returns why the last reload failed and when; ok is
// false when it succeeded.
func (p *Policy) LastReloadFailure() (reason string, at time.Time, ok bool) {
	f := p.failed.Load()
	if f == nil {
		return "", time.Time{}, false
	}
	return f.err, f.at, true
}

// Table returns the live table.
func (p *Policy) Table() *table.Table { return p.cur.Load() }

// ErrInvalidPolicy wraps the diagnostics of a policy that does not compile.
var ErrInvalidPolicy = errors.New("invalid policy")

// Reload compiles the directory and swaps the table when the policy is
// valid and its version changed.
func (p *Policy) Reload() error { return p.reload(context.Background(), nil) }

// reload is Reload under ctx: a cancelled reload (superseded by a newer
// trigger) changes nothing and is not a failure. With changed not nil,
// only the files it names may have changed since the last reload.
func (p *Policy) reload(ctx context.Context, changed []string) error {
	start := time.Now()
	p.metrics.ReloadInProgress.Set(1)
	res, err := p.compile(ctx, p.dir, changed)
	p.metrics.ReloadInProgress.Set(0)
	if ctx.Err() != nil {
		p.metrics.Reloads.WithLabelValues("superseded").Inc()
		p.log.Info("policy reload superseded by a newer change", "dir", p.dir)
		return ctx.Err()
	}
	if err == nil && res.Table == nil {
		err = fmt.Errorf("%w:\n%s", ErrInvalidPolicy, res.Diagnostics.Errors())
	}
	if err != nil {
		outcome := "failed"
		if errors.Is(err, isolate.ErrOverBudget) {
			outcome = "over_budget"
		}
		p.metrics.Reloads.WithLabelValues(outcome).Inc()
		p.metrics.LastReloadOK.Set(0)
		old := "none"
		if t := p.cur.Load(); t != nil {
			old = t.Version
		}
		p.log.Error("policy reload failed: the previous table stays live", "dir", p.dir, "live_version", old, "error", err)
		first, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
		if res != nil {
			if d := res.Diagnostics.Errors(); len(d) > 0 {
				first = fmt.Sprintf("%s (%d errors; the first: %s)", ErrInvalidPolicy, len(d), d[0].String())
			}
		}
		p.failed.Store(&reloadFailure{at: time.Now(), err: first})
		return err
	}
	for _, d := range res.Diagnostics.Warnings() {
		p.log.Warn("policy warning", "diagnostic", d.String())
	}
	p.failed.Store(nil)
	p.metrics.LastReloadOK.Set(1)
	p.metrics.LastReloadOKSeconds.SetToCurrentTime()
	if old := p.cur.Load(); old != nil && old.Version == res.Table.Version {
		p.metrics.Reloads.WithLabelValues("unchanged").Inc()
		p.log.Debug("policy unchanged", "version", old.Version)
		return nil
	}
	p.swap(res.Table)
	p.metrics.Reloads.WithLabelValues("ok").Inc()
	p.log.Info("policy live", "version", res.Table.Version, "accounts", len(res.Table.AccountIDs()),
		"took", time.Since(start).Round(time.Millisecond))
	if p.OnSwap != nil {
		p.OnSwap(res.Table)
	}
	return nil
}

// swap makes t the live table and says so in the metrics.
func (p *Policy) swap(t *table.Table) {
	if old := p.cur.Swap(t); old != nil {
		p.metrics.TableInfo.DeleteLabelValues(old.Version)
	}
	p.metrics.TableInfo.WithLabelValues(t.Version).Set(1)
	p.metrics.TableAccounts.Set(float64(len(t.AccountIDs())))
}

// Watch reloads the policy whenever its directory changes (editors that
// save by rename, Kubernetes ConfigMap symlink swaps, new and deleted
// files) or a trigger arrives (SIGHUP, the HTTP API), after debounce of
// quiet. Every trigger goes through this one loop. It returns when ctx is
// done.
//
// A reload the watcher's events started looks again only at the files
// they name (and at symbolic links, which change without an event in the
// directory): one file changed in a thousand is not a thousand stats. The
// first reload, one after a trigger, after an error of the watcher (its
// queue overflowed: events were lost), after the directory itself was
// replaced, or after a reload that failed or was stopped, looks at every
// file. A policy file changed through a hard link in another directory
// raises no event here: a trigger reloads it.
func (p *Policy) Watch(ctx context.Context, debounce time.Duration, trigger <-chan struct{}) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", p.dir, err)
	}
	defer w.Close()
	// Watch the directory itself, and its parent so that a directory
	// replaced by a symlink swap is noticed too.
	if err := w.Add(p.dir); err != nil {
		return fmt.Errorf("watching %s: %w", p.dir, err)
	}
	_ = w.Add(filepath.Dir(p.dir))
	var timer *time.Timer
	var fire <-chan time.Time
	arm := func() {
		if timer == nil {
			timer = time.NewTimer(debounce)
		} else {
			timer.Reset(debounce)
		}
		fire = timer.C
	}
	// A reload runs beside this loop, so that a trigger is never blocked
	// by a compile in progress: a newer trigger waits at most
	// supersedeAfter for it, then cancels it (its child is killed), and a
	// reload of what the directory holds now starts once it has ended.
	var (
		cancelRun context.CancelFunc
		running   chan struct{} // closed when the reload in progress returns
		again     bool          // a trigger came during it
	)
	var (
		started   time.Time
		supersede <-chan time.Time // when a compile that a newer trigger waits for is stopped
	)
	// The files changed since the last reload started (base names), or
	// whole: every file is to be looked at.
	var (
		changed = map[string]bool{}
		whole   = true
		failed  bool // the reload in progress failed; written before running is closed
	)
	startReload := func() {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		cancelRun, running, started = cancel, done, time.Now()
		var names []string
		if !whole {
			names = append([]string{}, slices.Sorted(maps.Keys(changed))...) // not nil, even when empty
		}
		clear(changed)
		whole = false
		go func() {
			defer close(done)
			defer cancel()
			failed = p.reload(rctx, names) != nil
		}()
	}
	defer func() {
		if running != nil {
			cancelRun()
			<-running
		}
	}()
	// A change made between the last load and this watch is caught by one
	// reload now (an unchanged policy is not swapped).
	arm()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-supersede:
			supersede = nil
			if running != nil && again {
				cancelRun()
			}
		case <-running:
			running, supersede = nil, nil
			if failed {
				whole = true
			}
			// A symlink swap may have replaced what is watched.
			_ = w.Add(p.dir)
			if again {
				again = false
				startReload()
			}
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Dir(ev.Name) == filepath.Dir(p.dir) && ev.Name != p.dir {
				continue // a sibling of the policy directory
			}
			if ev.Name == p.dir {
				whole = true
				if ev.Has(fsnotify.Create) {
					_ = w.Add(p.dir) // the directory was replaced
				}
			} else {
				changed[filepath.Base(ev.Name)] = true
			}
			arm()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			p.log.Warn("watching the policy directory: looking at every file", "error", err)
			whole = true
			arm()
		case <-trigger:
			whole = true
			arm()
		case <-fire:
			fire = nil
			if running != nil {
				// A compile of normal length finishes (its worker stays
				// warm) and the newer change is compiled right after; one
				// that has run supersedeAfter is stopped for it.
				again = true
				if wait := p.supersedeAfter - time.Since(started); wait > 0 {
					if supersede == nil {
						supersede = time.After(wait)
					}
				} else {
					cancelRun()
				}
				continue
			}
			startReload()
		}
	}
}
