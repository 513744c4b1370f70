package recpol

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// layers is the one-way order of the product's packages (ARCHITECTURE.md):
// each imports only packages before it. Data flows from the schema through
// the compiler into the table, and from the table into the state machine,
// the review tools and the runtime; the stand-in for FreeSWITCH comes after
// the runtime, which never imports it.
var layers = []string{
	"internal/ordered", "internal/readlimit", "internal/shrink", "internal/suggest", "internal/version",
	"cue", "cue/input",
	"table",
	"compiler", "compiler/isolate",
	"callstate/classify", "callstate",
	"scenario", "simulate",
	"runtime/eslwire", "runtime/eslcmd", "runtime/esl", "runtime/intentlog",
	"runtime/catalog", "runtime/store", "runtime",
	"fakeswitch", "gen",
}

// outside are the commands, harnesses and test helpers: they may import
// any product package, and no product package imports them.
var outside = []string{
	"", "cmd/recpol", "cmd/recpol/internal/cli",
	"internal/bench", "internal/bench/cmd/benchall", "internal/bench/procstat", "internal/bench/procstat/launch",
	"internal/soak", "internal/hostile", "internal/catalogtest", "internal/tabletest",
}

const module = "github.com/recpol/recpol"

// TestLayering holds every package of the module to the order of layers:
// a package that imports one after it, or a new package placed nowhere,
// fails.
func TestLayering(t *testing.T) {
	rank := map[string]int{}
	for i, p := range layers {
		rank[p] = i
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "bin") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel := filepath.ToSlash(path)
		if rel == "." {
			rel = ""
		}
		seen[rel] = true
		r, inLayers := rank[rel]
		if !inLayers && !slices.Contains(outside, rel) {
			t.Errorf("package %q is in no layer: place it in layers or outside", rel)
			return nil
		}
		for _, imp := range pkg.Imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				if rel == "table" && strings.HasPrefix(imp, "cuelang.org/") {
					t.Errorf("table imports %s: the table never needs the CUE evaluator", imp)
				}
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			if !inLayers {
				continue
			}
			if dr, ok := rank[dep]; !ok || dr >= r {
				t.Errorf("%s imports %s, which comes after it (or is a harness)", rel, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range layers {
		if !seen[p] {
			t.Errorf("layers names %q, which is not a package", p)
		}
	}
}
