package compiler

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/gen"
)

// encodeFile encodes the plain value of a parsed file.
func encodeFile(t *testing.T, af *ast.File) []byte {
	t.Helper()
	b, ok := appendPlainFile(nil, af)
	if !ok {
		t.Fatal("appendPlainFile: not plain data")
	}
	return b
}

// TestPlainEncoding encodes a file straight from its syntax and decodes
// it: the value plainFile makes of the file, templates, empty structs and
// lists, labels and templates declared twice included.
func TestPlainEncoding(t *testing.T) {
	for _, tc := range []struct {
		name, src string
	}{
		{"empty", `package recpol`},
		{"scalars", `package recpol
a: true, b: false, c: 0, d: 9223372036854775807, e: "", f: "x\ty é"`},
		{"nested", `package recpol
accounts: "acme": {
	users: {"u1": {}, "u2": {call_recording: inbound: onnet: {enabled: true, format: "mp3"}}}
	callflows: main: {numbers: ["100", "200"], actions: [{module: "record_call"}], patterns: []}
}`},
		{"templates", `package recpol
accounts: [_]: call_recording: endpoint: any: any: record_min_sec: 1
accounts: x: users: [string]: {}
accounts: x: users: u: {}`},
		{"twice", `package recpol
accounts: a: users: u1: {}
accounts: a: users: u2: {}
accounts: a: devices: [_]: owner: "u1"
accounts: a: devices: [string]: owner: "u1"
accounts: a: devices: d1: {}
x: 1
x: 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			af, err := parser.ParseFile("a.cue", tc.src, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := plainFile(af)
			if !ok {
				t.Fatal("not plain data")
			}
			got, ok := decodePlain(encodeFile(t, af))
			if !ok {
				t.Fatal("decodePlain failed")
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(pnode{})); diff != "" {
				t.Errorf("round trip differs (-plainFile +decoded):\n%s", diff)
			}
		})
	}
}

// TestPlainEncodingMerges encodes files whose syntax is plain data but
// whose merging is not: plainFile rejects them, appendPlainFile encodes
// them, and decodePlain rejects what it encoded. A file that refers to a
// declaration in a pattern label is not encoded.
func TestPlainEncodingMerges(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		encoded   bool
	}{
		{"conflict", "package recpol\nx: 1\nx: 2", true},
		{"list twice", "package recpol\nx: [1]\nx: [1]", true},
		{"kinds", "package recpol\nx: {}\nx: 1", true},
		{"templates conflict", "package recpol\nx: [_]: 1\nx: [_]: 2", true},
		{"pattern refers", "package recpol\nstring: {[string]: 1}", false},
		{"reference", "package recpol\nx: 1\ny: x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			af, err := parser.ParseFile("a.cue", tc.src, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			b, encoded := appendPlainFile(nil, af)
			if encoded != tc.encoded {
				t.Fatalf("appendPlainFile encoded: %v, want %v", encoded, tc.encoded)
			}
			if !encoded {
				return
			}
			if _, ok := plainFile(af); ok {
				t.Errorf("plainFile took it")
			}
			if _, ok := decodePlain(b); ok {
				t.Errorf("decodePlain took it")
			}
		})
	}
}

// TestPlainDecodingRejects decodes what appendPlainFile never writes.
func TestPlainDecodingRejects(t *testing.T) {
	af, err := parser.ParseFile("a.cue", `a: ["x", 3]`)
	if err != nil {
		t.Fatal(err)
	}
	valid := encodeFile(t, af)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{99}},
		{"truncated", valid[:len(valid)-1]},
		{"trailing", append(append([]byte(nil), valid...), encTrue)},
		{"templates beyond the end", []byte{encStruct, 0, 2}},
		{"count beyond the end", []byte{encList, 9, encTrue}},
		{"string beyond the end", []byte{encString, 5, 'a'}},
		{"bad varint", []byte{encInt, 0x80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := decodePlain(tc.b); ok {
				t.Errorf("decodePlain(%v) succeeded", tc.b)
			}
		})
	}
}

// TestInspectFilesKeeps checks what the first pass keeps of each file: an
// account file of plain data only its encoded value, any other file that
// parsed its syntax tree, a file that did not parse neither, with its
// diagnostics.
func TestInspectFilesKeeps(t *testing.T) {
	type kept struct {
		Accounts []string
		AST      bool
		Plain    bool
		Diags    int
	}
	files := []File{
		{Name: "shared.cue", Data: []byte("package recpol\ndefaults: format: \"mp3\"\n")},
		{Name: "a.cue", Data: []byte("package recpol\naccounts: a: users: u1: {}\n")},
		{Name: "b.cue", Data: []byte("package recpol\naccounts: b: users: u1: {}\nx: 1\n")},
		{Name: "c.cue", Data: []byte("package recpol\nlet f = \"wav\"\naccounts: c: call_recording: account: any: any: format: f\n")},
		{Name: "d.cue", Data: []byte("package recpol\naccounts: d: {\n")},
	}
	want := []kept{
		{AST: true},
		{Accounts: []string{"a"}, Plain: true},
		{Accounts: []string{"b"}, AST: true}, // shared declarations too
		{Accounts: []string{"c"}, AST: true}, // not plain data
		{Diags: 1},
	}
	for _, parallel := range []int{1, 3} {
		cm := NewCompiler(Options{Parallel: parallel})
		var got []kept
		for i, f := range cm.inspectFiles(newCompilation(files), nil) {
			if f.sum != fileSum(files[i]) {
				t.Errorf("%s: wrong sum", files[i].Name)
			}
			if f.plain != nil {
				if _, ok := decodePlain(f.plain); !ok {
					t.Errorf("%s: plain value does not decode", files[i].Name)
				}
			}
			got = append(got, kept{f.info.accounts, f.ast != nil, f.plain != nil, len(f.diags)})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Parallel %d: kept (-want +got):\n%s", parallel, diff)
		}
	}
}

// TestPlainDecodingSlabsAndWords round-trips the files of a generated
// tree, whose values span many of the decoder's slabs, and finds the
// schema's labels and enumerated strings decoded as plainWords' own
// strings, other strings as themselves.
func TestPlainDecodingSlabsAndWords(t *testing.T) {
	dir := t.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 3, Users: 4, Devices: 6, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.cue"))
	if err != nil || len(names) == 0 {
		t.Fatal("no generated files", err)
	}
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(name, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := plainFile(af)
		if !ok {
			t.Fatalf("%s: not plain data", name)
		}
		got, ok := decodePlain(encodeFile(t, af))
		if !ok {
			t.Fatalf("%s: decodePlain failed", name)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(pnode{})); diff != "" {
			t.Errorf("%s: round trip differs (-want +got):\n%s", name, diff)
		}
	}
	for _, tc := range []struct {
		src      string
		label, s string
		word     bool // the label and string are plainWords'
	}{
		{`call_recording: "mp3"`, "call_recording", "mp3", true},
		{`dtmf_leg: "both"`, "dtmf_leg", "both", true},
		{`"acct-1": "x y"`, "acct-1", "x y", false},
	} {
		af, err := parser.ParseFile("a.cue", tc.src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decodePlain(encodeFile(t, af))
		if !ok {
			t.Fatalf("%q: decodePlain failed", tc.src)
		}
		for label, f := range got.fields {
			if label != tc.label || f.s != tc.s {
				t.Fatalf("%q: decoded %q: %q", tc.src, label, f.s)
			}
			for _, s := range []string{label, f.s} {
				w, isWord := plainWords()[s]
				same := isWord && unsafe.StringData(w) == unsafe.StringData(s)
				if same != tc.word {
					t.Errorf("%q: %q is plainWords' own string: %v, want %v", tc.src, s, same, tc.word)
				}
			}
		}
	}
}
