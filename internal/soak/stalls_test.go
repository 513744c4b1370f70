package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/runtime/catalog"
)

func TestTimelineKeepsStartsAcrossSamples(t *testing.T) {
	var tl timeline
	tl.start(1500*time.Millisecond, true)
	tl.start(1900*time.Millisecond, false)
	tl.reloaded(1200 * time.Millisecond)
	// The sampler records second 1 after its starts were counted, and
	// second 3 before any of its starts.
	tl.sample(1, second{sampled: true, eventLag: 0.7})
	tl.sample(3, second{sampled: true, busy: 1.5})
	tl.start(3100*time.Millisecond, true)
	got := tl.secs
	want := []second{
		{},
		{starts: 2, late: 1, reload: true, sampled: true, eventLag: 0.7},
		{},
		{starts: 1, late: 1, sampled: true, busy: 1.5},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(second{})); d != "" {
		t.Errorf("timeline (-want +got):\n%s", d)
	}
}

func TestShares(t *testing.T) {
	busy := float64(runtime.NumCPU())
	secs := make([]second, 20)
	secs[2].reload = true
	secs[4] = second{late: 3, starts: 10}                                                                       // 2 s after the rewrite
	secs[8] = second{late: 5, starts: 10, busy: busy, switchBehind: time.Second}                                // 6 s after: not near it
	secs[9] = second{late: 1, eventLag: 0.5, checkpoints: 1, ioWait: 0.6, switchCmdLag: 600 * time.Millisecond} // lagging, checkpointed
	secs[10] = second{harnessGCs: 2, busy: busy, switchCmdLag: 499 * time.Millisecond}                          // no late start
	got := shares(secs)
	want := []stallShare{
		{Kind: stallKinds[0].name, Late: 3, Seconds: 6}, // seconds 2..7
		{Kind: stallKinds[1].name, Late: 5, Seconds: 1},
		{Kind: stallKinds[2].name, Late: 1, Seconds: 1}, // second 9's command lag
		{Kind: stallKinds[3].name, Late: 5, Seconds: 2},
		{Kind: stallKinds[4].name, Late: 0, Seconds: 0},
		{Kind: stallKinds[5].name, Late: 1, Seconds: 1},
		{Kind: stallKinds[6].name, Late: 1, Seconds: 1},
		{Kind: stallKinds[7].name, Late: 1, Seconds: 1},
		{Kind: stallKinds[8].name, Late: 0, Seconds: 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("shares (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{8, 4}, worst(secs, 2)); d != "" {
		t.Errorf("worst (-want +got):\n%s", d)
	}
}

func TestStallReport(t *testing.T) {
	var tl timeline
	tl.start(time.Second, false)
	if got := tl.stallReport(time.Second); got != "" {
		t.Errorf("a timeline without late starts reports %q", got)
	}
	if got := (*timeline)(nil).stallReport(time.Second); got != "" {
		t.Errorf("no timeline reports %q", got)
	}
	tl.start(2*time.Second, true)
	tl.sample(2, second{sampled: true, eventLag: 1.25, backlog: 40, switchBehind: 300 * time.Millisecond, switchCmdLag: 1234567 * time.Nanosecond})
	got := tl.stallReport(800 * time.Millisecond)
	for _, want := range []string{"1 starts later than 800ms", "| 2s | 1 / 1 | 300ms | 1.235ms |", "| 1.250 s | 40 |"} {
		if !strings.Contains(got, want) {
			t.Errorf("the report has no %q:\n%s", want, got)
		}
	}
}

func TestMetricValues(t *testing.T) {
	text := `# HELP recpol_event_lag_seconds lag
# TYPE recpol_event_lag_seconds gauge
recpol_event_lag_seconds{switch="fs1"} 0.25
recpol_event_lag_seconds{switch="fs2"} 1.5
recpol_event_lag_seconds_other 9
process_cpu_seconds_total 12.5
`
	for _, c := range []struct {
		name      string
		sum, most float64
	}{
		{"recpol_event_lag_seconds", 1.75, 1.5},
		{"process_cpu_seconds_total", 12.5, 12.5},
		{"absent", 0, 0},
	} {
		if got := metricValue(text, c.name); got != c.sum {
			t.Errorf("metricValue(%s) = %v, want %v", c.name, got, c.sum)
		}
		if got := metricMax(text, c.name); got != c.most {
			t.Errorf("metricMax(%s) = %v, want %v", c.name, got, c.most)
		}
	}
}

func TestMachineTicks(t *testing.T) {
	busy, total := machineTicks()
	if runtime.GOOS == "linux" && (total == 0 || busy > total) {
		t.Errorf("machineTicks() = %d busy of %d", busy, total)
	}
}

func TestWALSequence(t *testing.T) {
	dir := t.TempDir()
	wal := filepath.Join(dir, "catalog.db-wal")
	if got := walSequence(wal); got != -1 {
		t.Errorf("walSequence of no file = %d, want -1", got)
	}
	h := make([]byte, 32)
	binary.BigEndian.PutUint32(h[0:], 0x377f0682) // magic
	binary.BigEndian.PutUint32(h[12:], 41)
	if err := os.WriteFile(wal, h, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := walSequence(wal); got != 41 {
		t.Errorf("walSequence = %d, want 41", got)
	}
	// A real log, written by the catalog's SQLite.
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Config{Driver: catalog.DriverSQLite, DSN: filepath.Join(dir, "real.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if got := walSequence(filepath.Join(dir, "real.db-wal")); got < 0 {
		t.Errorf("walSequence of the catalog's log = %d", got)
	}
}

func TestPressure(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "io")
	if err := os.WriteFile(p, []byte("some avg10=1.00 avg60=2.00 avg300=3.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := pressureTotal(p); got != 2500000 {
		t.Errorf("pressureTotal = %d, want 2500000", got)
	}
	if got := pressureTotal(filepath.Join(dir, "none")); got != -1 {
		t.Errorf("pressureTotal of no file = %d, want -1", got)
	}
	for _, c := range []struct {
		prev, cur  int64
		wall, want float64
	}{
		{1_000_000, 1_500_000, 1, 0.5},
		{1_000_000, 1_500_000, 2, 0.25},
		{-1, 1_500_000, 1, -1},
		{2_000_000, 1_500_000, 1, -1},
	} {
		if got := stallShareOf(c.prev, c.cur, c.wall); got != c.want {
			t.Errorf("stallShareOf(%d, %d, %v) = %v, want %v", c.prev, c.cur, c.wall, got, c.want)
		}
	}
}
