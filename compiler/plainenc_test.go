package compiler

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"cuelang.org/go/cue/parser"
	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/gen"
)

// TestPlainEncoding encodes the plain value of a file and decodes it
// back: the same value, templates, empty structs and lists included.
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
			got, ok := decodePlain(want.appendPlain(nil))
			if !ok {
				t.Fatal("decodePlain failed")
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(pnode{})); diff != "" {
				t.Errorf("round trip differs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlainDecodingRejects decodes what appendPlain never writes.
func TestPlainDecodingRejects(t *testing.T) {
	valid := (&pnode{kind: pStruct, fields: map[string]*pnode{
		"a": {kind: pList, elems: []*pnode{{kind: pString, s: "x"}, {kind: pInt, i: -3}}},
	}}).appendPlain(nil)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{99}},
		{"truncated", valid[:len(valid)-1]},
		{"trailing", append(append([]byte(nil), valid...), encTrue)},
		{"bad template flag", []byte{encStruct, 0, 2}},
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
		got, ok := decodePlain(want.appendPlain(nil))
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
		v, ok := plainFile(af)
		if !ok {
			t.Fatalf("%q: not plain data", tc.src)
		}
		got, ok := decodePlain(v.appendPlain(nil))
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
