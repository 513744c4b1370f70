package input

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"cuelang.org/go/cue"
	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/internal/readlimit"
)

// testLoader reads a small input whose schema has the shapes the inputs
// of recpol have: an enum, a bound, a nested list of closed structs, a
// map, a default.
var testLoader = Loader{
	Kind:       "test input",
	SchemaName: "test.cue",
	Schema: []byte(`#In: {
	mode:  "a" | "b"
	count: int & >=1 | *1
	items?: [...{name: string, size?: int}]
	vars?: [string]: string
}`),
	Definition: "#In",
	MaxBytes:   256,
}

func TestLoad(t *testing.T) {
	const file = "in.cue"
	diag := func(line, col int, code, path, msg string) Diagnostic {
		return Diagnostic{Code: code, Severity: Error, Position: Position{File: file, Line: line, Column: col},
			Path: path, Message: path + ": " + msg}
	}
	tests := []struct {
		name string
		src  string
		want Diagnostics // nil: the input loads
	}{
		{name: "valid", src: "mode: \"a\"\nvars: x: \"y\"\n"},
		{name: "json", src: `{"mode": "b", "items": [{"name": "n", "size": 2}]}`},
		{
			name: "enum",
			src:  `mode: "c"`,
			want: Diagnostics{diag(1, 7, CodeSchema, "mode", `"c" is not allowed: want one of "a", "b"`)},
		},
		{
			name: "enum of another type",
			src:  `mode: 1`,
			want: Diagnostics{diag(1, 7, CodeSchema, "mode", `1 is not allowed: want one of "a", "b"`)},
		},
		{
			name: "bound beside a default",
			src:  "mode: \"a\"\ncount: 0",
			want: Diagnostics{diag(2, 8, CodeSchema, "count", "0 is out of range: it must be >=1")},
		},
		{
			name: "every error at once, unknown fields too",
			src:  "mode: \"a\"\nitems: [{name: 3, colour: 1}]\nmod: 1",
			want: Diagnostics{
				diag(2, 16, CodeSchema, "items[0].name", "conflicting values 3 and string (mismatched types int and string)"),
				diag(2, 19, CodeSchema, "items[0].colour", `unknown field "colour"`),
				diag(3, 1, CodeSchema, "mod", `unknown top-level field "mod": a test input has only mode, count, items and vars`),
			},
		},
		{
			name: "missing",
			src:  "count: 2",
			want: Diagnostics{{Code: CodeIncomplete, Severity: Error, Position: Position{File: file}, Path: "mode",
				Message: `mode: mode must be set to a value, not just "a" | "b"`}},
		},
		{
			name: "syntax",
			src:  "mode: [",
			want: Diagnostics{{Code: CodeSyntax, Severity: Error, Position: Position{File: file, Line: 1, Column: 8},
				Message: "expected ']', found 'EOF'"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testLoader.Load(file, []byte(tt.src))
			var got Diagnostics
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("Load: %v, want Diagnostics", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInputAtAndErrorf(t *testing.T) {
	in, err := testLoader.Load("in.cue", []byte("mode: \"a\"\nitems: [\n\t{name: \"x\"},\n\t{name: \"y\", size: 2},\n]"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Items []struct {
			Size int `json:"size"`
		} `json:"items"`
	}
	if err := in.Decode(&got); err != nil || len(got.Items) != 2 || got.Items[1].Size != 2 {
		t.Fatalf("Decode: %+v, %v", got, err)
	}
	want := Diagnostic{Code: CodeInvalid, Severity: Error, Position: Position{File: "in.cue", Line: 4, Column: 14},
		Path: "items[1].size", Message: "items[1].size: 2 is too small"}
	if diff := cmp.Diff(want, in.Errorf("items[1].size", "%d is too small", 2)); diff != "" {
		t.Errorf("Errorf (-want +got):\n%s", diff)
	}
	// A path the file does not write is found at its nearest parent.
	if diff := cmp.Diff(Position{File: "in.cue", Line: 3, Column: 2}, in.At("items[0].size")); diff != "" {
		t.Errorf("At (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Position{File: "in.cue"}, in.At("count")); diff != "" {
		t.Errorf("At of a default (-want +got):\n%s", diff)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.cue")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), 257), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := testLoader.ReadFile(big); !errors.Is(err, readlimit.ErrTooLarge) {
		t.Errorf("a file past the limit: %v", err)
	}
	if _, err := testLoader.ReadFile(filepath.Join(dir, "none.cue")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	ok := filepath.Join(dir, "ok.cue")
	if err := os.WriteFile(ok, []byte(`mode: "b"`), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := testLoader.ReadFile(ok)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := in.Value.LookupPath(cue.ParsePath("count")).Int64(); c != 1 {
		t.Errorf("count %d, want the default 1", c)
	}
}

func TestPrint(t *testing.T) {
	ds := Diagnostics{
		{Code: CodeSchema, Severity: Error, Position: Position{File: "a.cue", Line: 2, Column: 3}, Path: "x", Message: "x: bad",
			Related: []Position{{File: "b.cue", Line: 1, Column: 1}}},
		{Code: CodeInvalid, Severity: Warning, Position: Position{File: "a.cue"}, Message: "odd"},
		{Code: CodeInvalid, Severity: Error, Message: "lost",
			Accounts: []string{"a", "b", "c", "d"}},
	}
	var b bytes.Buffer
	if err := Print(&b, ds); err != nil {
		t.Fatal(err)
	}
	want := "a.cue:2:3: x: bad (see b.cue:1:1)\na.cue: warning: odd\n-: lost (in 4 accounts: a, b, c and 1 more)\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Print (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, ds.Error()+"\n"); diff != "" {
		t.Errorf("Error (-want +got):\n%s", diff)
	}
}

func TestPathString(t *testing.T) {
	tests := []struct {
		cue  []string
		want string
	}{
		{[]string{"calls", "0", "legs", "1", "direction"}, "calls[0].legs[1].direction"},
		{[]string{"accounts", `"bob-desk"`, "owner"}, `accounts."bob-desk".owner`},
		{[]string{"expect", `"*72"`}, `expect."*72"`},
		{nil, ""},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, PathString(NormalizePath(tt.cue))); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.cue, diff)
		}
		if tt.want != "" {
			if diff := cmp.Diff(NormalizePath(tt.cue), splitPath(tt.want)); diff != "" {
				t.Errorf("splitPath(%q) (-want +got):\n%s", tt.want, diff)
			}
		}
	}
}
