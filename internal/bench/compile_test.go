package bench

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recpol/recpol/gen"
)

// TestWarmProfile: the warm compile's profile runs the path a warm
// `recpol compile -o` takes (compiler.OutputCurrent), and that path is
// the warm one: it never misses and never compiles.
func TestWarmProfile(t *testing.T) {
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	if err := gen.Write(tree, gen.Options{Accounts: 3, Users: 2, Devices: 2, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: Config{Work: work}, sz: sizes{profileFor: 50 * time.Millisecond}, tree: tree}
	got := r.warmProfile("warm compile")
	if strings.HasPrefix(got, "profile: ") {
		t.Fatalf("the profile failed: %s", got)
	}
	t.Log(got)
	if !strings.Contains(got, "compiler.OutputCurrent in-process") {
		t.Errorf("the profile does not say what it profiled: %s", got)
	}
}
