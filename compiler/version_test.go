package compiler_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"

	"github.com/recpol/recpol/compiler"
)

const exampleDir = "../testdata/policies/example"

func exampleFiles(t *testing.T) []compiler.File {
	t.Helper()
	files, err := compiler.ReadDir(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// body returns a file's source without its package clause.
func body(t *testing.T, f compiler.File) string {
	t.Helper()
	src := string(f.Data)
	i := strings.Index(src, "package recpol")
	if i < 0 {
		t.Fatalf("%s has no package clause", f.Name)
	}
	return src[:i] + src[i+len("package recpol"):]
}

// splitDecls puts every top-level declaration of every file into a file of
// its own, in reverse order.
func splitDecls(t *testing.T, files []compiler.File) []compiler.File {
	t.Helper()
	var out []compiler.File
	for _, f := range files {
		af, err := parser.ParseFile(f.Name, f.Data, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			if _, ok := d.(*ast.Package); ok {
				continue
			}
			b, err := format.Node(d)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, compiler.File{Data: []byte("package recpol\n\n" + string(b) + "\n")})
		}
	}
	for i := range out {
		out[i].Name = fmt.Sprintf("part-%03d.cue", len(out)-i)
	}
	return out
}

// TestVersionIgnoresLayout checks that the table's version depends only on
// the policy's meaning: the same policy merged into one file, split into
// one file per declaration, with files in another order, or reformatted
// has the same version and the same table.
func TestVersionIgnoresLayout(t *testing.T) {
	files := exampleFiles(t)
	want := compiler.Options{}.CompileFiles(files)
	if want.Table == nil {
		t.Fatalf("example does not compile:\n%v", want.Diagnostics)
	}
	wantJSON, err := want.Table.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}

	merged := "package recpol\n"
	for _, f := range files {
		merged += body(t, f)
	}
	var reversed []compiler.File
	for i := len(files) - 1; i >= 0; i-- {
		reversed = append(reversed, compiler.File{Name: fmt.Sprintf("%02d.cue", len(files)-i), Data: files[i].Data})
	}
	var reformatted []compiler.File
	for _, f := range files {
		b, err := format.Source(f.Data, format.UseSpaces(3), format.TabIndent(false))
		if err != nil {
			t.Fatal(err)
		}
		// Fold the file's blank lines too.
		b = bytes.ReplaceAll(b, []byte("\n\n"), []byte("\n"))
		reformatted = append(reformatted, compiler.File{Name: "re-" + filepath.Base(f.Name), Data: b})
	}

	for _, tc := range []struct {
		name  string
		files []compiler.File
	}{
		{"merged", []compiler.File{{Name: "all.cue", Data: []byte(merged)}}},
		{"split per declaration", splitDecls(t, files)},
		{"reversed file order", reversed},
		{"reformatted", reformatted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compiler.Options{}.CompileFiles(tc.files)
			if got.Table == nil {
				t.Fatalf("does not compile:\n%v", got.Diagnostics)
			}
			if got.Table.Version != want.Table.Version {
				t.Errorf("version %s, want %s", got.Table.Version, want.Table.Version)
			}
			gotJSON, err := got.Table.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("tables differ")
			}
		})
	}
}

// TestVersionChangesWithMeaning checks that any change of meaning changes
// the version.
func TestVersionChangesWithMeaning(t *testing.T) {
	base := `accounts: a: {users: u: {}, devices: d: owner: "u"}`
	seen := map[string]string{}
	for _, src := range []string{
		base,
		`accounts: a: {users: u: {}, devices: d: {}}`,
		`accounts: a: {users: u: {}, devices: d: owner: "u", devices: d: call_recording: any: any: enabled: true}`,
		`accounts: a: {users: u: {}, devices: d: owner: "u", devices: d: call_recording: any: any: enabled: false}`,
		`accounts: a: {users: u: {}, devices: d: owner: "u", callflows: c: {numbers: ["1"], actions: []}}`,
		`accounts: b: {users: u: {}, devices: d: owner: "u"}`,
		`defaults: format: "wav", accounts: a: {users: u: {}, devices: d: owner: "u"}`,
	} {
		v := compileSource(t, src).Version
		if prev, dup := seen[v]; dup {
			t.Errorf("same version %s for\n  %s\nand\n  %s", v, prev, src)
		}
		seen[v] = src
	}
}

// TestReadDirSkipsSchemaAndHiddenFiles checks which files form a policy.
func TestReadDirSkipsSchemaAndHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.cue", "package recpol\naccounts: a: {}\n")
	write("recpol_schema.cue", "package recpol\nthis is not even CUE\n")
	write("_draft.cue", "package recpol\nbroken: \n")
	write(".hidden.cue", "broken")
	write("notes.txt", "not cue")
	res, err := compiler.Options{}.Compile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Table == nil {
		t.Fatalf("policy does not compile:\n%v", res.Diagnostics)
	}
	if _, err := (compiler.Options{}).Compile(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("a missing directory is not an error")
	}
	empty := t.TempDir()
	if _, err := (compiler.Options{}).Compile(empty); err == nil {
		t.Errorf("a directory without policy files is not an error")
	}
}
