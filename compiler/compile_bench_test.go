package compiler_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
)

// benchFiles generates a policy of 100 accounts (10 users, 20 devices
// each) and reads it back.
func benchFiles(b *testing.B) []compiler.File { return benchTree(b, true) }

// benchTree generates the policy of benchFiles, with or without the
// template its shared file applies to every account: without it, every
// file is plain data and the plain-data path compiles it.
func benchTree(b *testing.B, template bool) []compiler.File {
	b.Helper()
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 100, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	if !template {
		p := filepath.Join(dir, "shared.cue")
		src, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		i := bytes.Index(src, []byte("accounts: [_]"))
		if i < 0 {
			b.Fatal("no template in the generated shared file")
		}
		if err := os.WriteFile(p, src[:i], 0o644); err != nil {
			b.Fatal(err)
		}
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
// and as one whole instance, with the generated template (every account
// through CUE) and without it (every account plain data).
func BenchmarkCompile(b *testing.B) {
	for _, template := range []bool{true, false} {
		files := benchTree(b, template)
		for _, whole := range []bool{false, true} {
			b.Run(fmt.Sprintf("template=%v/whole=%v", template, whole), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					compileOnce(b, compiler.Options{Whole: whole}, files)
				}
			})
		}
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

// BenchmarkCompileDirCold compiles a generated directory of 300 accounts
// as `recpol compile DIR --cache <new dir>` does (Options.Compile, a
// one-time compiler): files read, parsed and inspected, every group
// compiled, the manifest written. It gives the time and the allocations;
// a cold compile's peak memory follows its live heap instead, measured on
// the binary (Maximum resident set size of /usr/bin/time -v).
func BenchmarkCompileDirCold(b *testing.B) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 300, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		o := compiler.Options{CacheDir: b.TempDir()}
		b.StartTimer()
		res, err := o.Compile(dir)
		if err != nil || res.Table == nil {
			b.Fatal(err, res.Diagnostics)
		}
	}
}
