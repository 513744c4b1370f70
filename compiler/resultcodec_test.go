package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestReloadReusesAccounts: after one account file changes, the
// incremental compiler encodes only that account again, and a Decoder
// decodes only that one: the others are the previous table's, and the
// table is the one a fresh encoding and decoding gives.
func TestReloadReusesAccounts(t *testing.T) {
	dir := t.TempDir()
	write := func(acct, enabled string) {
		src := "package recpol\naccounts: " + acct + ": {call_recording: account: any: any: enabled: " + enabled + "}\n"
		if err := os.WriteFile(filepath.Join(dir, acct+".cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"alpha", "bravo", "charlie"} {
		write(a, "true")
	}
	cm := NewCompiler(Options{CacheDir: t.TempDir()})
	var enc Encoder
	var dec Decoder
	var answers [][]byte
	compile := func() (*Result, *table.Table) {
		t.Helper()
		res, err := cm.Compile(dir)
		if err != nil || res.Table == nil {
			t.Fatalf("compile: %v %v", err, res.Diagnostics)
		}
		b, err := enc.Encode(res)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, b)
		got, err := dec.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return res, got.Table
	}
	r1, t1 := compile()
	chunk1 := cm.chunks[r1.Table.Accounts["alpha"]]
	write("bravo", "false")
	r2, t2 := compile()

	// The second answer carries one account's chunk, the others' IDs.
	full, err := MarshalResult(r2)
	if err != nil {
		t.Fatal(err)
	}
	kept := len(cm.chunks[r2.Table.Accounts["alpha"]]) + len(cm.chunks[r2.Table.Accounts["charlie"]])
	if len(answers[1]) > len(full)-kept+32 {
		t.Errorf("the answer after one account changed is %d bytes, the whole table %d, the unchanged accounts' chunks %d", len(answers[1]), len(full), kept)
	}
	// A Decoder that did not decode the first answer cannot decode the
	// second, and says why; the whole table it can.
	if _, err := new(Decoder).Decode(answers[1]); err == nil || !strings.Contains(err.Error(), "was not sent before") {
		t.Errorf("a Decoder out of step: %v", err)
	}
	if got, err := UnmarshalResult(full); err != nil || got.Table.Version != r2.Table.Version {
		t.Errorf("the whole table: %v", err)
	}

	if r2.Table.Accounts["alpha"] != r1.Table.Accounts["alpha"] {
		t.Fatal("the incremental compiler did not keep the unchanged account (the test's premise)")
	}
	if chunk2 := cm.chunks[r2.Table.Accounts["alpha"]]; len(chunk1) == 0 || &chunk2[0] != &chunk1[0] {
		t.Error("the unchanged account was encoded again")
	}
	if fresh := encodeAccounts(r2.Table); r2.chunks == nil || !cmp.Equal(fresh, r2.chunks.join()) {
		t.Error("the encoding from cached chunks differs from a fresh one")
	}
	reused := map[string]bool{}
	for id, a := range t2.Accounts {
		reused[id] = a == t1.Accounts[id]
	}
	if diff := cmp.Diff(map[string]bool{"alpha": true, "bravo": false, "charlie": true}, reused); diff != "" {
		t.Errorf("accounts shared with the previous decoded table (-want +got):\n%s", diff)
	}
	var accounts []*table.Account
	for _, id := range []string{"alpha", "bravo", "charlie"} {
		accounts = append(accounts, t2.Accounts[id])
	}
	again, err := table.New(accounts, DefaultsDigest())
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != r2.Table.Version || t2.Version != r2.Table.Version {
		t.Errorf("decoded table hashes to %s (says %s), compiled %s", again.Version, t2.Version, r2.Table.Version)
	}
	if c := t2.Accounts["bravo"].Cells; cmp.Equal(c, t1.Accounts["bravo"].Cells) {
		t.Error("the changed account decoded as it was")
	}
}

// TestUnchanged: the manifest's version and diagnostics are reported for
// files that are those it was compiled from, and nothing for any doubt.
func TestUnchanged(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "p.cue"), []byte("package recpol\n"+src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type got struct {
		Version string
		Diags   string
		OK      bool
	}
	check := func() got {
		v, ds, ok := Unchanged(cache, dir)
		return got{v, ds.Error(), ok}
	}
	if g := check(); g.OK {
		t.Fatalf("before any compile: %+v", g)
	}
	write("defaults: enabled: true\naccounts: acme: call_recording: account: any: any: enabled: true\n")
	res, err := Options{CacheDir: cache}.Compile(dir)
	if err != nil || res.Table == nil || len(res.Diagnostics) == 0 {
		t.Fatalf("compile: %v %v (the test wants a valid policy with a warning)", err, res.Diagnostics)
	}
	if diff := cmp.Diff(got{res.Table.Version, res.Diagnostics.Error(), true}, check()); diff != "" {
		t.Errorf("after the compile (-want +got):\n%s", diff)
	}
	if g := check(); !g.OK {
		t.Errorf("a second check: %+v", g)
	}
	write("accounts: acme: call_recording: account: any: any: enabled: false\n")
	if g := check(); g.OK {
		t.Errorf("after the file changed: %+v", g)
	}
	if _, _, ok := Unchanged("", dir); ok {
		t.Error("without a cache")
	}
}

// TestReloadReadsChangedFiles: a reload reads again only the files whose
// identity changed since the last compile read them, even one rewritten
// with the same size and modification time, and compiles what a fresh
// compile of the directory gives.
func TestReloadReadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	path := func(acct string) string { return filepath.Join(dir, acct+".cue") }
	write := func(acct, enabled string) {
		src := "package recpol\naccounts: " + acct + ": {call_recording: account: any: any: enabled: " + enabled + "}\n"
		if err := os.WriteFile(path(acct), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"alpha", "bravo", "charlie"} {
		write(a, "true ")
	}
	cm := NewCompiler(Options{CacheDir: t.TempDir()})
	// The files' times are an hour old to the compiler: not in doubt.
	cm.now = func() time.Time { return time.Now().Add(time.Hour) }
	compile := func() *Result {
		t.Helper()
		res, err := cm.Compile(dir)
		if err != nil || res.Table == nil {
			t.Fatalf("compile: %v %v", err, res.Diagnostics)
		}
		fresh, err := Options{}.Compile(dir)
		if err != nil || fresh.Table == nil || fresh.Table.Version != res.Table.Version {
			t.Fatalf("the reload's table differs from a fresh compile's: %v", err)
		}
		return res
	}
	reads := func() map[string]int64 {
		m := map[string]int64{}
		for p, k := range cm.read {
			m[filepath.Base(p)] = k.readNS
		}
		return m
	}
	compile()
	before := reads()

	write("bravo", "false")
	// charlie: the same size and modification time, another content.
	info, err := os.Stat(path("charlie"))
	if err != nil {
		t.Fatal(err)
	}
	write("charlie", "false")
	if err := os.Chtimes(path("charlie"), info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	compile()
	after := reads()
	reread := map[string]bool{}
	for name, ns := range after {
		reread[name] = ns != before[name]
	}
	if diff := cmp.Diff(map[string]bool{"alpha.cue": false, "bravo.cue": true, "charlie.cue": true}, reread); diff != "" {
		t.Errorf("files read again (-want +got):\n%s", diff)
	}
}

// TestDeferManifest: a deferred manifest is written by WriteManifest or by
// the next Compile, not by its own.
func TestDeferManifest(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	write := func(enabled string) {
		t.Helper()
		src := "package recpol\naccounts: acme: call_recording: account: any: any: enabled: " + enabled + "\n"
		if err := os.WriteFile(filepath.Join(dir, "p.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lastGood := func() string {
		res, _, err := LastGood(cache, dir)
		if err != nil {
			return "none"
		}
		return res.Table.Version
	}
	cm := NewCompiler(Options{CacheDir: cache})
	cm.DeferManifest()
	compile := func() string {
		t.Helper()
		res, err := cm.Compile(dir)
		if err != nil || res.Table == nil {
			t.Fatalf("compile: %v", err)
		}
		return res.Table.Version
	}
	write("true")
	v1 := compile()
	var got []string
	got = append(got, lastGood())
	cm.WriteManifest()
	got = append(got, lastGood())
	write("false")
	v2 := compile()
	got = append(got, lastGood())
	compile()
	got = append(got, lastGood())
	if diff := cmp.Diff([]string{"none", v1, v1, v2}, got); diff != "" {
		t.Errorf("the manifest's table after compile, WriteManifest, compile, compile (-want +got):\n%s", diff)
	}
}

// TestPrime: after a warm start, Prime fills what the next reload reuses
// (the files read, the encoded accounts); otherwise it does nothing.
func TestPrime(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	for _, a := range []string{"alpha", "bravo"} {
		src := "package recpol\naccounts: " + a + ": call_recording: account: any: any: enabled: true\n"
		if err := os.WriteFile(filepath.Join(dir, a+".cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewCompiler(Options{CacheDir: cache}).Compile(dir); err != nil {
		t.Fatal(err)
	}
	cm := NewCompiler(Options{CacheDir: cache})
	if _, err := cm.Compile(dir); err != nil {
		t.Fatal(err)
	}
	type state struct{ Read, Chunks int }
	var got []state
	got = append(got, state{len(cm.read), len(cm.chunks)})
	cm.Prime(dir)
	got = append(got, state{len(cm.read), len(cm.chunks)})
	cm.read = nil
	cm.Prime(dir) // not after a warm start: nothing
	got = append(got, state{len(cm.read), len(cm.chunks)})
	if diff := cmp.Diff([]state{{0, 0}, {2, 2}, {0, 2}}, got); diff != "" {
		t.Errorf("files read and accounts encoded after warm start, Prime, Prime again (-want +got):\n%s", diff)
	}
}
