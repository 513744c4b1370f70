package compiler

import (
	"testing"

	"cuelang.org/go/cue/parser"
	"github.com/google/go-cmp/cmp"
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
