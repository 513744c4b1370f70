package compiler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/gen"
)

// TestPlainDecode decodes every plain-data seed both ways: the raw
// policy decoded from the syntax is the one decoded from CUE's value.
func TestPlainDecode(t *testing.T) {
	n := 0
	for _, s := range plainSeeds(t) {
		files := []File{{Name: "a.cue", Data: s[0]}}
		if len(s[1]) > 0 {
			files = append(files, File{Name: "b.cue", Data: s[1]})
		}
		c := newCompilation(files)
		c.parse()
		if c.diags.HasErrors() {
			continue
		}
		got, ok := plainPolicy(c.asts)
		if !ok {
			continue
		}
		n++
		c.run(stages[1:3]) // evaluate, decode
		if diff := cmp.Diff(c.policy, got, rawCmp); diff != "" {
			t.Errorf("%q: raw policy differs (-cue +plain):\n%s", s[0], diff)
		}
	}
	if n < 5 {
		t.Errorf("only %d seeds are plain data", n)
	}
}

// rawCmp compares raw policies, their settings' values included.
var rawCmp = cmp.AllowUnexported(rawSettings{}, rawActionData{}, value{})

// TestPlainDataPathTree compiles a generated tree without its template
// and with it (`accounts: [_]: ...`, a plain template): the same result as
// CUE's, and the plain-data path taken both ways.
func TestPlainDataPathTree(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template bool
		plain    bool
	}{
		{"template", true, true},
		{"plain", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := gen.Write(dir, gen.Options{Accounts: 6, Users: 3, Devices: 4, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			if !tc.template {
				stripTemplate(t, dir)
			}
			files, err := ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			before := plainCompiled.Load()
			plain, cue := compileBoth(files)
			if taken := plainCompiled.Load() > before; taken != tc.plain {
				t.Errorf("plain-data path taken: %v, want %v", taken, tc.plain)
			}
			if plain.Table == nil {
				t.Fatal(plain.Diagnostics)
			}
			sameResults(t, plain, cue)
		})
	}
}

// stripTemplate drops the template line of a generated tree's shared file.
func stripTemplate(t testing.TB, dir string) {
	p := filepath.Join(dir, "shared.cue")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, line := range splitLines(b) {
		if len(line) >= 12 && string(line[:12]) == "accounts: [_" {
			continue
		}
		out = append(out, line...)
	}
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i < len(b) {
			i++
		}
		lines = append(lines, b[:i])
		b = b[i:]
	}
	return lines
}

// TestPlainDataPathCase: field names are case-sensitive on both paths, as
// CUE's closed schema is (not case-insensitive as encoding/json's decoding
// into a struct is): a misspelt case is the same unknown field, at the
// same position, with the same hint, whichever path reads the file.
func TestPlainDataPathCase(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"accounts: acme: {call_recording: account: any: any: Enabled: true}\n",
			`a.cue:2:53: accounts.acme.call_recording.account.any.any.Enabled: unknown field "Enabled" (did you mean enabled?)`},
		{"defaults: {Format: \"wav\"}\n", `a.cue:2:12: defaults.Format: unknown field "Format" (did you mean format?)`},
		{"accounts: acme: {call_recording: account: any: ANY: enabled: true}\n",
			`a.cue:2:48: accounts.acme.call_recording.account.any.ANY: unknown field "ANY" (did you mean any?)`},
	} {
		plain, cue := compileBoth([]File{{Name: "a.cue", Data: []byte("package recpol\n" + tc.src)}})
		sameResults(t, plain, cue)
		if got := plain.Diagnostics.Error(); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

// TestPlainTemplates: a template that matches every label of a map is
// applied in Go, anything else about templates is left to CUE, and both
// paths give the same table and diagnostics.
func TestPlainTemplates(t *testing.T) {
	const acme = "accounts: acme: {call_recording: account: any: any: enabled: true, users: {u1: {}, u2: call_recording: inbound: any: record_min_sec: 5}}\n"
	for _, tc := range []struct {
		name, src string
		plain     bool
	}{
		{"accounts [_]", acme + "accounts: [_]: call_recording: endpoint: any: any: record_min_sec: 1\n", true},
		{"accounts [string]", acme + "accounts: [string]: call_recording: endpoint: any: any: record_min_sec: 1\n", true},
		{"users [_] merged with a field", acme + "accounts: acme: users: [_]: call_recording: inbound: any: enabled: true\n", true},
		{"users [_] the same value", acme + "accounts: acme: users: [_]: call_recording: inbound: any: record_min_sec: 5\n", true},
		{"two templates", acme + "accounts: [_]: users: [_]: call_recording: outbound: any: enabled: false\naccounts: [_]: call_recording: endpoint: any: any: enabled: true\n", true},
		{"template of an absent map", acme + "accounts: acme: devices: [_]: call_recording: inbound: any: enabled: true\n", true},
		{"conflict with a field", acme + "accounts: acme: users: [_]: call_recording: inbound: any: record_min_sec: 6\n", false},
		{"conflicting templates, no field", acme + "accounts: acme: devices: [_]: {call_recording: inbound: any: record_min_sec: 6}\naccounts: acme: devices: [_]: {call_recording: inbound: any: record_min_sec: 7}\n", false},
		{"template in a closed struct", acme + "accounts: acme: call_recording: [_]: any: any: enabled: true\n", false},
		{"template at the top", acme + "[_]: {}\n", false},
		{"template the schema rejects", acme + "accounts: [_]: bogus: 1\n", false},
		{"regexp pattern", acme + "accounts: [=~\"^a\"]: call_recording: endpoint: any: any: record_min_sec: 1\n", false},
		{"aliased pattern", acme + "accounts: [X=_]: call_recording: endpoint: any: any: record_min_sec: 1\n", false},
		{"template with a list", acme + "accounts: [_]: callflows: cf: {numbers: [\"1\"], actions: []}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := plainCompiled.Load()
			plain, cue := compileBoth([]File{{Name: "a.cue", Data: []byte("package recpol\n" + tc.src)}})
			if taken := plainCompiled.Load() > before; taken != tc.plain {
				t.Errorf("plain-data path taken: %v, want %v (diagnostics: %v)", taken, tc.plain, cue.Diagnostics)
			}
			sameResults(t, plain, cue)
		})
	}
}

// TestAppendJSON: a plain value written as JSON reads back as itself,
// strings with quotes, backslashes, control characters and any UTF-8
// included.
func TestAppendJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    *pnode
		want any
	}{
		{"string", &pnode{kind: pString, s: "a \"b\" \\ c\n\t\x01\x1f é ☎ \u2028"}, "a \"b\" \\ c\n\t\x01\x1f é ☎ \u2028"},
		{"empty string", &pnode{kind: pString}, ""},
		{"int", &pnode{kind: pInt, i: -42}, float64(-42)},
		{"bool", &pnode{kind: pBool, b: true}, true},
		{"list", &pnode{kind: pList, elems: []*pnode{{kind: pInt, i: 1}, {kind: pString, s: "x"}}}, []any{float64(1), "x"}},
		{"empty list", &pnode{kind: pList, elems: []*pnode{}}, []any{}},
		{"struct", &pnode{kind: pStruct, fields: map[string]*pnode{"a\"b": {kind: pBool}, "c": {kind: pStruct, fields: map[string]*pnode{}}}},
			map[string]any{"a\"b": false, "c": map[string]any{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.n.appendJSON(nil)
			var got any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", b, diff)
			}
		})
	}
}
