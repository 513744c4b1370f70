package cue_test

import (
	"os"
	"path/filepath"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"

	recpolcue "github.com/recpol/recpol/cue"
)

// cueVet loads a directory as the CUE CLI's `cue vet` does (cue/load, one
// package) and validates it.
func cueVet(t *testing.T, dir string) error {
	t.Helper()
	insts := load.Instances([]string{"."}, &load.Config{Dir: dir})
	if err := insts[0].Err; err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	v := cuecontext.New().BuildInstance(insts[0])
	if err := v.Err(); err != nil {
		return err
	}
	return v.Validate(cue.Concrete(true))
}

// TestSchemaBesidePolicy checks the promise of `recpol schema`: placed
// beside policy files, it makes plain CUE tooling enforce the structure.
func TestSchemaBesidePolicy(t *testing.T) {
	tests := []struct {
		name    string
		policy  string
		wantErr bool
	}{
		{"valid", `accounts: acme: {users: bob: call_recording: inbound: offnet: enabled: true, devices: d: owner: "bob"}`, false},
		{"template", `accounts: [_]: call_recording: endpoint: any: any: format: "wav"
accounts: acme: {}`, false},
		{"unknown device field", `accounts: acme: devices: d: colour: "red"`, true},
		{"unknown top-level field", `tenants: acme: {}`, true},
		{"bad id", `accounts: "acme corp": {}`, true},
		{"time limit out of range", `accounts: acme: call_recording: account: any: any: time_limit: 3`, true},
		{"bad sample rate", `defaults: record_sample_rate: 22050`, true},
		{"stereo in every scope", `defaults: stereo: true
accounts: acme: {call_recording: account: any: any: stereo: false, users: u: call_recording: inbound: any: stereo: true}`, false},
		{"stereo not a bool", `accounts: acme: call_recording: endpoint: any: any: stereo: "yes"`, true},
		{"announce and announce_to", `accounts: acme: devices: d: call_recording: any: any: {announce: "tone", announce_to: "aleg"}`, false},
		{"announce_to unknown", `defaults: announce_to: "caller"`, true},
		{"announce in record_call data", `accounts: acme: callflows: c: {numbers: ["1"], actions: [{module: "record_call", data: {announce: "/srv/consent.wav", stereo: true, announce_to: "bleg"}}]}`, false},
		{"announce in metaflow data", `accounts: acme: metaflows: numbers: "71": {module: "record_call", data: {action: "start", announce: "tone"}}`, false},
		{"announce not in record_caller data", `accounts: acme: callflows: c: {numbers: ["1"], actions: [{module: "record_caller", data: announce: "tone"}]}`, true},
		{"bad metaflow action", `accounts: acme: metaflows: numbers: "7": {module: "record_call", data: action: "record"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, recpolcue.SchemaFileName), recpolcue.Schema(), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "policy.cue"), []byte("package recpol\n\n"+tc.policy+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := cueVet(t, dir)
			if (err != nil) != tc.wantErr {
				t.Errorf("cue vet error = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// TestExampleVetsWithSchema checks the bundled example with the schema
// beside it.
func TestExampleVetsWithSchema(t *testing.T) {
	src := "../testdata/policies/example"
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(src, "*.cue"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, recpolcue.SchemaFileName), recpolcue.Schema(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cueVet(t, dir); err != nil {
		t.Errorf("cue vet of the example with the schema beside it: %v", err)
	}
}
