package compiler

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The collector during a one-time compile (Options.Compile), a deliberate
// choice. A compile's live heap only grows, to the table it builds: with
// the default pacer (GOGC=100) the heap grows to twice the live heap
// before each collection, so that a cold compile of 1,000 accounts, whose
// live heap ends near 20 MB, peaked at 40 MB of heap and 70 MB of RSS,
// and collected every few MB while its live heap was small, where most of
// its collections were.
//
// So a one-time compile turns the pacer off and paces the collector by a
// memory limit instead (debug.SetMemoryLimit), which it raises after each
// collection to the live heap plus three quarters of it, and at least
// plus gcHeadroom: a small live heap is collected when gcHeadroom more
// was allocated, not each time it doubles (fewer collections, each of a
// small heap), and a large one before it doubles (a lower peak, for a few
// more collections of it). The 1,000-account compile then peaks near 55
// MB of RSS instead of 70 for the same CPU time or less; the
// 5,000-account one near 170 MB instead of 290, with 69 collections
// instead of 48, a few percent more CPU (half as much again was 109
// collections, 25% of its CPU). The limit also makes the runtime return
// freed memory to the system as the heap nears it.
//
// It is the process's collector, so the compile restores it when it
// returns, and leaves it alone when the process's owner chose otherwise:
// GOGC or GOMEMLIMIT in the environment, a memory limit in force (`recpol
// run` applies its config's), a GC percent other than the default, or
// another compile pacing it already.

// gcHeadroom is the least a one-time compile lets its heap grow beyond
// the live heap before it collects.
const gcHeadroom = 16 << 20

// gcBudget returns the memory limit a one-time compile sets after a
// collection that left live bytes of heap.
func gcBudget(live int64) int64 {
	return live + max(live*3/4, gcHeadroom)
}

// gcPacing is the pacing of the collector by a one-time compile, while
// one runs.
var gcPacing struct {
	mu     sync.Mutex
	active bool
	// generation counts the pacings: a finalizer of an earlier one
	// (which may run after it stopped) finds it changed and stops.
	generation int
	percent    int // the GC percent to restore
}

// paceGC paces the collector for a one-time compile (see above) and
// returns the function that restores it; it changes nothing, and the
// function does nothing, when the process's owner chose otherwise.
func paceGC() (restore func()) {
	noop := func() {}
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return noop
	}
	p := &gcPacing
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		return noop
	}
	old := debug.SetGCPercent(-1)
	if old != 100 {
		debug.SetGCPercent(old)
		return noop
	}
	p.active, p.percent = true, old
	p.generation++
	gen := p.generation
	debug.SetMemoryLimit(gcBudget(liveHeap()))
	armGCPacing(gen)
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.active || p.generation != gen {
			return
		}
		p.active = false
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(p.percent)
	}
}

// gcSentinel is garbage whose finalizer runs after the collection that
// found it so; it holds a pointer, so that it is never one of the tiny
// allocations a finalizer may never run for.
type gcSentinel struct{ _ *byte }

// armGCPacing makes the next collection raise the memory limit of the
// pacing gen to gcBudget of the live heap it left, and arm itself again,
// while that pacing lasts.
func armGCPacing(gen int) {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		p := &gcPacing
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.active || p.generation != gen {
			return
		}
		live := liveHeap()
		debug.SetMemoryLimit(gcBudget(live))
		armGCPacing(gen)
		if gcPaced != nil {
			gcPaced(live)
		}
	})
}

// gcPaced, when set (by tests), is called with the live heap each time a
// collection set the limit by it, with gcPacing locked.
var gcPaced func(live int64)

// liveHeap returns the heap the last collection found live (0 before
// the first).
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
