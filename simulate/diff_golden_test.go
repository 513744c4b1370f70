package simulate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// examplePolicy reads the bundled example policy, file name -> source.
func examplePolicy(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join("..", "testdata", "policies", "example")
	names, err := filepath.Glob(filepath.Join(dir, "*.cue"))
	if err != nil || len(names) == 0 {
		t.Fatalf("reading %s: %v", dir, err)
	}
	out := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(n)] = string(b)
	}
	return out
}

func compileFiles(t *testing.T, files map[string]string) *table.Table {
	t.Helper()
	var fs []compiler.File
	for n, src := range files {
		fs = append(fs, compiler.File{Name: n, Data: []byte(src)})
	}
	res := compiler.Options{}.CompileFiles(fs)
	if res.Table == nil {
		t.Fatalf("policy does not compile:\n%s", res.Diagnostics)
	}
	return res.Table
}

// edit is a change of one file of the example: replace old with new.
type edit struct{ file, old, new string }

// TestDiffKinds diffs the example against itself with one kind of change
// each and compares the review summary with a golden file
// (testdata/golden/diff-<name>.txt; -update rewrites them).
func TestDiffKinds(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		md    bool
	}{
		{name: "cell", edits: []edit{{"pci.cue", "call_recording: inbound: any: enabled: true", "call_recording: inbound: offnet: enabled: true"}}},
		{name: "callflow-added", edits: []edit{{"pci.cue", "\t\t// Voicemail records only the caller.",
			"\t\tqueue: {\n\t\t\tpatterns: [\"^8[0-9]{3}$\"]\n\t\t\tactions: [{module: \"record_call\", data: {action: \"start\", label: \"Queue\", format: \"mp3\"}}]\n\t\t}\n\t\t// Voicemail records only the caller."}}},
		{name: "callflow-removed", edits: []edit{{"pci.cue", "\t\tvoicemail: {\n\t\t\tpatterns: [\"^\\\\*97\"]\n\t\t\tactions: [{module: \"record_caller\", data: {format: \"wav\", time_limit: 300}}]\n\t\t}\n", ""}}},
		{name: "callflow-changed", edits: []edit{{"pci.cue", "time_limit: 1800", "time_limit: 900"}}},
		{name: "metaflow-added", edits: []edit{{"pci.cue", "\t\t\t\"74\": {", "\t\t\t\"75\": {module: \"record_call\", data: action: \"pause\"}\n\t\t\t\"74\": {"}}},
		{name: "metaflow-removed", edits: []edit{{"pci.cue", "\t\t\t\"74\": {module: \"record_call\", data: action: \"stop\"}\n", ""}}},
		{name: "metaflow-changed", edits: []edit{{"pci.cue", `"73": {module: "record_call", data: action: "unmask"}`, `"73": {module: "record_call", data: action: "stop"}`}}},
		{name: "defaults", edits: []edit{{"defaults.cue", `format:             "wav"`, `format:             "mp3"`}}},
		{name: "pci", md: true, edits: []edit{
			{"pci.cue", "time_limit: 1800", "time_limit: 900"},
			{"pci.cue", `"73": {module: "record_call", data: action: "unmask"}`, `"73": {module: "record_call", data: action: "stop"}`},
		}},
	}
	base := examplePolicy(t)
	old := compileFiles(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			for _, e := range tt.edits {
				if !strings.Contains(files[e.file], e.old) {
					t.Fatalf("%s has no %q", e.file, e.old)
				}
				files[e.file] = strings.Replace(files[e.file], e.old, e.new, 1)
			}
			d, err := Diff(old, compileFiles(t, files))
			if err != nil {
				t.Fatal(err)
			}
			if !d.Changed() {
				t.Fatal("Changed() = false")
			}
			var b bytes.Buffer
			if err := d.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, "diff-"+tt.name+".txt", b.Bytes())
			if tt.md {
				b.Reset()
				if err := d.WriteMarkdown(&b); err != nil {
					t.Fatal(err)
				}
				golden(t, "diff-"+tt.name+".md", b.Bytes())
			}
		})
	}
}
