package simulate_test

import (
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
	"github.com/recpol/recpol/simulate"
)

// BenchmarkRunGenerated simulates every call of every account of a
// generated policy of 100 accounts (10 users, 20 devices each), from the
// in-memory table, without rendering.
func BenchmarkRunGenerated(b *testing.B) {
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: 100, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	res, err := compiler.Options{CacheDir: b.TempDir()}.Compile(dir)
	if err != nil || res.Table == nil {
		b.Fatal(err, res.Diagnostics)
	}
	t := res.Table
	b.ReportAllocs()
	for b.Loop() {
		if _, err := simulate.Run(t); err != nil {
			b.Fatal(err)
		}
	}
}
