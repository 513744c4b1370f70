package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// Policy holds the live decision table of a policy directory and reloads
// it. A reload re-evaluates only the account groups whose files changed
// (or all of them when the shared files did). A reload compiles the directory fully before anything changes; an
// invalid policy keeps the old table live; an unchanged one is not
// swapped. Calls in progress keep the table they started with.
type Policy struct {
	dir     string
	comp    *compiler.Compiler
	log     *slog.Logger
	metrics *Metrics
	cur     atomic.Pointer[table.Table]
	// failed is the last reload's failure, nil when it succeeded.
	failed atomic.Pointer[reloadFailure]
	// OnSwap, when set, is called after a new table goes live.
	OnSwap func(*table.Table)
}

// LoadPolicy compiles a policy directory. The first compile must succeed.
func LoadPolicy(dir string, opts compiler.Options, log *slog.Logger, m *Metrics) (*Policy, error) {
	p := &Policy{dir: dir, comp: compiler.NewCompiler(opts), log: log, metrics: m}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

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
func (p *Policy) Reload() error {
	start := time.Now()
	res, err := p.comp.Compile(p.dir)
	if err == nil && res.Table == nil {
		err = fmt.Errorf("%w:\n%s", ErrInvalidPolicy, res.Diagnostics.Errors())
	}
	if err != nil {
		p.metrics.Reloads.WithLabelValues("failed").Inc()
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
	old := p.cur.Swap(res.Table)
	p.metrics.Reloads.WithLabelValues("ok").Inc()
	if old != nil {
		p.metrics.TableInfo.DeleteLabelValues(old.Version)
	}
	p.metrics.TableInfo.WithLabelValues(res.Table.Version).Set(1)
	p.metrics.TableAccounts.Set(float64(len(res.Table.AccountIDs())))
	p.log.Info("policy live", "version", res.Table.Version, "accounts", len(res.Table.AccountIDs()),
		"took", time.Since(start).Round(time.Millisecond))
	if p.OnSwap != nil {
		p.OnSwap(res.Table)
	}
	return nil
}

// Watch reloads the policy whenever its directory changes (editors that
// save by rename, Kubernetes ConfigMap symlink swaps, new and deleted
// files) or a trigger arrives (SIGHUP, the HTTP API), after debounce of
// quiet. Every trigger goes through this one loop. It returns when ctx is
// done.
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
	// A change made between the last load and this watch is caught by one
	// reload now (an unchanged policy is not swapped).
	arm()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Dir(ev.Name) == filepath.Dir(p.dir) && ev.Name != p.dir {
				continue // a sibling of the policy directory
			}
			if ev.Name == p.dir && ev.Has(fsnotify.Create) {
				_ = w.Add(p.dir) // the directory was replaced
			}
			arm()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			p.log.Warn("watching the policy directory", "error", err)
		case <-trigger:
			arm()
		case <-fire:
			fire = nil
			_ = p.Reload()
			// A symlink swap may have replaced what is watched.
			_ = w.Add(p.dir)
		}
	}
}
