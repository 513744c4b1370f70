package compiler

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestGCBudget gives a small live heap gcHeadroom to grow, a large one
// three quarters of itself.
func TestGCBudget(t *testing.T) {
	for _, tc := range []struct {
		live, want int64
	}{
		{0, gcHeadroom},
		{8 << 20, 8<<20 + gcHeadroom},
		{20 << 20, 20<<20 + gcHeadroom},
		{100 << 20, 175 << 20},
	} {
		if got := gcBudget(tc.live); got != tc.want {
			t.Errorf("gcBudget(%d) = %d, want %d", tc.live, got, tc.want)
		}
	}
}

// gcState is what paceGC changes.
type gcState struct {
	Percent int
	Limited bool // a memory limit in force
}

// readGC returns the collector's settings, changing nothing.
func readGC() gcState {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return gcState{Percent: p, Limited: debug.SetMemoryLimit(-1) != math.MaxInt64}
}

// TestPaceGC paces the collector, and restores it, only where the
// process's owner did not choose its own pacing.
func TestPaceGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	paced, unpaced := gcState{Percent: -1, Limited: true}, gcState{Percent: 100}
	for _, tc := range []struct {
		name       string
		env        string // GOGC's value
		limit      int64
		percent    int
		nested     bool
		during     gcState
		afterInner gcState // with nested: after the inner restore
	}{
		{name: "default", during: paced},
		{name: "nested", nested: true, during: paced, afterInner: paced},
		{name: "GOGC set", env: "100", during: unpaced},
		{name: "memory limit", limit: 1 << 30, during: gcState{Percent: 100, Limited: true}},
		{name: "GC percent", percent: 50, during: gcState{Percent: 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			t.Setenv("GOMEMLIMIT", "")
			before := unpaced
			if tc.limit > 0 {
				debug.SetMemoryLimit(tc.limit)
				before.Limited = true
			}
			if tc.percent != 0 {
				debug.SetGCPercent(tc.percent)
				before.Percent = tc.percent
			}
			restore := paceGC()
			if diff := cmp.Diff(tc.during, readGC()); diff != "" {
				t.Errorf("while paced (-want +got):\n%s", diff)
			}
			if tc.nested {
				paceGC()()
				if diff := cmp.Diff(tc.afterInner, readGC()); diff != "" {
					t.Errorf("after the inner pacing (-want +got):\n%s", diff)
				}
			}
			restore()
			if diff := cmp.Diff(before, readGC()); diff != "" {
				t.Errorf("after (-want +got):\n%s", diff)
			}
			debug.SetMemoryLimit(math.MaxInt64)
			debug.SetGCPercent(100)
		})
	}
}

// TestPaceGCAfterCollection finds the limit raised to gcBudget of the
// live heap after a collection, and no longer raised once restored.
func TestPaceGCAfterCollection(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	type pacing struct{ live, limit int64 }
	paced := make(chan pacing, 16)
	gcPaced = func(live int64) {
		select {
		case paced <- pacing{live, debug.SetMemoryLimit(-1)}:
		default:
		}
	}
	defer func() {
		gcPacing.mu.Lock()
		gcPaced = nil
		gcPacing.mu.Unlock()
	}()
	restore := paceGC()
	keep := make([]byte, 64<<20) // live through the collection
	runtime.GC()
	select {
	case p := <-paced:
		if want := gcBudget(p.live); p.limit != want {
			t.Errorf("limit after a collection %d, want gcBudget(%d) = %d", p.limit, p.live, want)
		}
		if p.live < int64(len(keep)) {
			t.Errorf("live heap %d, want at least the %d bytes kept", p.live, len(keep))
		}
	case <-time.After(time.Minute):
		t.Fatal("no collection raised the limit")
	}
	runtime.KeepAlive(keep)
	restore()
	if got := readGC(); got != (gcState{Percent: 100}) {
		t.Errorf("after restore: %+v", got)
	}
}
