package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A second is what the soak saw in one second of a phase: the starts on
// the switch whose leg answered in it (and how many of them came late),
// and what the machine, the runtime and the harness were doing.
type second struct {
	starts, late int
	// sampled is false for a second the sampler did not reach (the
	// runtime's /metrics did not answer, or the run ended).
	sampled bool
	// From the runtime's /metrics at the end of the second (gauges) or
	// over it (counters).
	eventLag, backlog, finishQueue float64
	runtimeCPU                     float64 // cores
	runtimeGCs                     float64
	// The harness (fake switch, uploads server) and the whole machine.
	harnessCPU, busy float64 // cores
	// cpuWait and ioWait are the shares of the second in which some task
	// of the machine waited for a CPU, or on I/O (Linux's pressure stall
	// information, "some"); -1 where the kernel has none.
	cpuWait, ioWait float64
	harnessGCs      uint32
	// switchBehind is how late, at most, the fake switch ran its calls'
	// steps in the second (fakeswitch.Server.Behind): its events went out
	// that late, and the lag of a start counts from the step's due time.
	switchBehind time.Duration
	// switchCmdLag is how long, at most, a command the fake switch read
	// in the second waited before it acted on it
	// (fakeswitch.Server.CommandLag): a uuid_record's RECORD_START went
	// out that much later than the runtime sent the start.
	switchCmdLag time.Duration
	// checkpoints is how many times the catalog's write-ahead log was
	// checkpointed and started again (its header's checkpoint sequence
	// number).
	checkpoints int64
	reload      bool // the harness rewrote the policy in this second
}

// timeline records a phase second by second, so that the late starts can
// be set beside what happened when their legs answered.
type timeline struct {
	mu   sync.Mutex
	secs []second
}

// at returns second i, growing the timeline; t.mu is held.
func (t *timeline) at(i int) *second {
	if i < 0 {
		i = 0
	}
	for len(t.secs) <= i {
		t.secs = append(t.secs, second{})
	}
	return &t.secs[i]
}

// start counts a start on the switch of a leg that answered at offset
// from the phase's start.
func (t *timeline) start(offset time.Duration, late bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.at(int(offset / time.Second))
	s.starts++
	if late {
		s.late++
	}
}

// reloaded marks the policy rewrite at offset.
func (t *timeline) reloaded(offset time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.at(int(offset / time.Second)).reload = true
}

// sample records second i.
func (t *timeline) sample(i int, s second) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.at(i)
	s.starts, s.late, s.reload = p.starts, p.late, p.reload
	*p = s
}

// counters are the cumulative readings a second's figures are the
// differences of.
type counters struct {
	at                    time.Time
	runtimeCPU, rtGCs     float64
	harnessCPU            time.Duration
	harnessGCs            uint32
	machineBusy, machineT uint64 // clock ticks from /proc/stat
	walSeq                int64  // the WAL header's checkpoint sequence number, -1 when unread
	cpuStall, ioStall     int64  // µs of pressure stall ("some"), -1 when unread
	text                  string // the runtime's /metrics, "" when it did not answer
}

// switchLags is what the sampler reads of the fake switch every second
// (*fakeswitch.Server): each method says the most since it was last
// called, and starts counting again.
type switchLags interface {
	// Behind is how late the switch ran its calls' steps.
	Behind() time.Duration
	// CommandLag is how long a command waited between its read off the
	// socket and the switch acting on it.
	CommandLag() time.Duration
}

// sampleTimeline reads the counters every second from start until ctx is
// done and records each second in t. metrics is the runtime's HTTP
// address; wal is the catalog's write-ahead log; sw is the fake switch.
func sampleTimeline(ctx context.Context, t *timeline, start time.Time, metrics, wal string, sw switchLags) {
	read := func() counters {
		// The clocks first, then the runtime's /metrics (an HTTP round
		// trip that may take long on a busy machine).
		c := counters{at: time.Now()}
		c.cpuStall, c.ioStall = pressureTotal("/proc/pressure/cpu"), pressureTotal("/proc/pressure/io")
		c.machineBusy, c.machineT = machineTicks()
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			c.harnessCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c.harnessGCs = ms.NumGC
		c.walSeq = walSequence(wal)
		c.text = metricsText(metrics)
		c.runtimeCPU = metricValue(c.text, "process_cpu_seconds_total")
		c.rtGCs = metricValue(c.text, "go_gc_duration_seconds_count")
		return c
	}
	prev := read()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur := read()
		sec := cur.at.Sub(start).Seconds()
		wall := cur.at.Sub(prev.at).Seconds()
		// A restarted runtime's counters start again: its second is not
		// sampled.
		s := second{sampled: cur.text != "" && prev.text != "" && cur.runtimeCPU >= prev.runtimeCPU}
		if s.sampled {
			s.runtimeCPU = (cur.runtimeCPU - prev.runtimeCPU) / wall
			s.runtimeGCs = cur.rtGCs - prev.rtGCs
			s.eventLag = metricMax(cur.text, "recpol_event_lag_seconds")
			s.backlog = metricMax(cur.text, "recpol_event_backlog")
			s.finishQueue = metricValue(cur.text, "recpol_finish_queue")
		}
		s.switchBehind, s.switchCmdLag = sw.Behind(), sw.CommandLag()
		s.cpuWait, s.ioWait = stallShareOf(prev.cpuStall, cur.cpuStall, wall), stallShareOf(prev.ioStall, cur.ioStall, wall)
		s.harnessCPU = (cur.harnessCPU - prev.harnessCPU).Seconds() / wall
		s.harnessGCs = cur.harnessGCs - prev.harnessGCs
		if dt := cur.machineT - prev.machineT; dt > 0 {
			s.busy = float64(cur.machineBusy-prev.machineBusy) / float64(dt) * float64(runtime.NumCPU())
		}
		if cur.walSeq >= 0 && prev.walSeq >= 0 && cur.walSeq >= prev.walSeq {
			s.checkpoints = cur.walSeq - prev.walSeq
		}
		// The second that just ended.
		t.sample(int(sec)-1, s)
		prev = cur
	}
}

// pressureTotal reads the total µs of "some" stall from a Linux pressure
// stall information file (/proc/pressure/cpu, /proc/pressure/io); -1
// where there is none.
func pressureTotal(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if !strings.HasPrefix(line, "some ") {
		return -1
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// stallShareOf is the share of wall seconds that a pressure total grew
// by from prev to cur (-1 when either is unread).
func stallShareOf(prev, cur int64, wall float64) float64 {
	if prev < 0 || cur < prev || wall <= 0 {
		return -1
	}
	return float64(cur-prev) / 1e6 / wall
}

// walSequence reads the checkpoint sequence number of a SQLite
// write-ahead log: the big-endian 32-bit word at offset 12 of its header,
// which SQLite increments each time it starts the log again after a
// checkpoint (https://www.sqlite.org/fileformat2.html#walformat). It is
// -1 when the log cannot be read.
func walSequence(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	var h [16]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return -1
	}
	return int64(binary.BigEndian.Uint32(h[12:]))
}

// machineTicks reads the busy and total clock ticks of all CPUs from
// /proc/stat (0, 0 where there is none).
func machineTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// metricValue sums the samples of name in a Prometheus text exposition.
func metricValue(text, name string) float64 {
	var sum float64
	eachSample(text, name, func(v float64) { sum += v })
	return sum
}

// metricMax is the largest sample of name.
func metricMax(text, name string) float64 {
	var m float64
	eachSample(text, name, func(v float64) { m = max(m, v) })
	return m
}

func eachSample(text, name string, f func(float64)) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		fs := strings.Fields(line)
		if v, err := strconv.ParseFloat(fs[len(fs)-1], 64); err == nil {
			f(v)
		}
	}
}

// A stallShare is how many late starts fall in the seconds of a kind,
// and how many seconds of the run are of that kind.
type stallShare struct {
	Kind          string
	Late, Seconds int
}

// stallKinds are the kinds of seconds the late starts are set against.
var stallKinds = []struct {
	name string
	is   func(secs []second, i int) bool
}{
	{"in the 5 s from a policy rewrite", func(secs []second, i int) bool {
		return slices.ContainsFunc(secs[max(0, i-5):i+1], func(s second) bool { return s.reload })
	}},
	{"in a second the fake switch ran its steps >= 500 ms late (the harness, not the runtime)", func(secs []second, i int) bool {
		return secs[i].switchBehind >= 500*time.Millisecond
	}},
	{"in a second a command waited >= 500 ms in the fake switch before it acted (the harness, not the runtime)", func(secs []second, i int) bool {
		return secs[i].switchCmdLag >= 500*time.Millisecond
	}},
	{"in a second the machine's CPUs were >= 90% busy", func(secs []second, i int) bool {
		return secs[i].busy >= 0.9*float64(runtime.NumCPU())
	}},
	{"in a second some task waited for a CPU >= 50% of it (pressure stall information)", func(secs []second, i int) bool {
		return secs[i].cpuWait >= 0.5
	}},
	{"in a second some task waited on I/O >= 50% of it (pressure stall information)", func(secs []second, i int) bool {
		return secs[i].ioWait >= 0.5
	}},
	{"in a second the runtime read >= 500 ms behind the switch (recpol_event_lag_seconds)", func(secs []second, i int) bool {
		return secs[i].eventLag >= 0.5
	}},
	{"in a second the catalog's WAL was checkpointed and started again", func(secs []second, i int) bool {
		return secs[i].checkpoints > 0
	}},
	{"in a second the harness (fake switch) collected garbage", func(secs []second, i int) bool {
		return secs[i].harnessGCs > 0
	}},
}

// shares sets the late starts of secs against each of stallKinds.
func shares(secs []second) []stallShare {
	var out []stallShare
	for _, k := range stallKinds {
		sh := stallShare{Kind: k.name}
		for i, s := range secs {
			if k.is(secs, i) {
				sh.Late += s.late
				sh.Seconds++
			}
		}
		out = append(out, sh)
	}
	return out
}

// worst returns the indexes of the n seconds with the most late starts,
// most first (earlier first among equals).
func worst(secs []second, n int) []int {
	var order []int
	for i, s := range secs {
		if s.late > 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return secs[b].late - secs[a].late })
	return order[:min(len(order), n)]
}

// stallReport says where the late starts of a phase fall: how many fall
// near a reload, on a busy machine, while the runtime read behind the
// switch..., and the seconds with the most of them beside what was
// happening then. It is empty when no start was late.
func (t *timeline) stallReport(late time.Duration) string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	secs := slices.Clone(t.secs)
	t.mu.Unlock()
	total := 0
	for _, s := range secs {
		total += s.late
	}
	if total == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d starts later than %s, by the second their leg answered (a sampler reads the runtime's /metrics, /proc/stat, /proc/pressure and the catalog's WAL header once a second):\n\n", total, late)
	b.WriteString("| late starts ... | late | of all late | seconds of the run like it |\n|---|---|---|---|\n")
	for _, sh := range shares(secs) {
		fmt.Fprintf(&b, "| %s | %d | %.0f%% | %d of %d (%.0f%%) |\n", sh.Kind, sh.Late, 100*float64(sh.Late)/float64(total), sh.Seconds, len(secs), 100*float64(sh.Seconds)/float64(max(1, len(secs))))
	}
	b.WriteString("\nThe seconds with the most late starts:\n\n")
	b.WriteString("| second | late / starts | fake switch behind | fake switch command lag | machine busy (cores) | waited for CPU / on I/O | runtime CPU | harness CPU | event lag | backlog | finish queue | runtime GCs | harness GCs | WAL restarts | policy rewrite in the 5 s before |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, i := range worst(secs, 15) {
		s := secs[i]
		var rt string
		if s.sampled {
			rt = fmt.Sprintf("%.2f | %.2f | %.3f s | %.0f | %.0f | %.0f", s.runtimeCPU, s.harnessCPU, s.eventLag, s.backlog, s.finishQueue, s.runtimeGCs)
		} else {
			rt = fmt.Sprintf("- | %.2f | - | - | - | -", s.harnessCPU)
		}
		rw := ""
		if stallKinds[0].is(secs, i) {
			rw = "yes"
		}
		fmt.Fprintf(&b, "| %s | %d / %d | %s | %s | %.2f | %s / %s | %s | %d | %d | %s |\n",
			time.Duration(i)*time.Second, s.late, s.starts, s.switchBehind, s.switchCmdLag.Round(time.Microsecond), s.busy, pct(s.cpuWait), pct(s.ioWait), rt, s.harnessGCs, s.checkpoints, rw)
	}
	return b.String()
}

// pct writes a share as a percentage, "-" when unknown.
func pct(f float64) string {
	if f < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*f)
}
