package compiler_test

import (
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
)

// BenchmarkCompileColdCache compiles a generated policy of 100 accounts
// (10 users, 20 devices each) with a new, empty cache directory each
// iteration: every group is evaluated and written to the cache, as the
// first compile on a fresh machine.
func BenchmarkCompileColdCache(b *testing.B) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 100, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	files, err := compiler.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		o := compiler.Options{CacheDir: b.TempDir()}
		b.StartTimer()
		if res := o.CompileFiles(files); res.Table == nil {
			b.Fatal(res.Diagnostics)
		}
	}
}

// BenchmarkCompileWarmCache compiles the same policy with every group in
// the cache: what a reload costs when nothing changed.
func BenchmarkCompileWarmCache(b *testing.B) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 100, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	files, err := compiler.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	o := compiler.Options{CacheDir: b.TempDir()}
	if res := o.CompileFiles(files); res.Table == nil {
		b.Fatal(res.Diagnostics)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res := o.CompileFiles(files); res.Table == nil {
			b.Fatal(res.Diagnostics)
		}
	}
}
