package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/compiler/isolate"
	"github.com/recpol/recpol/table"
)

func quietLogger() *slog.Logger {
	if os.Getenv("RECPOL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

const policyV1 = "package recpol\naccounts: acme: devices: d1: call_recording: any: any: enabled: true\n"
const policyV2 = "package recpol\naccounts: acme: devices: d1: call_recording: any: any: enabled: false\n"
const policyBad = "package recpol\naccounts: acme: devices: d1: call_recording: any: any: time_limit: 1\n"

// writeRename saves a file the way editors do: a temporary file renamed
// over the old one.
func writeRename(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitVersion waits until the live table's version satisfies ok.
func waitVersion(t *testing.T, p *Policy, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ok(p.Table().Version) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; live version %s", what, p.Table().Version)
}

func versionOf(t *testing.T, src string) string {
	t.Helper()
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "p.cue", Data: []byte(src)}})
	if res.Table == nil {
		t.Fatal(res.Diagnostics)
	}
	return res.Table.Version
}

// TestAutoReloadValidToInvalidToValid: a valid change goes live, an
// invalid one keeps the old table (and says so in the metrics), a fix goes
// live again; saves by rename and new files are noticed.
func TestAutoReloadValidToInvalidToValid(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "acme.cue")
	if err := os.WriteFile(file, []byte(policyV1), 0o644); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	p, err := LoadPolicy(dir, PolicyOptions{Compiler: compiler.Options{CacheDir: t.TempDir()}, Budget: &isolate.Budget{}}, quietLogger(), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	v1, v2 := versionOf(t, policyV1), versionOf(t, policyV2)
	if p.Table().Version != v1 {
		t.Fatalf("initial version %s, want %s", p.Table().Version, v1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- p.Watch(ctx, 20*time.Millisecond, trigger) }()

	writeRename(t, file, policyV2)
	waitVersion(t, p, "v2", func(v string) bool { return v == v2 })

	writeRename(t, file, policyBad)
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.LastReloadOK) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.LastReloadOK); got != 0 {
		t.Fatalf("last_reload_successful = %v after an invalid edit", got)
	}
	if p.Table().Version != v2 {
		t.Fatalf("an invalid policy replaced the live table")
	}

	writeRename(t, file, policyV1)
	waitVersion(t, p, "v1 again", func(v string) bool { return v == v1 })
	if got := testutil.ToFloat64(m.LastReloadOK); got != 1 {
		t.Errorf("last_reload_successful = %v after the fix", got)
	}

	// A new file is noticed too.
	if err := os.WriteFile(filepath.Join(dir, "beta.cue"), []byte("package recpol\naccounts: beta: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, p, "beta", func(string) bool { _, ok := p.Table().Account("beta"); return ok })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReloadSymlinkSwap swaps a Kubernetes-style ConfigMap: the files are
// symlinks through ..data, which is replaced atomically.
func TestReloadSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, src string) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "acme.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("..v1", policyV1)
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/acme.cue", filepath.Join(dir, "acme.cue")); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(dir, PolicyOptions{}, quietLogger(), NewMetrics())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Watch(ctx, 20*time.Millisecond, nil)

	mk("..v2", policyV2)
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	v2 := versionOf(t, policyV2)
	waitVersion(t, p, "v2 after the swap", func(v string) bool { return v == v2 })
}

// TestReloadTrigger: SIGHUP and the API reload through the same loop; an
// unchanged policy is not swapped.
func TestReloadTrigger(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme.cue"), []byte(policyV1), 0o644); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	p, err := LoadPolicy(dir, PolicyOptions{}, quietLogger(), m)
	if err != nil {
		t.Fatal(err)
	}
	swaps := 0
	p.OnSwap = func(*table.Table) { swaps++ }
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.Reloads.WithLabelValues("unchanged")); got != 1 {
		t.Errorf("unchanged reloads = %v, want 1", got)
	}
	if swaps != 0 {
		t.Errorf("an unchanged policy was swapped")
	}
	if err := os.WriteFile(filepath.Join(dir, "acme.cue"), []byte(policyBad), 0o644); err != nil {
		t.Fatal(err)
	}
	err = p.Reload()
	if err == nil || !strings.Contains(err.Error(), "acme.cue:2:") {
		t.Errorf("reload error %v, want the positioned diagnostic", err)
	}
}

// Policies that no compile should finish: fifty million list elements,
// and a comprehension of a comprehension.
const (
	policyMemoryBomb = "package recpol\nimport \"list\"\n_bomb: list.Range(0, 50000000, 1)\n" +
		"accounts: acme: devices: d1: call_recording: any: any: enabled: len(_bomb) > 0\n"
	policyCPUBomb = "package recpol\nimport \"list\"\n_n: list.Range(0, 20000, 1)\n" +
		"_x: [for i in _n for j in _n if i*j == -1 {i}]\n" +
		"accounts: acme: devices: d1: call_recording: any: any: enabled: len(_x) == 0\n"
)

// TestReloadOverBudget: a policy over its compile budget fails the reload
// with the bound it crossed, the live table stays, and the next valid
// change goes live.
func TestReloadOverBudget(t *testing.T) {
	for _, tc := range []struct {
		name, src, reason string
		budget            isolate.Budget
	}{
		{"memory", policyMemoryBomb, "memory", isolate.Budget{Time: time.Minute, Memory: 300 << 20}},
		{"time", policyCPUBomb, "after 1s", isolate.Budget{Time: time.Second, Memory: 4 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "acme.cue")
			writeRename(t, file, policyV1)
			m := NewMetrics()
			p, err := LoadPolicy(dir, PolicyOptions{Compiler: compiler.Options{CacheDir: t.TempDir()}, Budget: &tc.budget}, quietLogger(), m)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			writeRename(t, file, tc.src)
			err = p.Reload()
			if !errors.Is(err, isolate.ErrOverBudget) {
				t.Fatalf("reload: %v, want over budget", err)
			}
			reason, _, failed := p.LastReloadFailure()
			if !failed || !strings.Contains(reason, tc.reason) {
				t.Errorf("last failure %q, want one naming %q", reason, tc.reason)
			}
			if got := testutil.ToFloat64(m.Reloads.WithLabelValues("over_budget")); got != 1 {
				t.Errorf("over_budget reloads = %v, want 1", got)
			}
			if v := p.Table().Version; v != versionOf(t, policyV1) {
				t.Errorf("live version %s, want v1's", v)
			}
			writeRename(t, file, policyV2)
			if err := p.Reload(); err != nil {
				t.Fatalf("the valid change after: %v", err)
			}
			if v := p.Table().Version; v != versionOf(t, policyV2) {
				t.Errorf("live version %s, want v2's", v)
			}
		})
	}
}

// TestReloadNotBlocked: a valid change made while a CPU-heavy policy
// compiles is not blocked by it: the compile in progress is stopped (once it has run supersedeAfter) and
// the valid policy goes live long before the budget runs out.
func TestReloadNotBlocked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "acme.cue")
	writeRename(t, file, policyV1)
	m := NewMetrics()
	p, err := LoadPolicy(dir, PolicyOptions{Compiler: compiler.Options{CacheDir: t.TempDir()},
		Budget: &isolate.Budget{Time: 10 * time.Minute, Memory: 4 << 30}}, quietLogger(), m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.supersedeAfter = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Watch(ctx, 20*time.Millisecond, nil) }()
	waitFor(t, "the watch's first reload", func() bool {
		return testutil.ToFloat64(m.Reloads.WithLabelValues("unchanged")) == 1
	})
	// The child reads the directory a moment after the compile starts: a
	// change written in that moment is compiled instead of the heavy
	// policy. A round where that happened proves nothing and is played
	// again.
	v1, v2 := versionOf(t, policyV1), versionOf(t, policyV2)
	for round := 1; testutil.ToFloat64(m.Reloads.WithLabelValues("superseded")) == 0; round++ {
		if round > 5 {
			t.Fatal("no heavy compile was superseded in 5 rounds")
		}
		writeRename(t, file, policyCPUBomb)
		waitFor(t, "the heavy compile to start", func() bool { return testutil.ToFloat64(m.ReloadInProgress) == 1 })
		start := time.Now()
		writeRename(t, file, policyV2)
		waitVersion(t, p, "v2", func(v string) bool { return v == v2 })
		if took := time.Since(start); took > 5*time.Minute {
			t.Errorf("v2 went live after %s", took)
		}
		writeRename(t, file, policyV1)
		waitVersion(t, p, "v1", func(v string) bool { return v == v1 })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestStartOnLastGood: a runtime starting on a policy that does not
// compile starts on the last table that did, and reports the failure.
func TestStartOnLastGood(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	file := filepath.Join(dir, "acme.cue")
	writeRename(t, file, policyV1)
	o := PolicyOptions{Compiler: compiler.Options{CacheDir: cache}, Budget: &isolate.Budget{Time: time.Minute, Memory: 300 << 20}}
	p, err := LoadPolicy(dir, o, quietLogger(), NewMetrics())
	if err != nil {
		t.Fatal(err)
	}
	// The last good table is the last one that went live, not the first.
	writeRename(t, file, policyV2)
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	for _, bad := range []string{policyMemoryBomb, policyBad} {
		writeRename(t, file, bad)
		m := NewMetrics()
		p, err := LoadPolicy(dir, o, quietLogger(), m)
		if err != nil {
			t.Fatalf("start on a bad policy with a last good table: %v", err)
		}
		p.Close()
		if v := p.Table().Version; v != versionOf(t, policyV2) {
			t.Errorf("started on %s, want the last good v2", v)
		}
		if _, _, failed := p.LastReloadFailure(); !failed || testutil.ToFloat64(m.LastReloadOK) != 0 {
			t.Errorf("the failure is not reported")
		}
	}
	// With no last good table, the start fails.
	if _, err := LoadPolicy(dir, PolicyOptions{Compiler: compiler.Options{CacheDir: t.TempDir()}, Budget: o.Budget}, quietLogger(), NewMetrics()); err == nil {
		t.Error("a bad policy with an empty cache started")
	}
}

// TestWatchTellsChangedFiles: a reload the watcher's events started is
// told the files they name; the first one, and one after a trigger, look
// at every file (nil).
func TestWatchTellsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "acme.cue")
	writeRename(t, file, policyV1)
	writeRename(t, filepath.Join(dir, "other.cue"), "package recpol\naccounts: other: devices: d1: call_recording: any: any: enabled: true\n")
	m := NewMetrics()
	p, err := LoadPolicy(dir, PolicyOptions{Compiler: compiler.Options{CacheDir: t.TempDir()}}, quietLogger(), m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var mu sync.Mutex
	var calls [][]string
	compile := p.compile
	p.compile = func(ctx context.Context, dir string, changed []string) (*compiler.Result, error) {
		mu.Lock()
		calls = append(calls, changed)
		mu.Unlock()
		return compile(ctx, dir, changed)
	}
	reloads := func() float64 {
		var n float64
		for _, o := range []string{"ok", "unchanged", "failed"} {
			n += testutil.ToFloat64(m.Reloads.WithLabelValues(o))
		}
		return n
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- p.Watch(ctx, 20*time.Millisecond, trigger) }()
	// LoadPolicy's compile, then the watch's first reload.
	waitFor(t, "the watch's first reload", func() bool { return reloads() == 2 })

	before := p.Table().Version
	writeRename(t, file, policyV2)
	waitVersion(t, p, "the change", func(v string) bool { return v != before })
	n := reloads()
	trigger <- struct{}{}
	waitFor(t, "the triggered reload", func() bool { return reloads() > n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 3 {
		t.Fatalf("%d compiles, want at least 3: %q", len(calls), calls)
	}
	if calls[0] != nil {
		t.Errorf("the first reload was told %q, want every file (nil)", calls[0])
	}
	if last := calls[len(calls)-1]; last != nil {
		t.Errorf("the triggered reload was told %q, want every file (nil)", last)
	}
	named := map[string]bool{}
	for _, c := range calls[1 : len(calls)-1] {
		if c == nil {
			t.Errorf("a reload the events started looked at every file: %q", calls)
		}
		for _, n := range c {
			named[n] = true
		}
	}
	if !named["acme.cue"] || named["other.cue"] {
		t.Errorf("the events' reloads were told %q, want acme.cue and not other.cue", calls[1:len(calls)-1])
	}
}
