package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompileSkipsCurrentOutput: with a cache, compile -o does not
// rewrite a file that holds the table already, and rewrites one touched
// since, or when the table changed.
func TestCompileSkipsCurrentOutput(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	policy := filepath.Join(dir, "policy")
	if err := os.Mkdir(policy, 0o755); err != nil {
		t.Fatal(err)
	}
	src := func(enabled string) {
		data := "package recpol\naccounts: acme: call_recording: account: any: any: enabled: " + enabled + "\n"
		if err := os.WriteFile(filepath.Join(policy, "p.cue"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "table.json")
	compile := func() os.FileInfo {
		t.Helper()
		var stderr bytes.Buffer
		if code := Run([]string{"compile", policy, "-o", out, "--cache", cache}, nil, &bytes.Buffer{}, &stderr); code != 0 {
			t.Fatalf("compile: exit %d: %s", code, stderr.String())
		}
		info, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	src("true")
	first := compile()
	if again := compile(); !os.SameFile(first, again) || !again.ModTime().Equal(first.ModTime()) {
		t.Errorf("an unchanged table was written again")
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

// TestCompileCurrentOutputWarns: a compile that finds its output current
// without decoding the table prints the policy's warnings as a full
// compile does.
func TestCompileCurrentOutputWarns(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	policy := filepath.Join(dir, "policy")
	if err := os.Mkdir(policy, 0o755); err != nil {
		t.Fatal(err)
	}
	data := "package recpol\ndefaults: enabled: true\naccounts: acme: call_recording: account: any: any: enabled: true\n"
	if err := os.WriteFile(filepath.Join(policy, "p.cue"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "table.json")
	compile := func() (string, os.FileInfo) {
		t.Helper()
		var stderr bytes.Buffer
		if code := Run([]string{"compile", policy, "-o", out, "--cache", cache}, nil, &bytes.Buffer{}, &stderr); code != 0 {
			t.Fatalf("compile: exit %d: %s", code, stderr.String())
		}
		info, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		return stderr.String(), info
	}
	full, first := compile()
	if !strings.Contains(full, "warning: defaults.enabled") {
		t.Fatalf("the full compile printed no warning: %q", full)
	}
	again, info := compile()
	if again != full {
		t.Errorf("the compile of a current output printed\n%s\nthe full compile\n%s", again, full)
	}
	if !os.SameFile(first, info) || !info.ModTime().Equal(first.ModTime()) {
		t.Error("the current output was written again")
	}
}
