package catalog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/recpol/recpol/runtime/catalog"
)

// cpuTime is the user+system CPU time of this process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkApply measures group commit: 64 goroutines each Applying one
// PutRecording and one EnqueueUpload at a time. It reports Apply calls and
// commits per second, the mean group size and the CPU time (user+sys of
// the test process, so without PostgreSQL's own) per Apply.
func BenchmarkApply(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			c := open(b, d.cfg(b))
			ctx := context.Background()
			const workers = 64
			var next atomic.Int64
			before, cpu0, start := c.Stats(), cpuTime(b), time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						id := fmt.Sprintf("bench-%d", i)
						r := rec(id, int(i))
						if err := c.Apply(ctx, catalog.PutRecording(r), catalog.EnqueueUpload(id, "https://up/"+id, r.Start)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			wall, cpu, st := time.Since(start), cpuTime(b)-cpu0, c.Stats()
			applies, commits := st.Applies-before.Applies, st.Commits-before.Commits
			b.ReportMetric(float64(applies)/wall.Seconds(), "applies/s")
			b.ReportMetric(float64(commits)/wall.Seconds(), "commits/s")
			b.ReportMetric(float64(applies)/float64(max(commits, 1)), "applies/commit")
			b.ReportMetric(float64(cpu.Microseconds())/float64(max(applies, 1)), "cpu-µs/apply")
		})
	}
}

// The synthetic catalog of a million recordings: 100 accounts, 50
// endpoints and 20 owners per account, two recordings per call and four
// per interaction, over 30 days.
const (
	millionRows     = 1_000_000
	millionAccounts = 100
	millionSpan     = 30 * 24 * time.Hour
)

var millionStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func millionRec(i int) catalog.Recording {
	acct := fmt.Sprintf("acct-%03d", i%millionAccounts)
	state := catalog.StateStored
	switch i % 100 {
	case 1, 2, 3, 4, 5, 6, 7, 8:
		state = catalog.StateUploaded
	case 9:
		state = catalog.StateDead
	case 10:
		state = catalog.StateDeleted
	}
	id := fmt.Sprintf("rec-%08d", i)
	return catalog.Recording{
		ID:            id,
		CallID:        fmt.Sprintf("call-%07d", i/2),
		InteractionID: fmt.Sprintf("ix-%07d", i/4),
		Account:       acct,
		Endpoint:      fmt.Sprintf("device:%s-%02d", acct, (i/millionAccounts)%50),
		Owner:         fmt.Sprintf("user:%s-%02d", acct, (i/millionAccounts)%20),
		Origin:        []string{"inbound", "outbound", "onnet", "callflow"}[(i/7)%4],
		Scope:         []string{"callee", "caller", "account"}[(i/11)%3],
		// Starts every 2.592 s, two of every call at the same instant.
		Start: millionStart.Add(time.Duration(i/2) * (2 * millionSpan / millionRows)),
		State: state,
		Path:  "/var/lib/recpol/" + acct + "/" + id + ".wav",
		Doc: fmt.Appendf(nil, `{"recording_id":%q,"call_id":"call-%07d","account":%q,"format":"wav","sample_rate":16000,"duration_ms":%d,"sha256":"%064x"}`,
			id, i/2, acct, 1000+i%600000, i),
	}
}

// loadMillion fills a catalog with the synthetic million, in batches.
func loadMillion(tb testing.TB, c *catalog.Catalog) {
	ctx := context.Background()
	start, cpu0 := time.Now(), cpuTime(tb)
	const batch = 20_000
	rs := make([]catalog.Recording, 0, batch)
	for i := 0; i < millionRows; i += batch {
		rs = rs[:0]
		for j := i; j < min(i+batch, millionRows); j++ {
			rs = append(rs, millionRec(j))
		}
		if err := c.BulkLoad(ctx, rs); err != nil {
			tb.Fatal(err)
		}
	}
	if err := c.Analyze(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%s: loaded %d rows in %v (%v CPU)", c.Driver(), millionRows, time.Since(start).Round(time.Millisecond), (cpuTime(tb) - cpu0).Round(time.Millisecond))
}

// millionQueries are the filtered pages measured, each with random
// parameters drawn from r.
var millionQueries = []struct {
	name   string
	filter func(r *rand.Rand) catalog.Filter
}{
	{"account+day", func(r *rand.Rand) catalog.Filter {
		from := millionStart.Add(time.Duration(r.IntN(29)) * 24 * time.Hour)
		return catalog.Filter{Account: fmt.Sprintf("acct-%03d", r.IntN(millionAccounts)), From: from, Until: from.Add(24 * time.Hour)}
	}},
	{"account+month", func(r *rand.Rand) catalog.Filter {
		return catalog.Filter{Account: fmt.Sprintf("acct-%03d", r.IntN(millionAccounts)), From: millionStart, Until: millionStart.Add(millionSpan)}
	}},
	{"call_id", func(r *rand.Rand) catalog.Filter {
		return catalog.Filter{CallID: fmt.Sprintf("call-%07d", r.IntN(millionRows/2))}
	}},
	{"interaction_id", func(r *rand.Rand) catalog.Filter {
		return catalog.Filter{InteractionID: fmt.Sprintf("ix-%07d", r.IntN(millionRows/4))}
	}},
	{"endpoint", func(r *rand.Rand) catalog.Filter {
		a := r.IntN(millionAccounts)
		return catalog.Filter{Endpoint: fmt.Sprintf("device:acct-%03d-%02d", a, r.IntN(50))}
	}},
	{"account+endpoint", func(r *rand.Rand) catalog.Filter {
		a := r.IntN(millionAccounts)
		return catalog.Filter{Account: fmt.Sprintf("acct-%03d", a), Endpoint: fmt.Sprintf("device:acct-%03d-%02d", a, r.IntN(50))}
	}},
	{"owner", func(r *rand.Rand) catalog.Filter {
		a := r.IntN(millionAccounts)
		return catalog.Filter{Owner: fmt.Sprintf("user:acct-%03d-%02d", a, r.IntN(20))}
	}},
	{"account+origin", func(r *rand.Rand) catalog.Filter {
		return catalog.Filter{Account: fmt.Sprintf("acct-%03d", r.IntN(millionAccounts)), Origin: "callflow"}
	}},
	{"state=dead", func(r *rand.Rand) catalog.Filter {
		return catalog.Filter{State: catalog.StateDead, From: millionStart.Add(time.Duration(r.IntN(29)) * 24 * time.Hour)}
	}},
	{"no filter+from", func(r *rand.Rand) catalog.Filter {
		return catalog.Filter{From: millionStart.Add(time.Duration(r.IntN(29)) * 24 * time.Hour)}
	}},
}

// searchPage runs one query for its first page, then, when it has one,
// its second page (a cursor), and returns the time of each.
func searchPage(tb testing.TB, c *catalog.Catalog, f catalog.Filter) []time.Duration {
	ctx := context.Background()
	var out []time.Duration
	for range 2 {
		start := time.Now()
		p, err := c.Search(ctx, f)
		out = append(out, time.Since(start))
		if err != nil {
			tb.Fatal(err)
		}
		if p.NextCursor == "" {
			break
		}
		f.Cursor = p.NextCursor
	}
	return out
}

// TestMillion loads a million recordings into each database and prints
// p50 and p99 of a filtered page (100 rows) per filter. It takes minutes:
// set RECPOL_BENCH_MILLION=1 to run it.
func TestMillion(t *testing.T) {
	if os.Getenv("RECPOL_BENCH_MILLION") != "1" {
		t.Skip("set RECPOL_BENCH_MILLION=1 to load a million recordings and measure search")
	}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			c := open(t, d.cfg(t))
			loadMillion(t, c)
			r := rand.New(rand.NewPCG(1, 2))
			const samples = 300
			for _, q := range millionQueries {
				for range 20 { // warm the caches
					searchPage(t, c, q.filter(r))
				}
				if os.Getenv("RECPOL_BENCH_EXPLAIN") == "1" {
					plan, err := c.ExplainSearch(context.Background(), q.filter(r))
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s %s plan:\n%s", d.name, q.name, plan)
				}
				var ds []time.Duration
				cpu0 := cpuTime(t)
				for range samples {
					ds = append(ds, searchPage(t, c, q.filter(r))...)
				}
				cpu := cpuTime(t) - cpu0
				sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
				p := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
				t.Logf("%-8s %-18s pages %4d  p50 %8v  p99 %8v  max %8v  cpu/page %v", d.name, q.name, len(ds),
					p(0.50).Round(time.Microsecond), p(0.99).Round(time.Microsecond), ds[len(ds)-1].Round(time.Microsecond),
					(cpu / time.Duration(len(ds))).Round(time.Microsecond))
			}
		})
	}
}

// BenchmarkSearch measures a filtered page (100 rows) per filter on a
// catalog of a million recordings (loaded once per database, which takes
// a while).
func BenchmarkSearch(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			c := open(b, d.cfg(b))
			loadMillion(b, c)
			for _, q := range millionQueries {
				b.Run(q.name, func(b *testing.B) {
					r := rand.New(rand.NewPCG(1, 2))
					fs := make([]catalog.Filter, 256)
					for i := range fs {
						fs[i] = q.filter(r)
					}
					cpu0 := cpuTime(b)
					b.ResetTimer()
					for i := range b.N {
						if _, err := c.Search(context.Background(), fs[i%len(fs)]); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
				})
			}
		})
	}
}

// BenchmarkGet reads a recording by its id, as every upload attempt that
// does not hold its metadata does, from a catalog of 10,000 recordings.
// It reports the CPU time per read.
func BenchmarkGet(b *testing.B) {
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			c := open(b, d.cfg(b))
			ctx := context.Background()
			const n = 10000
			ops := make([]catalog.Op, 0, n)
			for i := range n {
				ops = append(ops, catalog.PutRecording(rec(fmt.Sprintf("get-%d", i), i)))
			}
			if err := c.Apply(ctx, ops...); err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				if _, err := c.Get(ctx, fmt.Sprintf("get-%d", i%n)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
