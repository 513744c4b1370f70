package compiler

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"cuelang.org/go/cue/parser"
	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/gen"
)

// rawBoth returns the raw policy of a group's sources both ways: built
// from the checked plain value (rawPolicyOf) and through its JSON
// (plainPolicyJSON). checked is false when the value did not reach the
// policy (not plain data, a template in doubt, the schema rejects it).
func rawBoth(t *testing.T, srcs ...string) (direct, viaJSON rawPolicy, okDirect, okJSON, checked bool) {
	t.Helper()
	root := &pnode{kind: pStruct, fields: map[string]*pnode{}}
	for _, src := range srcs {
		f, err := parser.ParseFile("f.cue", src, parser.ParseComments)
		if err != nil {
			return
		}
		v, ok := plainFile(f)
		if !ok || !mergePlain(root, v) {
			return
		}
	}
	if !applyTemplates(root, plainSchema()) || !plainSchema().check(root) {
		return
	}
	direct, okDirect = rawPolicyOf(root)
	viaJSON, okJSON = plainPolicyJSON(root)
	return direct, viaJSON, okDirect, okJSON, true
}

// TestRawPolicyOfMatchesJSON builds the raw policy of checked plain values
// both ways: directly and through JSON, the same policy, normalized alike
// (empty maps unset, empty lists empty, missing actions empty).
func TestRawPolicyOfMatchesJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		srcs []string
	}{
		{"empty", []string{`package recpol`}},
		{"defaults", []string{`defaults: {enabled: true, format: "mp3", time_limit: 60}`}},
		{"empty maps", []string{`accounts: a: {users: {}, devices: {}, callflows: {}, metaflows: {numbers: {}, patterns: {}}}`}},
		{"empty accounts", []string{`accounts: {}`}},
		{"empty structs", []string{`accounts: a: {call_recording: {account: {}, endpoint: {any: {}, inbound: {onnet: {}}}}}`}},
		{"callflow", []string{`accounts: a: callflows: c: {numbers: [], patterns: ["^1$"], actions: []}`}},
		{"actions", []string{`accounts: a: callflows: c: actions: [
			{module: "record_call", data: {action: "start", label: "l", media_name: "m", should_follow_transfer: false,
				origin: "o", dtmf_leg: "both", format: "wav", time_limit: 30}},
			{module: "record_caller", data: {url: "http://x/y", method: "put"}},
			{module: "record_call"},
		]`}},
		{"metaflows", []string{`accounts: a: {
			metaflows: {binding_digit: "*", digit_timeout: 2000, listen_on: "peer",
				numbers: "1": {module: "record_call", data: {action: "toggle", scope: "call"}},
				patterns: "^2(\\d+)$": {module: "record_call", data: {}}}
			users: u: metaflows: {listen_on: "self"}
			devices: d: {owner: "u", metaflows: numbers: "3": {module: "record_call"}}
		}`}},
		{"two files", []string{`accounts: a: users: u: call_recording: any: any: enabled: true`,
			`accounts: a: {users: u: call_recording: inbound: offnet: format: "mp3", devices: d: owner: "u"}`}},
		{"template", []string{`accounts: [_]: call_recording: account: any: any: enabled: false`, `accounts: {a: {}, b: {}}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct, viaJSON, okDirect, okJSON, checked := rawBoth(t, tc.srcs...)
			if !checked {
				t.Fatal("the value does not reach the raw policy")
			}
			if !okDirect || !okJSON {
				t.Fatalf("ok: direct %v, JSON %v; want both", okDirect, okJSON)
			}
			if diff := cmp.Diff(viaJSON, direct, rawCmp); diff != "" {
				t.Errorf("raw policy differs (-JSON +direct):\n%s", diff)
			}
		})
	}
}

// TestRawPolicyOfGenerated compares both ways on the files of a generated
// tree and on the fuzz target's generated files.
func TestRawPolicyOfGenerated(t *testing.T) {
	dir := t.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 4, Users: 3, Devices: 4, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.cue"))
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, string(b))
	}
	cases := [][]string{srcs}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		choices := make([]byte, 8+rng.IntN(200))
		for j := range choices {
			choices[j] = byte(rng.Uint32())
		}
		cases = append(cases, []string{string(plainGen(choices))})
	}
	reached := 0
	for _, srcs := range cases {
		direct, viaJSON, okDirect, okJSON, checked := rawBoth(t, srcs...)
		if !checked {
			continue
		}
		reached++
		if okDirect != okJSON {
			t.Fatalf("%q: ok: direct %v, JSON %v", srcs, okDirect, okJSON)
		}
		if diff := cmp.Diff(viaJSON, direct, rawCmp); diff != "" {
			t.Fatalf("%q: raw policy differs (-JSON +direct):\n%s", srcs, diff)
		}
	}
	t.Logf("%d of %d cases reach the raw policy", reached, len(cases))
	if reached < 100 {
		t.Errorf("only %d of %d cases reach the raw policy", reached, len(cases))
	}
}
