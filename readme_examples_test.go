package recpol_test

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
)

// cueBlock is a ```cue block of README.md.
type cueBlock struct {
	line int // of its first line of code
	src  string
}

// readmeCUE returns every ```cue block of README.md.
func readmeCUE(t *testing.T) []cueBlock {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []cueBlock
	var cur *cueBlock
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(line) == "```cue":
			cur = &cueBlock{line: n + 1}
			b.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.src = b.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			b.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: unterminated ```cue block", cur.line-1)
	}
	return blocks
}

// fragmentMarker, as the first line of a ```cue block, says that the block
// is part of a file on purpose (the README says what it belongs to): it
// must parse, but is not vetted alone.
const fragmentMarker = "// fragment"

// TestReadmeCUEBlocksVet vets every ```cue block of README.md as what it
// is: a policy (the package clause added when the block has none), an
// expectations file (its only top-level field is expect), or a runtime
// config (it has switches), each the way recpol reads it.
func TestReadmeCUEBlocksVet(t *testing.T) {
	blocks := readmeCUE(t)
	if len(blocks) < 6 {
		t.Fatalf("found %d ```cue blocks in README.md, want at least 6", len(blocks))
	}
	kinds := map[string]int{}
	for _, bl := range blocks {
		name := "README-line-" + strconv.Itoa(bl.line) + ".cue"
		f, err := parser.ParseFile(name, bl.src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.HasPrefix(bl.src, fragmentMarker) {
			kinds["fragment"]++
			continue
		}
		top := map[string]bool{}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.Field); ok {
				if label, _, err := ast.LabelName(fd.Label); err == nil {
					top[label] = true
				}
			}
		}
		switch {
		case top["expect"] && len(top) == 1:
			kinds["expectations"]++
			if _, err := simulate.ParseExpectations(name, []byte(bl.src)); err != nil {
				t.Errorf("%s: expectations do not parse: %v", name, err)
			}
		case top["switches"]:
			kinds["runtime config"]++
			vetRuntimeConfig(t, name, bl.src)
		default:
			kinds["policy"]++
			src := bl.src
			if f.PackageName() == "" {
				src = "package recpol\n" + src
			}
			res := compiler.Options{}.CompileFiles([]compiler.File{{Name: name, Data: []byte(src)}})
			if res.Diagnostics.HasErrors() {
				t.Errorf("%s: the policy does not vet:\n%v", name, res.Diagnostics)
			}
		}
	}
	for _, k := range []string{"policy", "expectations", "runtime config"} {
		if kinds[k] == 0 {
			t.Errorf("no %s block found in README.md (kinds found: %v)", k, kinds)
		}
	}
}

// vetRuntimeConfig checks a runtime config against the runtime schema, as
// recpol run does before it resolves secrets and paths.
func vetRuntimeConfig(t *testing.T, name, src string) {
	t.Helper()
	ctx := cuecontext.New()
	schema := ctx.CompileBytes(recpolcue.RuntimeSchema(), cue.Filename("runtime.cue")).LookupPath(cue.ParsePath("#Runtime"))
	if err := schema.Err(); err != nil {
		t.Fatal(err)
	}
	v := ctx.CompileString(src, cue.Filename(name))
	if err := schema.Unify(v).Validate(cue.Concrete(true)); err != nil {
		t.Errorf("%s: the runtime config does not vet: %v", name, err)
	}
}

// TestReadmeTemplateOverride proves what the README's first example says
// of its template: every account gets record_min_sec 2 unless it sets its
// own, which sales does (5), and any other account may.
func TestReadmeTemplateOverride(t *testing.T) {
	var example string
	for _, bl := range readmeCUE(t) {
		if strings.Contains(bl.src, "accounts: [_]: call_recording: endpoint: any: any: record_min_sec:") {
			example = bl.src
			break
		}
	}
	if example == "" {
		t.Fatal("README.md has no block with the record_min_sec template")
	}
	res := compiler.Options{}.CompileFiles([]compiler.File{
		{Name: "readme.cue", Data: []byte(example)},
		{Name: "more.cue", Data: []byte(`package recpol

accounts: support: users: sam: {}
accounts: quiet: {
	call_recording: endpoint: any: any: record_min_sec: 0
	users: quinn: {}
}
`)},
	})
	if res.Diagnostics.HasErrors() {
		t.Fatalf("an account cannot override the README's template:\n%v", res.Diagnostics)
	}
	got := map[string]int{}
	for _, ep := range []struct{ account, user string }{{"sales", "anna"}, {"support", "sam"}, {"quiet", "quinn"}} {
		cell, ok := res.Table.Lookup(ep.account, table.User, ep.user, table.Inbound, table.Offnet)
		if !ok || cell.Settings == nil {
			t.Fatalf("no cell for user %s of %s", ep.user, ep.account)
		}
		got[ep.account] = cell.Settings.RecordMinSec
	}
	want := map[string]int{"sales": 5, "support": 2, "quiet": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record_min_sec by account (-want +got):\n%s", diff)
	}
}
