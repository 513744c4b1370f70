package simulate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// compile compiles a policy given as CUE source through the real compiler.
func compile(t testing.TB, src string) *table.Table {
	t.Helper()
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "policy.cue", Data: []byte(src)}})
	if res.Table == nil {
		t.Fatalf("policy does not compile:\n%s\n%s", res.Diagnostics, src)
	}
	return res.Table
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./simulate -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }
