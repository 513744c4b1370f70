package compiler

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/gen"
)

// compileBoth compiles files with and without the plain-data path.
func compileBoth(files []File) (plain, cue *Result) {
	plain = CompileFiles(files)
	plainDataPath = false
	defer func() { plainDataPath = true }()
	return plain, CompileFiles(files)
}

// sameResults reports how two results differ: their tables' canonical
// JSON (and so their versions) and their diagnostics, positions included.
func sameResults(t *testing.T, plain, cue *Result) {
	t.Helper()
	if diff := cmp.Diff(cue.Diagnostics, plain.Diagnostics); diff != "" {
		t.Fatalf("diagnostics differ (-cue +plain):\n%s", diff)
	}
	if (plain.Table == nil) != (cue.Table == nil) {
		t.Fatalf("table: plain %v, cue %v", plain.Table != nil, cue.Table != nil)
	}
	if plain.Table == nil {
		return
	}
	a, _ := plain.Table.MarshalJSON()
	b, _ := cue.Table.MarshalJSON()
	if !bytes.Equal(a, b) {
		t.Fatalf("tables differ:\nplain %s\ncue   %s", a, b)
	}
}

// plainSeeds are the seed inputs of FuzzPlainDataPath: the first two files
// of every policy of testdata/policies and testdata/bad, and a generated
// tree's files with and without its template.
func plainSeeds(t testing.TB) [][2][]byte {
	var seeds [][2][]byte
	for _, root := range []string{"../testdata/policies", "../testdata/bad"} {
		dirs, _ := filepath.Glob(filepath.Join(root, "*"))
		sort.Strings(dirs)
		for _, d := range dirs {
			files, _ := filepath.Glob(filepath.Join(d, "*.cue"))
			var s [2][]byte
			for i := 0; i < len(files) && i < 2; i++ {
				s[i], _ = os.ReadFile(files[i])
			}
			if s[0] != nil {
				seeds = append(seeds, s)
			}
		}
	}
	dir := t.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 2, Users: 2, Devices: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	files, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, [2][]byte{files[0].Data, files[1].Data}, [2][]byte{files[0].Data, files[2].Data},
		[2][]byte{files[0].Data, []byte("package recpol\ndefaults: {format: \"wav\"}\n")})
	return seeds
}

// FuzzPlainDataPath holds the plain-data path to CUE's: one or two policy
// files compile to the same table bytes and the same diagnostics, with the
// same positions, whether plain data is decoded from its syntax or
// evaluated by CUE.
func FuzzPlainDataPath(f *testing.F) {
	for _, s := range plainSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		files := []File{{Name: "a.cue", Data: a}}
		if len(b) > 0 {
			files = append(files, File{Name: "b.cue", Data: b})
		}
		plain, cue := compileBoth(files)
		sameResults(t, plain, cue)
	})
}
