package compiler_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*/want.txt from the current diagnostics")

// badDir is the corpus of invalid policies, relative to this package.
const badDir = "../testdata/bad"

// TestBadPolicies compiles every policy of testdata/bad and compares the
// diagnostics, as `recpol vet` prints them from the repository root, with the
// case's want.txt.
func TestBadPolicies(t *testing.T) {
	entries, err := os.ReadDir(badDir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(badDir, name)
			res, err := compiler.Options{}.Compile(dir)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if !res.Diagnostics.HasErrors() {
				t.Fatalf("no error reported; diagnostics:\n%s", res.Diagnostics.Error())
			}
			if res.Table != nil {
				t.Error("a table was built for an invalid policy")
			}
			for _, d := range res.Diagnostics.Errors() {
				if d.File == "" || d.Line <= 0 || d.Column <= 0 {
					t.Errorf("error without a position: %s", d)
				}
			}
			got := render(res.Diagnostics)
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test ./compiler -run TestBadPolicies -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("diagnostics differ from %s (-want +got):\n%s", wantFile, diff)
			}
		})
	}
	if n < 30 {
		t.Errorf("testdata/bad holds %d cases, want at least 30", n)
	}
}

// render formats diagnostics one per line, with file names relative to the
// repository root rather than to this package.
func render(ds compiler.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		d.File = rootRelative(d.File)
		related := make([]compiler.Position, len(d.Related))
		for i, r := range d.Related {
			r.File = rootRelative(r.File)
			related[i] = r
		}
		d.Related = related
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func rootRelative(name string) string {
	return strings.TrimPrefix(filepath.ToSlash(name), "../")
}
