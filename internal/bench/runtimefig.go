package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"time"
)

// runtimeFigures measures the runtime (a `recpol run` child process)
// against the fake switch over loopback TCP: setups per second as fast as
// it keeps up, against go-eventsocket alone reading the same event stream;
// the event -> command latency at a paced rate; and its memory.
func (r *runner) runtimeFigures(ctx context.Context) {
	tput := &Figure{Name: "runtime: call setups per second over TCP against the fake switch (A+B leg, answer, bridge, hangup, recordings started and stopped)",
		Goal: ">= 2,000 setups/s and >= 0.5x the peer rate"}
	lat := &Figure{Name: fmt.Sprintf("runtime: event in -> recording command out, at %s setups/s", comma(r.sz.pacedRate)), Goal: "p99 < 5 ms"}
	mem := &Figure{Name: fmt.Sprintf("runtime memory with the %s-account table loaded", comma(r.sz.accounts)), Goal: "< 200 MB RSS"}
	runs := r.sz.slowRuns
	var rates, p99s, p50s []float64
	var pooled []time.Duration
	var idle, peak []int64
	var frames []byte
	var nframes int
	var pacedRates, storedRates []float64
	var pacedNotes []string
	var rtts []time.Duration
	for i := 0; i < runs; i++ {
		e, err := r.startRuntime(ctx, false)
		if err != nil {
			r.fail(tput, err)
			r.fail(lat, err)
			r.fail(mem, err)
			return
		}
		cur, _ := e.rss()
		idle = append(idle, cur)
		e.tap.reset(i == 0)
		took, stored, err := e.throughput(ctx, r.sz.setups)
		if err != nil {
			e.stop()
			r.fail(tput, err)
			r.fail(lat, err)
			r.fail(mem, err)
			return
		}
		rate := float64(r.sz.setups) / took.Seconds()
		rates = append(rates, rate)
		storedRates = append(storedRates, float64(r.sz.setups)/stored.Seconds())
		if i == 0 {
			_, frames, nframes = e.tap.results()
		}
		rtts = append(rtts, e.tap.roundTrips()...)
		r.logf("runtime throughput: %d setups in %s: %.0f/s", r.sz.setups, dur(took), rate)
		e.tap.reset(false)
		ptook, err := e.paced(ctx, r.sz.pacedSetups, r.sz.pacedRate)
		if ptook > 0 && err != nil {
			pacedNotes = append(pacedNotes, fmt.Sprintf("run %d: %v", i+1, err))
			err = nil
		}
		if err != nil {
			e.stop()
			r.fail(lat, err)
			r.fail(mem, err)
			r.fail(tput, fmt.Errorf("the paced run failed"))
			return
		}
		ls, _, _ := e.tap.results()
		pacedRates = append(pacedRates, float64(r.sz.pacedSetups)/ptook.Seconds())
		p99s = append(p99s, float64(percentile(ls, 99)))
		p50s = append(p50s, float64(percentile(ls, 50)))
		pooled = append(pooled, ls...)
		r.logf("runtime paced: %d latencies, p50 %s, p99 %s", len(ls), dur(percentile(ls, 50)), dur(percentile(ls, 99)))
		_, pk := e.rss()
		peak = append(peak, pk)
		e.stop()
	}
	pol := fmt.Sprintf("policy: the %s-account tree plus bench.cue (account \"bench\": the A-leg from offnet and the callee device \"phone\" recorded on answer)", comma(r.sz.accounts))
	start := fmt.Sprintf("recpol run --config runtime.cue  # a child process per run; the fake switch (runtime/fakeswitch) in the harness, reached through a timestamping tap on loopback; %s", pol)

	// The peer: go-eventsocket alone reading the event frames the runtime
	// received in the first run.
	var peerRates []float64
	eventsPerSetup := float64(nframes) / float64(r.sz.setups)
	if nframes == 0 {
		tput.Notes = append(tput.Notes, "peer: "+errNoFrames.Error())
	}
	for i := 0; i < r.sz.fastRuns && nframes > 0; i++ {
		took, err := peerRead(frames, nframes)
		if err != nil {
			tput.Notes = append(tput.Notes, "peer: "+err.Error())
			peerRates = nil
			break
		}
		peerRates = append(peerRates, float64(nframes)/took.Seconds())
	}
	mr := median(rates)
	tput.Commands = []string{start,
		fmt.Sprintf("%d calls, in batches of 50 started together on the virtual clock, advanced by 150 ms once the runtime has sent the uuid_record starts of the batch before the previous one; calls hang up 1.6 s (virtual) after they start; timed from the first call to the last RECORD_STOP handled by the runtime (recpol_recordings_total{event=\"stopped\"} on its /metrics)", r.sz.setups),
		fmt.Sprintf("peer: eventsocket.Dial + ReadEvent over loopback on the %d event frames (%.1f per setup, %s average) the runtime received in the first run, written at once by a minimal server", nframes, eventsPerSetup, avgSize(frames, nframes))}
	tput.Value = fmt.Sprintf("%.0f setups/s (%s)", mr, fspread(rates, "%.0f"))
	tput.Notes = append(tput.Notes, fmt.Sprintf("to the last recording handed over by the store (recpol_recordings_finished_total: moved out of the spool, journaled, fsynced): %.0f setups/s (%s)",
		median(storedRates), fspread(storedRates, "%.0f")))
	if len(rtts) > 0 {
		tput.Notes = append(tput.Notes, fmt.Sprintf("bgapi round trips seen by the tap during the throughput runs (command read -> its BACKGROUND_JOB written back): %d, p50 %s, p99 %s",
			len(rtts), dur(percentile(rtts, 50)), dur(percentile(rtts, 99))))
	}
	if len(peerRates) > 0 {
		pe := median(peerRates)
		tput.Peer = fmt.Sprintf("go-eventsocket alone: %.0f events/s = %.0f setups/s", pe, pe/eventsPerSetup)
		tput.Ratio = ratio(mr, pe/eventsPerSetup)
		tput.Met = met(mr >= 2000 && mr >= 0.5*pe/eventsPerSetup)
	} else {
		tput.Peer, tput.Ratio = "not measured", "-"
		tput.Met = met(false)
		tput.Notes = append(tput.Notes, "without its peer the goal counts as not met")
	}
	r.rep.Figures = append(r.rep.Figures, tput)
	if !*tput.Met {
		tput.Profile = r.runtimeProfile(ctx, tput.Name, func(e *rtEnv) error {
			_, _, err := e.throughput(ctx, r.sz.setups/2)
			return err
		}) + fmt.Sprintf("\n(profile: the runtime in the harness's process, %d setups as above; the fake switch and the tap are in the same profile)", r.sz.setups/2)
	}

	lat.Commands = []string{start,
		fmt.Sprintf("%d calls started %s per second on a virtual clock that follows the wall clock (advanced every 1 ms), after the throughput run in the same process; the rate achieved is the calls over the wall time until the last one started", r.sz.pacedSetups, comma(r.sz.pacedRate)),
		"latency: from the tap writing a leg's CHANNEL_ANSWER event to the runtime's connection to the tap reading that leg's `bgapi uuid_record <uuid> start` (the tap sits where the switch's socket is; the switch's own hop to the tap is not counted)"}
	lat.Value = fmt.Sprintf("p99 %s, p50 %s (median of %d runs; p99 per run %s)", dur(time.Duration(median(p99s))), dur(time.Duration(median(p50s))), runs, fspreadDur(p99s))
	lat.Peer, lat.Ratio = "-", "-"
	lat.Met = met(time.Duration(median(p99s)) < 5*time.Millisecond)
	lat.Notes = append(lat.Notes, fmt.Sprintf("%d latencies over all runs: p99 %s, max %s; the rate achieved: %s setups/s", len(pooled), dur(percentile(pooled, 99)), dur(slices.Max(append(pooled, 0))), fspread(pacedRates, "%.0f")))
	lat.Notes = append(lat.Notes, pacedNotes...)
	r.rep.Figures = append(r.rep.Figures, lat)
	if !*lat.Met && r.cfg.Quick {
		lat.Notes = append(lat.Notes, "quick mode: not profiled")
	} else if !*lat.Met {
		lat.Profile = r.runtimeProfile(ctx, lat.Name, func(e *rtEnv) error {
			if took, err := e.paced(ctx, r.sz.pacedSetups, r.sz.pacedRate); took == 0 {
				return err
			}
			return nil
		}) + "\n(profile: the runtime in the harness's process, the paced run as above; the fake switch and the tap are in the same profile)"
	}

	mem.Commands = []string{start, "VmRSS of the child once connected with the table loaded, and VmHWM (peak) after the throughput and paced runs, from /proc/<pid>/status"}
	mp := median(peak)
	mem.Value = fmt.Sprintf("peak %s under load, %s idle with the table loaded", mb(mp), mb(median(idle)))
	mem.Peer, mem.Ratio = "-", "-"
	mem.Met = met(mp < 200<<20 && mp > 0)
	r.rep.Figures = append(r.rep.Figures, mem)
	if !*mem.Met {
		mem.Profile = r.heapProfile(ctx, mem.Name)
	}
}

// runtimeProfile runs fn against a runtime in this process under the CPU
// profiler.
func (r *runner) runtimeProfile(ctx context.Context, name string, fn func(*rtEnv) error) string {
	e, err := r.startRuntime(ctx, true)
	if err != nil {
		return "profile: " + err.Error()
	}
	defer e.stop()
	return r.profile(name, func() error { return fn(e) }, runtimeFocus) +
		"\n(only samples with a frame of the runtime's own packages, runtime, runtime/esl and runtime/store: the fake switch, the tap and the harness share the process; the garbage collector's background work is left out)"
}

// runtimeFocus keeps the samples of the runtime's own code.
const runtimeFocus = `-focus=recpol/runtime\.|recpol/runtime/(esl|store)\.`

// heapProfile loads the table into a runtime in this process and reports
// the live heap by cumulative in-use space.
func (r *runner) heapProfile(ctx context.Context, name string) string {
	e, err := r.startRuntime(ctx, true)
	if err != nil {
		return "profile: " + err.Error()
	}
	defer e.stop()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	stats := fmt.Sprintf("Go memory of that process after a GC: Sys %s, HeapInuse %s, HeapIdle %s (HeapReleased %s), stacks %s",
		mb(int64(ms.Sys)), mb(int64(ms.HeapInuse)), mb(int64(ms.HeapIdle)), mb(int64(ms.HeapReleased)), mb(int64(ms.StackInuse)))
	path := filepath.Join(r.cfg.Work, "profiles", "runtime-heap.pprof")
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		return "profile: " + err.Error()
	}
	err = pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	if err != nil {
		return "profile: " + err.Error()
	}
	return topCum(path, "-sample_index=inuse_space") + "\n(heap profile, in-use space, of a runtime in the harness's process once connected with the table loaded)\n" + stats
}

func comma(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func fspread(xs []float64, f string) string {
	if len(xs) < 2 {
		return fmt.Sprintf("n=%d", len(xs))
	}
	return fmt.Sprintf("min "+f+", max "+f+", n=%d", slices.Min(xs), slices.Max(xs), len(xs))
}

func fspreadDur(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, dur(time.Duration(x)))
	}
	return fmt.Sprint(s)
}

func avgSize(frames []byte, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KB", float64(len(frames))/float64(n)/1024)
}
