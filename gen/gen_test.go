package gen_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
)

// TestGeneratedPoliciesCompile checks that generated policies are valid,
// complete and deterministic for a seed.
func TestGeneratedPoliciesCompile(t *testing.T) {
	for _, o := range []gen.Options{
		{Accounts: 3, Users: 4, Devices: 6, Seed: 1},
		{Accounts: 5, Users: 0, Devices: 3, Seed: 2},
		{Accounts: 2, Users: 10, Devices: 20, Seed: 3},
	} {
		dir := t.TempDir()
		if err := gen.Write(dir, o); err != nil {
			t.Fatal(err)
		}
		res, err := compiler.Options{}.Compile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if res.Table == nil {
			t.Fatalf("%+v: generated policy is invalid:\n%v", o, res.Diagnostics)
		}
		if got := len(res.Table.AccountIDs()); got != o.Accounts {
			t.Errorf("%+v: %d accounts, want %d", o, got, o.Accounts)
		}
		for _, id := range res.Table.AccountIDs() {
			a, _ := res.Table.Account(id)
			if len(a.Users) != o.Users || len(a.Devices) != o.Devices {
				t.Errorf("%+v: account %s has %d users and %d devices", o, id, len(a.Users), len(a.Devices))
			}
		}
		again := t.TempDir()
		if err := gen.Write(again, o); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(readAll(t, dir), readAll(t, again)); diff != "" {
			t.Errorf("%+v: same seed, different files:\n%s", o, diff)
		}
	}
}

func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.cue"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}
