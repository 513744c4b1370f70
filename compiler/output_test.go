package compiler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOutputHolds: a recorded output holds its table until anything
// replaces, edits or removes it, and only for the version recorded.
func TestOutputHolds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, out string)
		version string
		want    bool
	}{
		{"untouched", func(*testing.T, string) {}, "v1", true},
		{"another version", func(*testing.T, string) {}, "v2", false},
		{"edited", func(t *testing.T, out string) {
			must(t, os.WriteFile(out, []byte("edited by hand\n"), 0o644))
		}, "v1", false},
		{"replaced", func(t *testing.T, out string) {
			other := out + ".new"
			must(t, os.WriteFile(other, []byte(`{"version":"v1"}`), 0o644))
			must(t, os.Rename(other, out))
		}, "v1", false},
		{"removed", func(t *testing.T, out string) { must(t, os.Remove(out)) }, "v1", false},
		{"stamp damaged", func(t *testing.T, out string) {
			p := stampPath(filepath.Join(filepath.Dir(out), "cache"), out)
			must(t, os.WriteFile(p, []byte("{"), 0o600))
		}, "v1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cache, out := filepath.Join(dir, "cache"), filepath.Join(dir, "table.json")
			must(t, os.WriteFile(out, []byte(`{"version":"v1"}`), 0o644))
			RecordOutput(cache, out, "v1")
			tc.change(t, out)
			if got := OutputHolds(cache, out, tc.version); got != tc.want {
				t.Errorf("OutputHolds = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestOutputHoldsNot: without a cache, for stdout and for what is not a
// regular file, an output never holds a table.
func TestOutputHoldsNot(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	for _, tc := range []struct {
		name, cache, out string
	}{
		{"no cache", "", filepath.Join(dir, "t.json")},
		{"stdout", cache, "-"},
		{"no output", cache, ""},
		{"a directory", cache, dir},
		{"a device", cache, os.DevNull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.out != "" && tc.out != "-" && tc.out != dir && tc.out != os.DevNull {
				must(t, os.WriteFile(tc.out, []byte("{}"), 0o644))
			}
			RecordOutput(tc.cache, tc.out, "v1")
			if OutputHolds(tc.cache, tc.out, "v1") {
				t.Error("OutputHolds = true")
			}
		})
	}
}

// TestOutputCurrent: a warm compile to a file is current only when both
// the policy (the manifest) and the output (its stamp) are.
func TestOutputCurrent(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	policy := filepath.Join(dir, "policy")
	must(t, os.Mkdir(policy, 0o755))
	p := filepath.Join(policy, "p.cue")
	must(t, os.WriteFile(p, []byte("package recpol\ndefaults: enabled: true\naccounts: a: users: u: {}\n"), 0o644))
	out := filepath.Join(dir, "table.json")
	type got struct {
		Diags string
		OK    bool
	}
	check := func() got {
		ds, ok := OutputCurrent(cache, policy, out)
		return got{ds.Error(), ok}
	}
	if g := check(); g.OK {
		t.Fatalf("before any compile: %+v", g)
	}
	res, err := Options{CacheDir: cache}.Compile(policy)
	if err != nil || res.Table == nil || len(res.Diagnostics) == 0 {
		t.Fatalf("compile: %v %v (the test wants a valid policy with a warning)", err, res.Diagnostics)
	}
	if g := check(); g.OK {
		t.Errorf("before the output was written: %+v", g)
	}
	must(t, os.WriteFile(out, []byte("the table"), 0o644))
	RecordOutput(cache, out, res.Table.Version)
	if diff := cmp.Diff(got{res.Diagnostics.Error(), true}, check()); diff != "" {
		t.Errorf("after the output was recorded (-want +got):\n%s", diff)
	}
	must(t, os.WriteFile(p, []byte("package recpol\naccounts: a: users: u: {}\n"), 0o644))
	if g := check(); g.OK {
		t.Errorf("after the policy changed: %+v", g)
	}
}
