package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/cue/input"
)

func TestParseExample(t *testing.T) {
	sc, err := ParseFile(filepath.Join("..", "testdata", "scenarios", "basic.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Calls) != 1 {
		t.Fatalf("%d calls", len(sc.Calls))
	}
	c := sc.Calls[0]
	b := c.Leg("b1")
	if b == nil || b.Direction != "outbound" || b.Parent != "a" || b.Variables["recpol_device"] != "d2" {
		t.Errorf("leg b1: %+v", b)
	}
	if got, want := c.Leg("a").UUID, LegUUID("basic", "a"); got != want {
		t.Errorf("generated uuid %s, want %s", got, want)
	}
	if c.EndMS() != 60000 {
		t.Errorf("EndMS %d", c.EndMS())
	}
}

func TestParseCUEAndJSONAgree(t *testing.T) {
	js := `{"calls": [{"id": "x", "legs": [{"name": "a"}], "steps": [{"at_ms": 0, "do": "create", "leg": "a"}, {"at_ms": 5, "do": "dtmf", "leg": "a", "digits": "12"}, {"at_ms": 9, "do": "hangup", "leg": "a"}]}]}`
	cueSrc := `
legs: [{name: "a"}]
calls: [{
	id: "x"
	"legs": legs
	steps: [
		{at_ms: 0, do: "create", leg: "a"},
		{at_ms: 5, do: "dtmf", leg: "a", digits: "12"},
		{at_ms: 9, do: "hangup", leg: "a"},
	]
}]
`
	a, err := Parse("x.json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	// CUE may define helper fields; only calls is read... but the schema is
	// closed, so helpers must be hidden.
	cueSrc = strings.Replace(cueSrc, "legs: [", "_legs: [", 1)
	cueSrc = strings.Replace(cueSrc, `"legs": legs`, `"legs": _legs`, 1)
	b, err := Parse("x.cue", []byte(cueSrc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("JSON and CUE differ (-json +cue):\n%s", diff)
	}
	s := a.Calls[0].Steps
	if s[1].Source != "RTP" || s[1].Duration != 2000 || s[2].Cause != "NORMAL_CLEARING" {
		t.Errorf("defaults not applied: %+v", s)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error, each with a position
	}{
		{"syntax", `{"calls": [`, []string{"x.json:1:"}},
		{"unknown field", `{"calls": [{"id": "c", "legs": [], "steps": [], "colour": 1}]}`, []string{"x.json:1:", "colour"}},
		{"unknown action", `{"calls": [{"id": "c", "legs": [{"name": "a"}], "steps": [{"at_ms": 0, "do": "explode", "leg": "a"}]}]}`, []string{"x.json:1:78:", `"explode" is not allowed: want one of "answer", `}},
		{"no calls", `{"calls": []}`, []string{"x.json", "at least one call"}},
		{"unknown leg", "{\"calls\": [{\"id\": \"c\", \"legs\": [{\"name\": \"a\"}],\n\"steps\": [{\"at_ms\": 0, \"do\": \"create\", \"leg\": \"zz\"}]}]}", []string{"x.json:2:", "unknown leg \"zz\""}},
		{"before create", `{"calls": [{"id": "c", "legs": [{"name": "a"}], "steps": [{"at_ms": 0, "do": "answer", "leg": "a"}]}]}`, []string{"before it is created"}},
		{"after hangup of bridged leg", `{"calls": [{"id": "c", "legs": [{"name": "a"}, {"name": "b", "parent": "a"}], "steps": [
			{"at_ms": 0, "do": "create", "leg": "a"}, {"at_ms": 1, "do": "create", "leg": "b"},
			{"at_ms": 2, "do": "bridge", "leg": "a", "other": "b"}, {"at_ms": 3, "do": "hangup", "leg": "a"},
			{"at_ms": 4, "do": "answer", "leg": "b"}]}]}`, []string{"x.json:4:", "after it hung up"}},
		{"time goes back", `{"calls": [{"id": "c", "legs": [{"name": "a"}], "steps": [{"at_ms": 5, "do": "create", "leg": "a"}, {"at_ms": 1, "do": "hangup", "leg": "a"}]}]}`, []string{"time order"}},
		{"bad digits", `{"calls": [{"id": "c", "legs": [{"name": "a"}], "steps": [{"at_ms": 0, "do": "create", "leg": "a"}, {"at_ms": 1, "do": "dtmf", "leg": "a", "digits": "1x"}]}]}`, []string{"digits"}},
		{"space in uuid", `{"calls": [{"id": "c", "legs": [{"name": "a", "uuid": "a b"}], "steps": []}]}`, []string{"uuid"}},
		{"duplicate uuid", `{"calls": [{"id": "c", "legs": [{"name": "a", "uuid": "u1"}, {"name": "b", "uuid": "u1"}], "steps": []}]}`, []string{"already used"}},
		{"unknown parent", `{"calls": [{"id": "c", "legs": [{"name": "a", "parent": "q"}], "steps": []}]}`, []string{"unknown leg \"q\""}},
		{"duplicate call", `{"calls": [{"id": "c", "legs": [], "steps": []}, {"id": "c", "legs": [], "steps": []}]}`, []string{"duplicate call id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.json", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseDiagnostics: the errors of a scenario file are diagnostics
// positioned and worded as those of `recpol vet`, one per offending
// value, whatever the value's type.
func TestParseDiagnostics(t *testing.T) {
	const file = "scenario.cue"
	diag := func(line, col int, code, path, msg string) input.Diagnostic {
		return input.Diagnostic{Code: code, Severity: input.Error, Position: input.Position{File: file, Line: line, Column: col},
			Path: path, Message: path + ": " + msg}
	}
	tests := []struct {
		name string
		src  string
		want input.Diagnostics
	}{
		{
			name: "a value no alternative allows",
			src: `calls: [{
	id: "c"
	legs: [{name: "a", direction: "sideways"}]
	steps: []
}]`,
			want: input.Diagnostics{diag(3, 32, input.CodeSchema, "calls[0].legs[0].direction", `"sideways" is not allowed: want one of "inbound", "outbound"`)},
		},
		{
			name: "a value of the wrong type for an enum",
			src: `calls: [{
	id: "c"
	legs: [{name: "a", direction: 3}]
	steps: []
}]`,
			want: input.Diagnostics{diag(3, 32, input.CodeSchema, "calls[0].legs[0].direction", `3 is not allowed: want one of "inbound", "outbound"`)},
		},
		{
			name: "every error at once: a type, a bound, unknown fields",
			src: `calls: [{
	id: "c"
	legs: [{name: "a", colour: "red"}]
	steps: [{at_ms: -1, do: "create", leg: "a"}, {at_ms: "x", do: "hangup", leg: "a"}]
}]
call: 1`,
			want: input.Diagnostics{
				diag(3, 21, input.CodeSchema, "calls[0].legs[0].colour", `unknown field "colour"`),
				diag(4, 18, input.CodeSchema, "calls[0].steps[0].at_ms", `-1 is out of range: it must be >=0`),
				diag(4, 55, input.CodeSchema, "calls[0].steps[1].at_ms", `conflicting values "x" and int (mismatched types string and int)`),
				diag(6, 1, input.CodeSchema, "call", `unknown top-level field "call": a scenario has only calls`),
			},
		},
		{
			name: "a check after the schema",
			src: `calls: [{
	id: "c"
	legs: [{name: "a"}]
	steps: [{at_ms: 0, do: "answer", leg: "a"}]
}]`,
			want: input.Diagnostics{diag(4, 21, input.CodeInvalid, "calls[0].steps[0].do", `answer on leg "a" before it is created`)},
		},
		{
			name: "syntax",
			src:  "calls: [{\n",
			want: input.Diagnostics{{Code: input.CodeSyntax, Severity: input.Error, Position: input.Position{File: file, Line: 1, Column: 11},
				Message: "expected '}', found 'EOF'"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(file, []byte(tt.src))
			var got input.Diagnostics
			if !errors.As(err, &got) {
				t.Fatalf("Parse: %v, want Diagnostics", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHangupSet(t *testing.T) {
	c := &Call{Legs: []Leg{{Name: "a"}, {Name: "b1", Parent: "a"}, {Name: "b2", Parent: "a"}, {Name: "c", Parent: "b1"}}}
	up := func(string) bool { return true }
	bridged := map[string][]string{"a": {"b1"}, "b1": {"a"}}
	got := HangupSet(c, "b1", up, func(n string) []string { return bridged[n] })
	// b1's bridge partner a goes, then what b1 and a originated.
	if diff := cmp.Diff([]string{"b1", "a", "c", "b2"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLegUUIDStable(t *testing.T) {
	if LegUUID("c", "a") != LegUUID("c", "a") || LegUUID("c", "a") == LegUUID("c", "b") {
		t.Error("LegUUID not deterministic per leg")
	}
	if u := LegUUID("c", "a"); len(u) != 36 || u[14] != '5' {
		t.Errorf("LegUUID %s is not a version-5 style uuid", u)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join(t.TempDir(), "none.json"))
	if !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestCloneIsDeep(t *testing.T) {
	c := Call{ID: "c", Legs: []Leg{{Name: "a", Variables: map[string]string{"k": "v"}}}, Steps: []Step{{Do: "hangup", Leg: "a"}}}
	sc := &Scenario{Calls: []Call{c}}
	cp := sc.Clone()
	cp.Normalize()
	cp.Calls[0].Legs[0].Variables["k"] = "changed"
	if c.Legs[0].UUID != "" || c.Steps[0].Cause != "" || c.Legs[0].Variables["k"] != "v" {
		t.Errorf("original changed: %+v", c)
	}
}
