package compiler

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCompileChanged: a compile told which files changed looks again at
// those, at names it has not seen, at symbolic links and at removed files,
// and takes every other file as the last compile saw it; after a compile
// of another directory, or a failed one, it looks at everything.
func TestCompileChanged(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	write := func(p, acct, enabled string) {
		t.Helper()
		src := "package recpol\naccounts: " + acct + ": {call_recording: account: any: any: enabled: " + enabled + "}\n"
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"alpha", "bravo"} {
		write(path(a+".cue"), a, "true ")
	}
	write(filepath.Join(other, "p.cue"), "zulu", "true")
	// charlie.cue is a link to a file outside dir.
	target := filepath.Join(t.TempDir(), "charlie")
	write(target, "charlie", "true ")
	if err := os.Symlink(target, path("charlie.cue")); err != nil {
		t.Fatal(err)
	}
	cm := NewCompiler(Options{CacheDir: t.TempDir()})
	// The files' times are an hour old to the compiler: not in doubt.
	cm.now = func() time.Time { return time.Now().Add(time.Hour) }
	fresh := func() string {
		t.Helper()
		res, err := Options{}.Compile(dir)
		if err != nil || res.Table == nil {
			t.Fatalf("fresh compile: %v", err)
		}
		return res.Table.Version
	}
	res, err := cm.Compile(dir)
	if err != nil || res.Table == nil {
		t.Fatalf("compile: %v", err)
	}
	live := res.Table.Version
	for _, c := range []struct {
		name    string
		change  func()
		compile func() (*Result, error)
		// seen: the compile sees the change (its table is a fresh
		// compile's); false: it keeps the last table.
		seen bool
	}{
		{"a named file", func() { write(path("bravo.cue"), "bravo", "false") },
			func() (*Result, error) { return cm.CompileChanged(dir, []string{"bravo.cue"}) }, true},
		{"a file not named is not looked at", func() { write(path("alpha.cue"), "alpha", "false") },
			func() (*Result, error) { return cm.CompileChanged(dir, nil) }, false},
		{"Compile looks at everything", func() {},
			func() (*Result, error) { return cm.Compile(dir) }, true},
		{"a new file", func() { write(path("delta.cue"), "delta", "true") },
			func() (*Result, error) { return cm.CompileChanged(dir, []string{}) }, true},
		{"a link's target", func() { write(target, "charlie", "false") },
			func() (*Result, error) { return cm.CompileChanged(dir, nil) }, true},
		{"a removed file", func() {
			if err := os.Remove(path("delta.cue")); err != nil {
				t.Fatal(err)
			}
		}, func() (*Result, error) { return cm.CompileChanged(dir, nil) }, true},
		{"after a compile of another directory", func() {
			if _, err := cm.Compile(other); err != nil {
				t.Fatal(err)
			}
			write(path("alpha.cue"), "alpha", "true ")
		}, func() (*Result, error) { return cm.CompileChanged(dir, nil) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.change()
			want := fresh()
			if !c.seen {
				want = live
			}
			res, err := c.compile()
			if err != nil || res.Table == nil {
				t.Fatalf("compile: %v", err)
			}
			if res.Table.Version != want {
				t.Errorf("table %s, want %s (seen: %v)", res.Table.Version, want, c.seen)
			}
			live = res.Table.Version
		})
	}
}
