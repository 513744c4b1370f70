package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeBuildNamesCommit builds recpol with the Makefile, the Go
// toolchain's own VCS stamp turned off (-buildvcs=false, as in a build
// from a copy of the tree), and checks that `recpol version` still names
// the commit: the Makefile passes it with -ldflags.
func TestMakeBuildNamesCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds recpol with make: not in -short")
	}
	for _, tool := range []string{"make", "git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "recpol")
	build := exec.Command("make", "-s", "-C", root, "build", "BIN="+bin)
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("recpol version: %v\n%s", err, out)
	}
	want := "commit " + strings.TrimSpace(string(head))
	if !strings.Contains(string(out), want) {
		t.Errorf("recpol version from make build says\n%s\nwant a line with %q", out, want)
	}
}
