package table_test

import (
	"testing"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/gen"
	"github.com/recpol/recpol/table"
)

// generated compiles a generated policy of n accounts (10 users, 20
// devices each).
func generated(b *testing.B, n int) *table.Table {
	b.Helper()
	dir := b.TempDir()
	if err := gen.Write(dir, gen.Options{Accounts: n, Users: 10, Devices: 20, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	res, err := compiler.Options{CacheDir: b.TempDir()}.Compile(dir)
	if err != nil || res.Table == nil {
		b.Fatal(err, res.Diagnostics)
	}
	return res.Table
}

// BenchmarkLookupGenerated looks up a device's cell in a table of 100
// generated accounts; BenchmarkMapReadGenerated is its peer, a plain map
// read keyed by the same account ids.
func BenchmarkLookupGenerated(b *testing.B) {
	tb := generated(b, 100)
	acct := gen.AccountID(50)
	b.ReportAllocs()
	for b.Loop() {
		tb.Lookup(acct, table.Device, "d010", table.Inbound, table.Offnet)
	}
}

func BenchmarkMapReadGenerated(b *testing.B) {
	m := map[string]int{}
	for i := 0; i < 100; i++ {
		m[gen.AccountID(i)] = i
	}
	acct := gen.AccountID(50)
	b.ReportAllocs()
	for b.Loop() {
		_ = m[acct]
	}
}
