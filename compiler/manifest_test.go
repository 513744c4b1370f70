package compiler

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/recpol/recpol/gen"
	"github.com/recpol/recpol/table"
)

// codecDirs are policies whose tables the codec must carry unchanged.
var codecDirs = []string{"example", "actions", "agreement", "kazoo", "shapes"}

// TestTableCodec round-trips compiled tables through the manifest's
// compact form: the same accounts, the same canonical JSON, the same
// version.
func TestTableCodec(t *testing.T) {
	for _, dir := range codecPolicies(t, gen.Options{Accounts: 3, Users: 3, Devices: 4, Seed: 7}) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, err := Options{}.Compile(dir)
			if err != nil || res.Table == nil {
				t.Fatalf("compile: %v %v", err, res.Diagnostics)
			}
			accounts, err := decodeAccounts(encodeAccounts(res.Table))
			if err != nil {
				t.Fatal(err)
			}
			back, err := table.New(accounts, DefaultsDigest())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res.Table, back, cmpopts.IgnoreUnexported(table.Table{}, table.Account{},
				table.Callflow{}, table.MetaflowBinding{})); diff != "" {
				t.Errorf("table changed (-want +got):\n%s", diff)
			}
			want, _ := res.Table.MarshalJSON()
			got, _ := back.MarshalJSON()
			if !bytes.Equal(want, got) || back.Version != res.Table.Version {
				t.Errorf("the JSON or version changed")
			}
		})
	}
}

// TestAppendAccount encodes every account of compiled tables with one
// encoder after what a buffer already holds: each time the prefix and
// then what encodeAccount gives.
func TestAppendAccount(t *testing.T) {
	for _, dir := range codecPolicies(t, gen.Options{Accounts: 5, Users: 3, Devices: 4, Seed: 3}) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, err := Options{}.Compile(dir)
			if err != nil || res.Table == nil {
				t.Fatalf("compile: %v %v", err, res.Diagnostics)
			}
			e := newTabEnc()
			for _, prefix := range [][]byte{nil, []byte("prefix")} {
				for _, id := range res.Table.AccountIDs() {
					a := res.Table.Accounts[id]
					want := append(bytes.Clone(prefix), encodeAccount(a)...)
					if diff := cmp.Diff(want, e.appendAccount(bytes.Clone(prefix), a)); diff != "" {
						t.Errorf("account %s (-encodeAccount +appendAccount):\n%s", id, diff)
					}
				}
			}
		})
	}
}

// TestTableCodecFields fails when a table type gains or loses an exported
// field: the codec (tablecodec.go) must then be extended.
func TestTableCodecFields(t *testing.T) {
	exported := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := 0; i < rt.NumField(); i++ {
			if f := rt.Field(i); f.IsExported() {
				out = append(out, f.Name)
			}
		}
		return out
	}
	for _, tc := range []struct {
		v    any
		want []string
	}{
		{table.Table{}, []string{"Version", "Accounts"}},
		{table.Account{}, []string{"ID", "Cells", "Users", "Devices", "Callflows"}},
		{table.Endpoint{}, []string{"Kind", "ID", "Owner", "Cells", "Metaflows"}},
		{table.Cell{}, []string{"Record", "Settings", "Provenance"}},
		{table.Settings{}, []string{"Format", "TimeLimit", "RecordMinSec", "RecordSampleRate", "RecordOnAnswer",
			"RecordOnBridge", "Method", "URL", "Stereo", "Announce", "AnnounceTo"}},
		{table.Provenance{}, []string{"Enabled", "Format", "TimeLimit", "RecordMinSec", "RecordSampleRate",
			"RecordOnAnswer", "RecordOnBridge", "Method", "URL", "Stereo", "Announce", "AnnounceTo"}},
		{table.Callflow{}, []string{"ID", "Numbers", "Patterns", "Actions"}},
		{table.Action{}, []string{"Module", "Action", "Label", "MediaName", "FollowTransfer", "Origin", "DTMFLeg",
			"Scope", "Settings", "Provenance"}},
		{table.MetaflowBinding{}, []string{"Code", "Action", "From"}},
		{table.Metaflows{}, []string{"BindingDigit", "DigitTimeout", "ListenOn", "Numbers", "Patterns"}},
	} {
		if diff := cmp.Diff(tc.want, exported(tc.v)); diff != "" {
			t.Errorf("%T fields changed; extend tablecodec.go (-codec +type):\n%s", tc.v, diff)
		}
	}
}

// TestTableCodecCorrupt decodes every truncation and some bit flips of an
// encoding: an error or a table, never a panic.
func TestTableCodecCorrupt(t *testing.T) {
	res, err := Options{}.Compile(filepath.Join("..", "testdata", "policies", "example"))
	if err != nil || res.Table == nil {
		t.Fatal(err)
	}
	enc := encodeAccounts(res.Table)
	for i := 0; i < len(enc); i += 1 + len(enc)/500 {
		if _, err := decodeAccounts(enc[:i]); err == nil {
			t.Fatalf("truncated at %d of %d: no error", i, len(enc))
		}
		b := bytes.Clone(enc)
		b[i] ^= 0xff
		if accts, err := decodeAccounts(b); err == nil {
			table.New(accts, DefaultsDigest()) //nolint:errcheck // only must not panic
		}
	}
}

// TestManifest checks when a compile takes its table from the manifest:
// only when every file is the one compiled, whatever its times say.
func TestManifest(t *testing.T) {
	src, err := ReadDir(filepath.Join("..", "testdata", "policies", "example"))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	setup := func(t *testing.T) (dir, cache string) {
		dir, cache = t.TempDir(), t.TempDir()
		for _, f := range src {
			p := filepath.Join(dir, filepath.Base(f.Name))
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		return dir, cache
	}
	sales := func(dir string) string { return filepath.Join(dir, "sales.cue") }
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir, cache string)
		hit    bool
	}{
		{"unchanged", func(*testing.T, string, string) {}, true},
		{"touched", func(t *testing.T, dir, _ string) {
			now := time.Now()
			must(t, os.Chtimes(sales(dir), now, now))
		}, true},
		{"rewritten with the same bytes", func(t *testing.T, dir, _ string) {
			b, _ := os.ReadFile(sales(dir))
			must(t, os.WriteFile(sales(dir), b, 0o644))
		}, true},
		{"same size and time, other bytes", func(t *testing.T, dir, _ string) {
			b, _ := os.ReadFile(sales(dir))
			b = bytes.Replace(b, []byte("anna"), []byte("anne"), 1)
			must(t, os.WriteFile(sales(dir), b, 0o644))
			must(t, os.Chtimes(sales(dir), old, old))
		}, false},
		{"file added", func(t *testing.T, dir, _ string) {
			must(t, os.WriteFile(filepath.Join(dir, "more.cue"), []byte("package recpol\n"), 0o644))
		}, false},
		{"file removed", func(t *testing.T, dir, _ string) {
			must(t, os.Remove(filepath.Join(dir, "wazo.cue")))
		}, false},
		{"manifest damaged", func(t *testing.T, dir, cache string) {
			p := manifestPath(cache, dir)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			must(t, os.WriteFile(p, b, 0o600))
		}, false},
		{"manifest truncated", func(t *testing.T, dir, cache string) {
			p := manifestPath(cache, dir)
			b, _ := os.ReadFile(p)
			must(t, os.WriteFile(p, b[:len(b)/2], 0o600))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, cache := setup(t)
			first, err := Options{CacheDir: cache}.Compile(dir)
			if err != nil || first.Table == nil {
				t.Fatalf("compile: %v %v", err, first.Diagnostics)
			}
			tc.change(t, dir, cache)
			entries, err := listDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, hit := warmCompile(cache, dir, entries)
			if hit != tc.hit {
				t.Fatalf("hit = %v, want %v", hit, tc.hit)
			}
			want, err := Options{}.Compile(dir)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Options{CacheDir: cache}.Compile(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range []*Result{got, again} {
				if res == nil {
					continue
				}
				if diff := cmp.Diff(want.Diagnostics, res.Diagnostics); diff != "" {
					t.Errorf("diagnostics (-want +got):\n%s", diff)
				}
				if (want.Table == nil) != (res.Table == nil) || want.Table != nil && want.Table.Version != res.Table.Version {
					t.Errorf("table differs")
				}
			}
			if got != nil {
				// The positions of settings come from the files, read
				// when asked for.
				pos, ok := got.SettingPosition("sales", "account:sales call_recording.account.inbound.offnet.enabled")
				wpos, wok := want.SettingPosition("sales", "account:sales call_recording.account.inbound.offnet.enabled")
				if pos != wpos || ok != wok {
					t.Errorf("SettingPosition = %v %v, want %v %v", pos, ok, wpos, wok)
				}
			}
		})
	}
}

// TestManifestNotForErrors: a policy with errors leaves no manifest, and a
// manifest is written back once a file in doubt proved unchanged.
func TestManifestNotForErrors(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.cue"), []byte("package recpol\naccounts: a: users: u: call_recording: any: any: enabled: 1\n"), 0o644))
	res, err := Options{CacheDir: cache}.Compile(dir)
	if err != nil || res.Table != nil {
		t.Fatalf("want errors: %v", err)
	}
	if _, err := os.Stat(manifestPath(cache, dir)); !os.IsNotExist(err) {
		t.Errorf("a manifest for a policy with errors: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestManifestStatOnly: files changed well before the manifest was
// written, and before now, are trusted by their identity alone; a file in
// doubt, or whose identity changed, is hashed.
func TestManifestStatOnly(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.cue"), []byte("package recpol\naccounts: a: users: u: {}\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "b.cue"), []byte("package recpol\naccounts: b: users: u: {}\n"), 0o644))
	if res, err := (Options{CacheDir: cache}).Compile(dir); err != nil || res.Table == nil {
		t.Fatal(err)
	}
	entries, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	for _, tc := range []struct {
		name         string
		written, now int64
		older        bool // the manifest records an older mtime
		hashed       int
	}{
		{"written within the window", at(time.Second), at(time.Hour), false, 2},
		{"checked within the window", at(time.Minute), at(time.Second), false, 2},
		{"identity changed", at(time.Minute), at(time.Hour), true, 2},
		{"trusted", at(time.Minute), at(time.Hour), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := readManifest(manifestPath(cache, dir))
			if !ok {
				t.Fatal("no manifest")
			}
			m.WrittenNS = tc.written
			if tc.older {
				for i := range m.Files {
					m.Files[i].MtimeNS -= int64(time.Minute)
				}
			}
			if _, hashed, ok := checkFiles(m, entries, tc.now); !ok || hashed != tc.hashed {
				t.Errorf("hashed %d ok %v, want %d true", hashed, ok, tc.hashed)
			}
		})
	}
}

// TestManifestParts damages the manifest's header and its table apart.
// Any damage to the header makes the manifest a miss everywhere; damage
// to the table makes it a miss for what reads the table (a warm compile,
// LastGood), while Unchanged, which reads only the checked header, still
// reports the version and diagnostics that header records.
func TestManifestParts(t *testing.T) {
	src, err := ReadDir(filepath.Join("..", "testdata", "policies", "example"))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	type got struct {
		Unchanged, Warm, LastGood bool
	}
	for _, tc := range []struct {
		name   string
		damage func(b []byte, hl int) []byte
		want   got
	}{
		{"intact", func(b []byte, _ int) []byte { return b }, got{true, true, true}},
		{"magic", func(b []byte, _ int) []byte { b[0] ^= 1; return b }, got{}},
		{"salt", func(b []byte, _ int) []byte { b[len(manifestMagic)] ^= 1; return b }, got{}},
		{"header length", func(b []byte, _ int) []byte { b[manifestPrefix-1] ^= 1; return b }, got{}},
		{"header length huge", func(b []byte, _ int) []byte { b[manifestPrefix-4] = 0xff; return b }, got{}},
		{"header", func(b []byte, hl int) []byte { b[manifestPrefix+(hl-manifestPrefix)/2] ^= 1; return b }, got{}},
		{"header CRC", func(b []byte, hl int) []byte { b[hl-1] ^= 1; return b }, got{}},
		{"header truncated", func(b []byte, hl int) []byte { return b[:hl-2] }, got{}},
		{"table", func(b []byte, hl int) []byte { b[hl+(len(b)-hl)/2] ^= 1; return b }, got{Unchanged: true}},
		{"table truncated", func(b []byte, _ int) []byte { return b[:len(b)-1] }, got{Unchanged: true}},
		{"table extended", func(b []byte, _ int) []byte { return append(b, 0) }, got{Unchanged: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, cache := t.TempDir(), t.TempDir()
			for _, f := range src {
				p := filepath.Join(dir, filepath.Base(f.Name))
				must(t, os.WriteFile(p, f.Data, 0o644))
				must(t, os.Chtimes(p, old, old))
			}
			first, err := Options{CacheDir: cache}.Compile(dir)
			if err != nil || first.Table == nil {
				t.Fatalf("compile: %v %v", err, first.Diagnostics)
			}
			p := manifestPath(cache, dir)
			b, err := os.ReadFile(p)
			must(t, err)
			hl, ok := headerLen(b)
			if !ok {
				t.Fatal("no header")
			}
			must(t, os.WriteFile(p, tc.damage(b, hl), 0o600))

			var g got
			v, ds, ok := Unchanged(cache, dir)
			if ok {
				g.Unchanged = true
				if v != first.Table.Version {
					t.Errorf("Unchanged version %s, want %s", v, first.Table.Version)
				}
				if diff := cmp.Diff(first.Diagnostics, ds); diff != "" {
					t.Errorf("Unchanged diagnostics (-want +got):\n%s", diff)
				}
			}
			entries, err := listDir(dir)
			must(t, err)
			res, ok := warmCompile(cache, dir, entries)
			if ok {
				g.Warm = true
				if res.Table.Version != first.Table.Version {
					t.Errorf("warm version %s, want %s", res.Table.Version, first.Table.Version)
				}
			}
			if res, _, err := LastGood(cache, dir); err == nil {
				g.LastGood = true
				if res.Table.Version != first.Table.Version {
					t.Errorf("LastGood version %s, want %s", res.Table.Version, first.Table.Version)
				}
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// A compile after any damage gives the table, and a
			// manifest that holds again.
			again, err := Options{CacheDir: cache}.Compile(dir)
			if err != nil || again.Table == nil || again.Table.Version != first.Table.Version {
				t.Fatalf("compile after the damage: %v", err)
			}
			if _, ok := readManifest(p); !ok {
				t.Error("the compile after the damage left no sound manifest")
			}
		})
	}
}

// TestManifestHeaderDoubt: a check that had to hash a file writes the
// manifest back, table and all, even when it read only the header, so
// that the next check is a stat; but not while the file is so new that
// the next check would hash it all the same.
func TestManifestHeaderDoubt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		later     time.Duration // when the check runs, after the compile
		withTable bool
		rewritten bool
	}{
		{"header only, the file settled", time.Hour, false, true},
		{"with the table, the file settled", time.Hour, true, true},
		{"header only, the file still new", 0, false, false},
		{"with the table, the file still new", 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, cache := t.TempDir(), t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, "a.cue"), []byte("package recpol\naccounts: a: users: u: {}\n"), 0o644))
			res, err := Options{CacheDir: cache}.Compile(dir)
			if err != nil || res.Table == nil {
				t.Fatal(err)
			}
			before, ok := readManifest(manifestPath(cache, dir))
			if !ok {
				t.Fatal("no manifest")
			}
			entries, err := listDir(dir)
			must(t, err)
			m, ok := currentManifestAt(cache, dir, entries, tc.withTable, time.Now().Add(tc.later).UnixNano())
			if !ok || m.Version != res.Table.Version {
				t.Fatalf("not current: %v", ok)
			}
			after, ok := readManifest(manifestPath(cache, dir))
			if !ok {
				t.Fatal("the check left no sound manifest")
			}
			if rewritten := after.WrittenNS != before.WrittenNS; rewritten != tc.rewritten {
				t.Errorf("rewritten = %v, want %v", rewritten, tc.rewritten)
			}
			if diff := cmp.Diff(before.Accounts, after.Accounts); diff != "" || after.Version != before.Version {
				t.Errorf("the manifest's table changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestAccountChunkParts checks that the parts the manifest is written in
// are, end to end, the joined encoding.
func TestAccountChunkParts(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 300) // a two-byte length
	for _, tc := range []struct {
		name   string
		chunks [][]byte
	}{
		{"none", nil},
		{"one", [][]byte{{1, 2, 3}}},
		{"several", [][]byte{{1}, long, {}, {4, 5}}},
		{"many", bytes.Fields(bytes.Repeat([]byte("ab "), 200))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ac := accountChunks{chunks: tc.chunks}
			parts := ac.parts()
			if len(parts) != 2*len(tc.chunks)+1 {
				t.Errorf("%d parts for %d chunks", len(parts), len(tc.chunks))
			}
			if diff := cmp.Diff(ac.join(), bytes.Join(parts, nil)); diff != "" {
				t.Errorf("parts differ from the joined encoding (-join +parts):\n%s", diff)
			}
		})
	}
}

// TestManifestOnce checks that the manifest a one-time compile
// (Options.Compile) writes account by account is the one the incremental
// compiler writes from its encoded accounts: the same files, sums,
// diagnostics, version and table, which decodes to the compiled table.
func TestManifestOnce(t *testing.T) {
	gendir := t.TempDir()
	if err := gen.Write(gendir, gen.Options{Accounts: 5, Users: 3, Devices: 4, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{gendir, filepath.Join("..", "testdata", "policies", "example"),
		filepath.Join("..", "testdata", "policies", "kazoo")} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			onceCache, incCache := t.TempDir(), t.TempDir()
			once, err := Options{CacheDir: onceCache}.Compile(dir)
			if err != nil || once.Table == nil {
				t.Fatalf("compile: %v %v", err, once.Diagnostics)
			}
			inc, err := NewCompiler(Options{CacheDir: incCache}).Compile(dir)
			if err != nil || inc.Table == nil {
				t.Fatalf("compile: %v %v", err, inc.Diagnostics)
			}
			got, ok := readManifest(manifestPath(onceCache, dir))
			if !ok {
				t.Fatal("the one-time compile's manifest does not read back")
			}
			want, ok := readManifest(manifestPath(incCache, dir))
			if !ok {
				t.Fatal("the incremental compiler's manifest does not read back")
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(manifest{}, "WrittenNS")); diff != "" {
				t.Errorf("manifests differ (-incremental +once):\n%s", diff)
			}
			if !bytes.Equal(got.Accounts, encodeAccounts(once.Table)) {
				t.Errorf("the manifest's table is not the compiled table encoded")
			}
		})
	}
}

// TestTableEncoderReuse encodes a table's accounts with one encoder, reset
// between them (as encodeAccount's pool does), forwards, backwards and
// each twice: each account's chunk is the one a new encoder makes.
func TestTableEncoderReuse(t *testing.T) {
	for _, dir := range codecPolicies(t, gen.Options{Accounts: 4, Users: 3, Devices: 4, Seed: 11}) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, err := Options{}.Compile(dir)
			if err != nil || res.Table == nil {
				t.Fatalf("compile: %v %v", err, res.Diagnostics)
			}
			ids := sortedKeys(res.Table.Accounts)
			var order []string
			order = append(order, ids...)
			for i := len(ids) - 1; i >= 0; i-- {
				order = append(order, ids[i], ids[i])
			}
			reused := newTabEnc()
			for _, id := range order {
				a := res.Table.Accounts[id]
				want := newTabEnc().encodeAccount(a)
				if diff := cmp.Diff(want, reused.encodeAccount(a)); diff != "" {
					t.Errorf("%s: reused encoder (-new +reused):\n%s", id, diff)
				}
				if diff := cmp.Diff(want, encodeAccount(a)); diff != "" {
					t.Errorf("%s: pooled encoder (-new +pooled):\n%s", id, diff)
				}
			}
		})
	}
}

// codecPolicies returns the policies the codec tests compile: one
// generated with o, then the testdata policies of codecDirs.
func codecPolicies(t *testing.T, o gen.Options) []string {
	t.Helper()
	gendir := t.TempDir()
	if err := gen.Write(gendir, o); err != nil {
		t.Fatal(err)
	}
	dirs := []string{gendir}
	for _, d := range codecDirs {
		dirs = append(dirs, filepath.Join("..", "testdata", "policies", d))
	}
	return dirs
}
