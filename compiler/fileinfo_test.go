package compiler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInspectionCachedWhereUseful compiles with a new cache and checks
// which files' inspections it cached: not those of plain account files
// whose groups the plain-data path compiled (a later process parses them
// again anyway), every other file's that parsed.
func TestInspectionCachedWhereUseful(t *testing.T) {
	plainShared := File{Name: "shared.cue", Data: []byte("package recpol\ndefaults: format: \"mp3\"\n")}
	cueShared := File{Name: "shared.cue", Data: []byte("package recpol\nlet m = 1\naccounts: [_]: call_recording: endpoint: any: any: record_min_sec: m\n")}
	a2 := File{Name: "a2.cue", Data: []byte("package recpol\naccounts: a: call_recording: account: any: any: format: \"w\" + \"av\"\n")}
	a := File{Name: "a.cue", Data: []byte("package recpol\naccounts: a: users: u1: {}\n")}
	b := File{Name: "b.cue", Data: []byte("package recpol\naccounts: b: users: u1: {}\n")}
	broken := File{Name: "d.cue", Data: []byte("package recpol\naccounts: d: {\n")}
	for _, tc := range []struct {
		name  string
		files []File
		want  map[string]bool // file name: inspection cached
	}{
		{"plain groups", []File{plainShared, a, b}, map[string]bool{"shared.cue": true, "a.cue": false, "b.cue": false}},
		{"one plain group", []File{plainShared, a}, map[string]bool{"shared.cue": true, "a.cue": false}},
		{"shared part not plain data", []File{cueShared, a, b}, map[string]bool{"shared.cue": true, "a.cue": true, "b.cue": true}},
		{"a group not plain data", []File{plainShared, a, a2, b}, map[string]bool{"shared.cue": true, "a.cue": true, "a2.cue": true, "b.cue": false}},
		{"a file that does not parse", []File{plainShared, a, b, broken}, map[string]bool{"shared.cue": true, "a.cue": true, "b.cue": true, "d.cue": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			NewCompiler(Options{CacheDir: dir}).CompileFiles(tc.files)
			got := map[string]bool{}
			for _, f := range tc.files {
				_, got[f.Name] = readFileInfo(dir, fileSum(f))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("inspections cached (-want +got):\n%s", diff)
			}
			// A second process with that cache compiles the same.
			first := NewCompiler(Options{}).CompileFiles(tc.files)
			second := NewCompiler(Options{CacheDir: dir}).CompileFiles(tc.files)
			if diff := cmp.Diff(first.Diagnostics, second.Diagnostics); diff != "" {
				t.Errorf("diagnostics with the cache differ (-without +with):\n%s", diff)
			}
			if (first.Table == nil) != (second.Table == nil) {
				t.Errorf("table with the cache: %v, without: %v", second.Table != nil, first.Table != nil)
			}
		})
	}
}
