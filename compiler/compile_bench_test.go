package compiler_test

import (
	"fmt"
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
)

// benchFiles generates a policy of 100 accounts (10 users, 20 devices
// each) and reads it back.
func benchFiles(b *testing.B) []compiler.File {
	b.Helper()
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 100, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	files, err := compiler.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	return files
}

func compileOnce(b *testing.B, o compiler.Options, files []compiler.File) {
	if res := o.CompileFiles(files); res.Table == nil {
		b.Fatal(res.Diagnostics)
	}
}

// BenchmarkCompile compiles the policy without a cache, in account groups
// and as one whole instance.
func BenchmarkCompile(b *testing.B) {
	files := benchFiles(b)
	for _, whole := range []bool{false, true} {
		b.Run(fmt.Sprintf("whole=%v", whole), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				compileOnce(b, compiler.Options{Whole: whole}, files)
			}
		})
	}
}

// BenchmarkCompileColdCache compiles with a new, empty cache directory each
// iteration: every group is evaluated and written to the cache, as the
// first compile on a fresh machine.
func BenchmarkCompileColdCache(b *testing.B) {
	files := benchFiles(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		o := compiler.Options{CacheDir: b.TempDir()}
		b.StartTimer()
		compileOnce(b, o, files)
	}
}

// BenchmarkCompileWarmCache compiles with every group in the cache: what
// a new process costs when nothing changed.
func BenchmarkCompileWarmCache(b *testing.B) {
	files := benchFiles(b)
	o := compiler.Options{CacheDir: b.TempDir()}
	compileOnce(b, o, files)
	b.ReportAllocs()
	for b.Loop() {
		compileOnce(b, o, files)
	}
}
