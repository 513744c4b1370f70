package compiler_test

import (
	"fmt"
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
)

// BenchmarkCompile compiles a generated policy of 100 accounts (10 users,
// 20 devices each), partitioned and as one whole instance, without a cache.
func BenchmarkCompile(b *testing.B) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 100, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	files, err := compiler.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, whole := range []bool{false, true} {
		b.Run(fmt.Sprintf("whole=%v", whole), func(b *testing.B) {
			for b.Loop() {
				if res := (compiler.Options{Whole: whole}).CompileFiles(files); res.Table == nil {
					b.Fatal(res.Diagnostics)
				}
			}
		})
	}
}
