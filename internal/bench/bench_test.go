package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuick runs the whole harness on small trees so that it cannot rot:
// every figure must be measured and the report must mark each one.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds recpol and runs every figure")
	}
	dir := t.TempDir()
	recpol := filepath.Join(dir, "recpol")
	if out, err := exec.Command("go", "build", "-o", recpol, "../../cmd/recpol").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cue, _ := filepath.Abs("../../bin/cue") // installed by make bench; without it the peer is reported missing
	_, cueErr := os.Stat(cue)
	haveCue := cueErr == nil
	var log bytes.Buffer
	rep, err := Run(context.Background(), Config{Root: "../..", Work: filepath.Join(dir, "work"), Recpol: recpol, Cue: cue, Quick: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md, "go test"); err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Figures {
		if f.Met == nil && (haveCue || !strings.HasPrefix(f.Name, "cold compile")) {
			t.Errorf("%s: not measured: %v", f.Name, f.Notes)
		}
		if !strings.Contains(md.String(), "## "+f.Name+": ") {
			t.Errorf("the report has no section for %s", f.Name)
		}
		if f.Met != nil && f.CPU == "" {
			t.Errorf("%s: no CPU time", f.Name)
		}
		if f.LoadStart == "" || f.LoadEnd == "" {
			t.Errorf("%s: no load average at its start and end (%q, %q)", f.Name, f.LoadStart, f.LoadEnd)
		}
	}
	want := []string{"cold compile, 20 accounts", "cold compile, 40 accounts", "warm compile", "hot reload", "decision lookup", "simulate every call",
		"runtime: call setups per second", "runtime CPU per call setup, 50 calls of two 3 s recordings each", "runtime: event in -> recording command out, at 1,000 setups/s",
		"runtime: event in -> recording command out, at 50% of the setups/s the runtime sustained", "runtime memory"}
	for _, w := range want {
		if !strings.Contains(md.String(), "| "+w) {
			t.Errorf("the summary has no row %q", w)
		}
	}
	if !strings.Contains(md.String(), "| figure | median | CPU | peer | ratio | goal | load (1 min) start -> end | |") {
		t.Errorf("the summary has no CPU and load columns")
	}
	if t.Failed() {
		t.Logf("log:\n%s\nreport:\n%s", log.String(), md.String())
	}
	if haveCue && !strings.Contains(md.String(), "cue vet: ") {
		t.Errorf("cue is installed but the cold compile has no cue vet peer")
	}
}
