package isolate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/recpol/recpol/compiler"
)

// FuzzCompile compiles any bytes as a policy file in the child, within a
// small budget: the answer is a result (a table, or diagnostics that say
// why not) or a compile over budget. A crash of the child (a panic of the
// compiler or of CUE on some input) is a finding, and the parent survives
// it to report it.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{valid, invalid, memoryBomb, cpuBomb,
		"package recpol\n_x: {a: _x}\n",
		"package recpol\naccounts: [string]: {}\naccounts: a: users: [for i in [1, 2] {\"\\(i)\"}]\n",
		"package recpol\n#D: {a: int | *3}\ndefaults: #D\n",
	} {
		f.Add([]byte(s))
	}
	c := New(compiler.Options{}, Budget{Time: 2 * time.Second, Memory: 512 << 20})
	f.Cleanup(func() { c.Close() })
	dir := f.TempDir()
	p := filepath.Join(dir, "p.cue")
	f.Fuzz(func(t *testing.T, src []byte) {
		if err := os.WriteFile(p, src, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := c.Compile(context.Background(), dir)
		switch {
		case errors.Is(err, ErrOverBudget):
		case err != nil:
			t.Fatalf("compile: %v", err)
		case res.Table == nil && !res.Diagnostics.HasErrors():
			t.Fatal("no table and no error says why")
		case res.Table != nil && res.Diagnostics.HasErrors():
			t.Fatalf("a table from a policy with errors: %v", res.Diagnostics.Errors())
		}
	})
}
