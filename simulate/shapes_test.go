package simulate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/scenario"
)

// TestCallShapesReadme predicts every call shape of
// testdata/scenarios/shapes under the shapes policy and renders one line
// per shape saying which recordings it makes. The table is a golden
// (testdata/golden/call-shapes.md, rewritten with -update) and the
// README's "Call shapes" section must hold it verbatim, so the README
// says what the simulator (and, by the agreement test, the runtime) does.
func TestCallShapesReadme(t *testing.T) {
	res, err := compiler.Options{}.Compile("../testdata/policies/shapes")
	if err != nil || res.Table == nil {
		t.Fatalf("policy: %v %v", err, res.Diagnostics)
	}
	files, err := filepath.Glob("../testdata/scenarios/shapes/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shape scenarios: %v", err)
	}
	var b bytes.Buffer
	b.WriteString("| shape | recordings (leg: scope, origin, seconds on the call's clock) |\n|---|---|\n")
	for _, f := range files {
		sc, err := scenario.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := PredictScenario(res.Table, sc)
		if err != nil {
			t.Fatal(err)
		}
		var recs []string
		for _, p := range ps {
			stop := "running"
			if p.StopMS >= 0 {
				stop = fmt.Sprintf("%.1f", float64(p.StopMS)/1000)
			}
			who := p.Account
			if p.Endpoint != "" {
				who = p.Endpoint
			}
			moved := ""
			if p.MovedTo != "" {
				moved = fmt.Sprintf(" moved to `%s`", p.MovedTo)
			}
			recs = append(recs, fmt.Sprintf("`%s`: %s %s (%s) %.1f-%s%s", p.Leg, p.Scope, who, p.Origin, float64(p.StartMS)/1000, stop, moved))
		}
		if len(recs) == 0 {
			recs = []string{"nothing"}
		}
		fmt.Fprintf(&b, "| %s | %s |\n", strings.TrimSuffix(filepath.Base(f), ".json"), strings.Join(recs, "; "))
	}
	golden(t, "call-shapes.md", b.Bytes())
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, b.Bytes()) {
		t.Errorf("README.md's \"Call shapes\" section does not hold simulate/testdata/golden/call-shapes.md: copy it there")
	}
}

// TestBetweenAccountsAgree holds the truth tables' calls between accounts
// to the call state machine: the recordings the timed call from acme's d1
// to beta's e1 makes (directly and through a loopback) are those of
// acme's "device:d1 -> other-account" plus beta's "other-account ->
// device:e1".
func TestBetweenAccountsAgree(t *testing.T) {
	res, err := compiler.Options{}.Compile("../testdata/policies/shapes")
	if err != nil || res.Table == nil {
		t.Fatalf("policy: %v %v", err, res.Diagnostics)
	}
	sim, err := Run(res.Table)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ Account, Scope, Endpoint, Origin string }
	var want []rec
	for _, a := range sim.Accounts {
		for _, c := range a.Calls {
			if (a.ID == "acme" && c.From.String() == "device:d1" && c.To.String() == "other-account") ||
				(a.ID == "beta" && c.From.String() == "other-account" && c.To.String() == "device:e1") {
				for _, r := range c.Recordings {
					e := ""
					if r.Endpoint != "" {
						e = "device:" + r.Endpoint
					}
					want = append(want, rec{a.ID, r.Scope.String(), e, r.Origin})
				}
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the truth tables have no recording between acme's d1 and beta's e1")
	}
	sortRecs := func(rs []rec) {
		sort.Slice(rs, func(i, j int) bool { return fmt.Sprint(rs[i]) < fmt.Sprint(rs[j]) })
	}
	sortRecs(want)
	for _, f := range []string{"between_accounts_direct.json", "between_accounts_loopback.json"} {
		sc, err := scenario.ParseFile("../testdata/scenarios/shapes/" + f)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := PredictScenario(res.Table, sc)
		if err != nil {
			t.Fatal(err)
		}
		var got []rec
		for _, p := range ps {
			got = append(got, rec{p.Account, p.Scope, p.Endpoint, p.Origin})
		}
		sortRecs(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: (-truth tables +state machine):\n%s", f, diff)
		}
	}
}
