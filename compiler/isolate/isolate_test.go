package isolate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

const (
	valid   = "package recpol\naccounts: acme: call_recording: account: any: any: enabled: true\n"
	invalid = "package recpol\naccounts: acme: call_recording: account: any: any: enabled: 3\n"
	// memoryBomb builds a list of fifty million elements.
	memoryBomb = "package recpol\nimport \"list\"\n_bomb: list.Range(0, 50000000, 1)\n" +
		"accounts: acme: call_recording: account: any: any: enabled: len(_bomb) > 0\n"
	// cpuBomb evaluates a comprehension of a comprehension.
	cpuBomb = "package recpol\nimport \"list\"\n_n: list.Range(0, 20000, 1)\n" +
		"_x: [for i in _n for j in _n if i*j == -1 {i}]\n" +
		"accounts: acme: call_recording: account: any: any: enabled: len(_x) == 0\n"
)

func policyDir(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSameAsInProcess: what the child compiles is what the compiler
// compiles in process, diagnostics and table version alike.
func TestSameAsInProcess(t *testing.T) {
	c := New(compiler.Options{}, Budget{Time: time.Minute, Memory: 1 << 30})
	defer c.Close()
	for _, src := range []string{valid, invalid} {
		dir := policyDir(t, src)
		want, err := compiler.Options{}.Compile(dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Compile(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.Diagnostics, got.Diagnostics); diff != "" {
			t.Errorf("diagnostics (-in process +isolated):\n%s", diff)
		}
		if (want.Table == nil) != (got.Table == nil) || (want.Table != nil && want.Table.Version != got.Table.Version) {
			t.Errorf("table: in process %v, isolated %v", want.Table, got.Table)
		}
	}
	if _, err := c.Compile(context.Background(), filepath.Join(t.TempDir(), "missing")); err == nil ||
		errors.Is(err, ErrWorker) || errors.Is(err, ErrOverBudget) {
		t.Errorf("a missing directory: %v, want the compiler's I/O error", err)
	}
}

// TestOverBudget: a policy over either bound is stopped with the bound it
// crossed, and the next compile (in a new child) works.
func TestOverBudget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    string
		budget Budget
		want   string
	}{
		{"memory", memoryBomb, Budget{Time: time.Minute, Memory: 300 << 20}, "memory"},
		{"time", cpuBomb, Budget{Time: time.Second, Memory: 4 << 30}, "after 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(compiler.Options{}, tc.budget)
			defer c.Close()
			_, err := c.Compile(context.Background(), policyDir(t, tc.src))
			if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrOverBudget naming %q", err, tc.want)
			}
			res, err := c.Compile(context.Background(), policyDir(t, valid))
			if err != nil || res.Table == nil {
				t.Fatalf("the compile after: %v", err)
			}
		})
	}
}

// TestCancel: a cancelled compile stops at once with the context's error.
func TestCancel(t *testing.T) {
	c := New(compiler.Options{}, Budget{Time: time.Minute, Memory: 4 << 30})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Compile(ctx, policyDir(t, cpuBomb))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestWorkerDiedBetweenCompiles: a warm child killed while idle (the OOM
// killer, an operator) is replaced by the next compile, not reported as a
// failed compile.
func TestWorkerDiedBetweenCompiles(t *testing.T) {
	c := New(compiler.Options{}, Budget{Time: time.Minute, Memory: 1 << 30})
	defer c.Close()
	dir := policyDir(t, valid)
	if _, err := c.Compile(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	w := c.w
	c.mu.Unlock()
	if w == nil {
		t.Fatal("no warm child after a compile")
	}
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-w.exited
	res, err := c.Compile(context.Background(), dir)
	if err != nil || res.Table == nil {
		t.Fatalf("the compile after the child died: %v", err)
	}
}

// TestCloseKeepsManifest: the child writes the manifest after answering;
// Close lets it, so the last table compiled is the last good one.
func TestCloseKeepsManifest(t *testing.T) {
	cache := t.TempDir()
	for i := range 5 {
		dir := policyDir(t, valid)
		c := New(compiler.Options{CacheDir: cache}, Budget{Time: time.Minute, Memory: 1 << 30})
		res, err := c.Compile(context.Background(), dir)
		if err != nil || res.Table == nil {
			t.Fatalf("compile: %v", err)
		}
		c.Close()
		last, _, err := compiler.LastGood(cache, dir)
		if err != nil || last.Table.Version != res.Table.Version {
			t.Fatalf("run %d: LastGood after Close: %v", i, err)
		}
	}
}

// TestCompileChanged: a child told which files changed compiles what the
// directory holds. (That the files not named are not looked at is
// compiler's TestCompileChanged: a child cannot be given a clock, and a
// file written by a test is in doubt, read again, for two seconds.)
func TestCompileChanged(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.cue")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version := func(src string) string {
		t.Helper()
		res := compiler.Options{}.CompileFiles([]compiler.File{{Name: p, Data: []byte(src)}})
		if res.Table == nil {
			t.Fatalf("compile: %v", res.Diagnostics)
		}
		return res.Table.Version
	}
	disabled := strings.Replace(valid, "enabled: true", "enabled: false", 1)
	c := New(compiler.Options{CacheDir: t.TempDir()}, Budget{Time: time.Minute, Memory: 1 << 30})
	defer c.Close()
	for _, step := range []struct {
		name    string
		src     string
		changed []string
	}{
		{"first", valid, nil},
		{"named", disabled, []string{"p.cue"}},
		{"created", valid, []string{"p.cue", "gone.cue"}},
	} {
		write(step.src)
		res, err := c.CompileChanged(context.Background(), dir, step.changed)
		if err != nil || res.Table == nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if want := version(step.src); res.Table.Version != want {
			t.Errorf("%s: table %s, want %s", step.name, res.Table.Version, want)
		}
	}
}
