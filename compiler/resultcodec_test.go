package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/recpol/recpol/table"
)

func TestResultCodec(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		table     bool
	}{
		{"valid", "package recpol\naccounts: acme: {call_recording: account: any: any: enabled: true}\n", true},
		{"invalid", "package recpol\naccounts: acme: {call_recording: account: any: any: enabled: 3}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Options{}.CompileFiles([]File{{Name: "p.cue", Data: []byte(tc.src)}})
			b, err := MarshalResult(res)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalResult(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res.Diagnostics, got.Diagnostics); diff != "" {
				t.Errorf("diagnostics (-sent +received):\n%s", diff)
			}
			if (got.Table != nil) != tc.table {
				t.Fatalf("table received: %v, want %v", got.Table != nil, tc.table)
			}
			if tc.table && got.Table.Version != res.Table.Version {
				t.Errorf("version %s, sent %s", got.Table.Version, res.Table.Version)
			}
			for n := range b {
				if _, err := UnmarshalResult(b[:n]); err == nil {
					t.Fatalf("a result cut at %d of %d bytes decoded", n, len(b))
				}
			}
		})
	}
}

func TestLastGood(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	o := Options{CacheDir: cache}
	if _, _, err := LastGood(cache, dir); !errors.Is(err, ErrNoLastGood) {
		t.Fatalf("before any compile: %v, want ErrNoLastGood", err)
	}
	write := func(src string) {
		if err := os.WriteFile(filepath.Join(dir, "p.cue"), []byte("package recpol\n"+src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("accounts: acme: {call_recording: account: any: any: enabled: true}\n")
	good, err := o.Compile(dir)
	if err != nil || good.Table == nil {
		t.Fatalf("compile: %v %v", err, good.Diagnostics)
	}
	write("accounts: acme: {call_recording: account: any: any: enabled: 3}\n")
	if bad, err := o.Compile(dir); err != nil || bad.Table != nil {
		t.Fatalf("the invalid policy compiled: %v", err)
	}
	last, _, err := LastGood(cache, dir)
	if err != nil {
		t.Fatal(err)
	}
	if last.Table.Version != good.Table.Version {
		t.Errorf("last good version %s, want %s", last.Table.Version, good.Table.Version)
	}
}

// TestTableOfVersion: the accounts decoded from the compact form hash to
// the version they were encoded with, so tableOf may trust it.
func TestTableOfVersion(t *testing.T) {
	for _, dir := range []string{"../testdata/policies/example", "../testdata/policies/consent", "../testdata/policies/shapes"} {
		res, err := Options{}.Compile(dir)
		if err != nil || res.Table == nil {
			t.Fatalf("%s: %v %v", dir, err, res.Diagnostics)
		}
		accounts, err := decodeAccounts(encodeAccounts(res.Table))
		if err != nil {
			t.Fatal(err)
		}
		again, err := table.New(accounts, DefaultsDigest())
		if err != nil {
			t.Fatal(err)
		}
		if again.Version != res.Table.Version {
			t.Errorf("%s: decoded accounts hash to %s, encoded from %s", dir, again.Version, res.Table.Version)
		}
	}
}
