package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompileSkipsCurrentOutput: with a cache, compile -o does not
// rewrite a file that holds the table already (and, finding it current
// without decoding the table, prints the policy's warnings as a full
// compile does), and rewrites one touched since, or when the table
// changed.
func TestCompileSkipsCurrentOutput(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	policy := filepath.Join(dir, "policy")
	if err := os.Mkdir(policy, 0o755); err != nil {
		t.Fatal(err)
	}
	src := func(enabled string) {
		data := "package recpol\ndefaults: enabled: true\naccounts: acme: call_recording: account: any: any: enabled: " + enabled + "\n"
		if err := os.WriteFile(filepath.Join(policy, "p.cue"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "table.json")
	var stderr string
	compile := func() os.FileInfo {
		t.Helper()
		var e bytes.Buffer
		if code := Run([]string{"compile", policy, "-o", out, "--cache", cache}, nil, &bytes.Buffer{}, &e); code != 0 {
			t.Fatalf("compile: exit %d: %s", code, e.String())
		}
		stderr = e.String()
		info, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	src("true")
	first := compile()
	full := stderr
	if !strings.Contains(full, "warning: defaults.enabled") {
		t.Fatalf("the full compile printed no warning: %q", full)
	}
	if again := compile(); !os.SameFile(first, again) || !again.ModTime().Equal(first.ModTime()) {
		t.Errorf("an unchanged table was written again")
	}
	if stderr != full {
		t.Errorf("the compile of a current output printed\n%s\nthe full compile\n%s", stderr, full)
	}
	if err := os.WriteFile(out, []byte("edited by hand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compile()
	want, err := os.ReadFile(out)
	if err != nil || bytes.HasPrefix(want, []byte("edited")) {
		t.Fatalf("a file edited since was not rewritten: %q %v", want[:min(len(want), 20)], err)
	}
	src("false")
	compile()
	got, err := os.ReadFile(out)
	if err != nil || bytes.Equal(got, want) {
		t.Errorf("a changed table was not written")
	}
}
