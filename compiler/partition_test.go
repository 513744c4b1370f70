package compiler_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
)

// tree generates a policy of n accounts with the seeded generator, then
// reshapes it: templates in shared files, accounts split over two files,
// two accounts in one file, and optionally a cross-file reference.
func tree(t *testing.T, seed uint64, n int, crossRef bool) []compiler.File {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	files := []compiler.File{
		{Name: "shared.cue", Data: []byte(gen.Shared())},
		{Name: "templates.cue", Data: []byte(`package recpol

#Loud: {enabled: true, format: "wav"}
accounts: [=~"^acct-0000[0-4]$"]: call_recording: endpoint: inbound: offnet: #Loud
accounts: [_]: users: [_]: call_recording: outbound: any: method: "post"
`)},
	}
	for i := 0; i < n; i++ {
		id := gen.AccountID(i)
		src := gen.Account(r, id, 1+r.IntN(4), 1+r.IntN(6))
		switch i % 4 {
		case 1: // split over two files: the callflows and devices move out
			extra := fmt.Sprintf("package recpol\n\naccounts: %q: devices: extra: {owner: \"u000\", call_recording: any: any: enabled: true}\n", id)
			files = append(files, compiler.File{Name: id + "-b.cue", Data: []byte(extra)})
		case 2: // two accounts in one file
			if i+1 < n {
				next := gen.AccountID(i + 1)
				src += strings.TrimPrefix(gen.Account(r, next, 2, 3), "package recpol\n")
				i++
			}
		}
		files = append(files, compiler.File{Name: id + ".cue", Data: []byte(src)})
	}
	if crossRef {
		files = append(files, compiler.File{Name: "zz-ref.cue", Data: []byte(fmt.Sprintf(
			"package recpol\n\naccounts: copy: users: mirror: call_recording: accounts[%q].users.u000.call_recording\n",
			gen.AccountID(0)))})
	}
	return files
}

// TestPartitionedEqualsWhole is the differential test: evaluating account
// groups separately, in parallel and through the cache gives exactly the
// table of one whole-directory evaluation.
func TestPartitionedEqualsWhole(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		for _, crossRef := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/crossref=%v", seed, crossRef), func(t *testing.T) {
				files := tree(t, seed, 9, crossRef)
				want := compiler.Options{Whole: true}.CompileFiles(files)
				if want.Table == nil {
					t.Fatalf("whole: %v", want.Diagnostics)
				}
				wantJSON, _ := want.Table.MarshalJSON()
				cache := t.TempDir()
				for _, o := range []compiler.Options{
					{Parallel: 1},
					{Parallel: 3},
					{CacheDir: cache}, // cold cache
					{CacheDir: cache}, // warm cache
				} {
					got := o.CompileFiles(files)
					if got.Table == nil {
						t.Fatalf("%+v: %v", o, got.Diagnostics)
					}
					gotJSON, _ := got.Table.MarshalJSON()
					if !bytes.Equal(wantJSON, gotJSON) {
						t.Fatalf("%+v: the table differs from the whole evaluation", o)
					}
					if diff := cmp.Diff(want.Diagnostics, got.Diagnostics); diff != "" {
						t.Errorf("%+v: diagnostics (-whole +partitioned):\n%s", o, diff)
					}
				}
			})
		}
	}
}

// TestPartitionedErrorsEqualWhole checks that an invalid policy gets the
// same diagnostics either way: an error in one account, in two accounts,
// and in the shared part.
func TestPartitionedErrorsEqualWhole(t *testing.T) {
	base := tree(t, 9, 6, false)
	for _, tc := range []struct {
		name  string
		extra map[string]string
	}{
		{"one account", map[string]string{"acct-00000-bad.cue": `package recpol
accounts: "acct-00000": devices: bad: {owner: "nobody", call_recording: any: any: time_limit: 20}
`}},
		{"two accounts", map[string]string{
			"acct-00000-bad.cue": "package recpol\naccounts: \"acct-00000\": devices: bad: owner: \"nobody\"\n",
			"acct-00003-bad.cue": "package recpol\naccounts: \"acct-00003\": devices: bad: colour: \"red\"\n",
		}},
		{"shared part", map[string]string{"defaults-bad.cue": "package recpol\ndefaults: time_limit: 1\n"}},
		{"warning", map[string]string{"defaults-warn.cue": "package recpol\ndefaults: enabled: true\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := append([]compiler.File(nil), base...)
			for name, src := range tc.extra {
				files = append(files, compiler.File{Name: name, Data: []byte(src)})
			}
			want := compiler.Options{Whole: true}.CompileFiles(files)
			got := compiler.Options{}.CompileFiles(files)
			if diff := cmp.Diff(want.Diagnostics, got.Diagnostics); diff != "" {
				t.Errorf("diagnostics (-whole +partitioned):\n%s", diff)
			}
			if len(want.Diagnostics) == 0 {
				t.Errorf("the case reports nothing")
			}
		})
	}
}

// TestCacheIgnoresBadEntries checks that a corrupt, truncated or foreign
// cache entry is never trusted.
func TestCacheIgnoresBadEntries(t *testing.T) {
	files := tree(t, 5, 4, false)
	want := compiler.Options{Whole: true}.CompileFiles(files)
	wantJSON, _ := want.Table.MarshalJSON()
	cache := t.TempDir()
	if res := (compiler.Options{CacheDir: cache}).CompileFiles(files); res.Table == nil {
		t.Fatal(res.Diagnostics)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	if len(entries) < 2 {
		t.Fatalf("%d cache entries, want one per group", len(entries))
	}
	// Truncate one, fill one with another entry's content, and write a
	// valid-looking entry that claims a different policy.
	first, _ := os.ReadFile(entries[0])
	os.WriteFile(entries[0], first[:len(first)/2], 0o600)
	os.WriteFile(entries[1], first, 0o600)
	if len(entries) > 2 {
		os.WriteFile(entries[2], bytes.Replace(first, []byte(`"enabled":true`), []byte(`"enabled":false`), -1), 0o600)
	}
	got := compiler.Options{CacheDir: cache}.CompileFiles(files)
	if got.Table == nil {
		t.Fatal(got.Diagnostics)
	}
	gotJSON, _ := got.Table.MarshalJSON()
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Errorf("a damaged cache changed the table")
	}
}

// TestCompilerReuse: a Compiler that compiles again after one account file
// changed re-evaluates that group only (the other accounts are the very
// same objects) and still gives the table of a whole evaluation; a change
// to the shared part re-evaluates every group.
func TestCompilerReuse(t *testing.T) {
	files := tree(t, 11, 8, false)
	cm := compiler.NewCompiler(compiler.Options{})
	first := cm.CompileFiles(files)
	if first.Table == nil {
		t.Fatal(first.Diagnostics)
	}
	changed := append([]compiler.File(nil), files...)
	var target string
	for i, f := range changed {
		if f.Name == "acct-00004.cue" {
			changed[i].Data = append(append([]byte(nil), f.Data...), []byte("\naccounts: \"acct-00004\": devices: added: call_recording: any: any: enabled: true\n")...)
			target = "acct-00004"
		}
	}
	if target == "" {
		t.Fatal("no acct-00004.cue in the tree")
	}
	second := cm.CompileFiles(changed)
	want := compiler.Options{Whole: true}.CompileFiles(changed)
	if second.Table == nil || want.Table == nil {
		t.Fatalf("%v %v", second.Diagnostics, want.Diagnostics)
	}
	a, _ := second.Table.MarshalJSON()
	b, _ := want.Table.MarshalJSON()
	if !bytes.Equal(a, b) {
		t.Fatal("the recompiled table differs from a whole evaluation")
	}
	for _, id := range second.Table.AccountIDs() {
		same := second.Table.Accounts[id] == first.Table.Accounts[id]
		if id == target && same {
			t.Errorf("account %s changed but was reused", id)
		}
		if id != target && !same {
			t.Errorf("account %s did not change but was evaluated again", id)
		}
	}
	// An edit of the shared part re-evaluates everything.
	for i, f := range changed {
		if f.Name == "shared.cue" {
			changed[i].Data = []byte(strings.Replace(string(f.Data), `format:             "mp3"`, `format:             "wav"`, 1))
		}
	}
	third := cm.CompileFiles(changed)
	if third.Table == nil {
		t.Fatal(third.Diagnostics)
	}
	for _, id := range third.Table.AccountIDs() {
		if third.Table.Accounts[id] == second.Table.Accounts[id] {
			t.Errorf("account %s was reused after the shared part changed", id)
		}
	}
	if third.Table.Version == second.Table.Version {
		t.Errorf("the version did not change with the defaults")
	}
}
