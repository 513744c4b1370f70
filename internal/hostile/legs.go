package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// legBatch is how many originated legs are loaded into the switch at
// once: they are created, ring and hang up at the same virtual times.
const legBatch = 2000

// originated is an outbound leg the switch originates to agent-1 (a
// page, an outbound dial that fails): it rings and hangs up unanswered,
// never bridged.
func originated(id string) scenario.Call {
	return scenario.Call{ID: id, Legs: []scenario.Leg{
		{Name: "o", Direction: "outbound", ChannelName: "sofia/internal/1001", CallerIDNumber: "2001", DestinationNumber: "1001",
			Variables: map[string]string{"recpol_account": "acme", "recpol_device": "agent-1", "recpol_network": "onnet"}},
	}, Steps: []scenario.Step{
		{AtMS: 0, Do: "create", Leg: "o"},
		{AtMS: 5, Do: "ring", Leg: "o"},
		{AtMS: 10, Do: "hangup", Leg: "o", Cause: "NO_ANSWER"},
	}}
}

// legSample is the runtime's memory after n legs, once it has handled
// every event.
type legSample struct {
	legs       int
	heap       float64 // go_memstats_heap_inuse_bytes after a GC
	alloc      float64 // go_memstats_heap_alloc_bytes after a GC: live objects
	sys        float64 // go_memstats_sys_bytes: what Go holds from the OS
	released   float64 // go_memstats_heap_released_bytes: returned to the OS
	goroutines float64 // go_goroutines
	goal       float64 // go_memstats_next_gc_bytes: the heap goal the last GC set from what it found live
	profile    string  // its heap profile (after the GC)
	rssKB      int64   // VmRSS once it stopped falling (at most 30 s after the GC)
	rssNowKB   int64   // VmRSS right after the GC
	anonKB     int64   // RssAnon when rssKB was read
	fileKB     int64   // RssFile when rssKB was read
	engineLegs float64 // recpol_engine_legs
	at         time.Duration
}

// legsVariant is one run of the legs check.
type legsVariant struct {
	name    string
	n       int  // legs
	lost    bool // the hangups never reach the runtime
	samples []legSample
	dropped int64 // hangup events the proxy kept from the runtime
	// maxBacklog is the highest recpol_event_backlog read (each second):
	// events read from the switch and not yet handled.
	maxBacklog float64
	// After the switch's clock moved past the idle age (lost only).
	freed                  float64       // legs freed in freeWindow
	freeWindow             time.Duration // how long that was watched
	idleLegs               float64       // legs held when the window began
	profileTop             []string      // what grew between two samples' heap profiles
	warmTop                []string      // what grew from the sample at 0 to the next
	profileFrom, profileTo int
	err                    string
}

type legsResult struct {
	n        int
	variants []*legsVariant
	err      string
}

// hangupProxy stands between the runtime and the switch on the event
// socket. While drop is set it keeps CHANNEL_HANGUP and
// CHANNEL_HANGUP_COMPLETE events from the runtime, as a FreeSWITCH whose
// queue for a slow listener overflowed loses them: the switch forgets the
// legs (uuid_exists says false) and the runtime never hears they ended.
type hangupProxy struct {
	ln      net.Listener
	target  string
	drop    atomic.Bool
	dropped atomic.Int64
}

func newHangupProxy(target string) (*hangupProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &hangupProxy{ln: ln, target: target}
	go p.serve()
	return p, nil
}

func (p *hangupProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.relay(c)
	}
}

func (p *hangupProxy) relay(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		io.Copy(s, c)
		s.Close()
	}()
	r := bufio.NewReaderSize(s, 256<<10)
	w := bufio.NewWriterSize(c, 256<<10)
	for {
		f, err := eslwire.ReadFrame(r)
		if err != nil {
			return
		}
		if p.drop.Load() && isHangup(f) {
			p.dropped.Add(1)
			continue
		}
		if _, err := w.Write(f.Bytes()); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// isHangup reports whether a frame is a CHANNEL_HANGUP or
// CHANNEL_HANGUP_COMPLETE event (plain or JSON).
func isHangup(f eslwire.Frame) bool {
	return bytes.Contains(f.Body, []byte("Event-Name: CHANNEL_HANGUP")) ||
		bytes.Contains(f.Body, []byte(`"Event-Name":"CHANNEL_HANGUP`))
}

func (p *hangupProxy) close() { p.ln.Close() }

// checkLegs runs originated legs that never bridge through a fresh
// runtime twice: n with their hangups, and nLost with their hangups lost
// (0: not run).
func checkLegs(bin, launcher string, n, nLost int, keep bool) *legsResult {
	res := &legsResult{n: n}
	for _, lost := range []bool{false, true} {
		v := &legsVariant{name: "hung up", lost: lost, n: n}
		if lost {
			v.name, v.n = "hangups lost", nLost
		}
		if v.n <= 0 {
			continue
		}
		if err := runLegs(bin, launcher, v.n, keep, v); err != nil {
			v.err = err.Error()
			log.Printf("legs (%s): %v", v.name, err)
		}
		res.variants = append(res.variants, v)
	}
	return res
}

func runLegs(bin, launcher string, n int, keep bool, v *legsVariant) error {
	profDir, err := os.MkdirTemp("", "recpol-hostile-profiles-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(profDir)
	}
	var proxy *hangupProxy
	e, err := newEnv(bin, launcher, envOpts{name: "legs", pprof: true, proxy: func(target string) (string, error) {
		var err error
		proxy, err = newHangupProxy(target)
		if err != nil {
			return "", err
		}
		return proxy.ln.Addr().String(), nil
	}}, keep)
	if err != nil {
		return err
	}
	defer proxy.close()
	defer e.close()
	if err := e.start(60 * time.Second); err != nil {
		return err
	}
	proxy.drop.Store(v.lost)
	t0 := time.Now()
	sample := func(legs int) error {
		// Every event handled: no backlog, and (hung up) no leg left.
		waitFor(120*time.Second, func() bool {
			m, err := e.metrics()
			if err != nil {
				return false
			}
			done := metric(m, "recpol_event_backlog") == 0
			if !v.lost {
				done = done && metric(m, "recpol_engine_legs") == 0
			} else {
				done = done && metric(m, "recpol_engine_legs") >= float64(legs)
			}
			return done
		})
		m, err := e.afterGC()
		if err != nil {
			return err
		}
		// Go returns freed memory to the OS gradually (its scavenger):
		// RSS is read once it stops falling, 30 s at most.
		rssNow, rss := e.rssKB(), e.rssKB()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			time.Sleep(3 * time.Second)
			r := e.rssKB()
			if rss-r < 1024 {
				rss = min(rss, r)
				break
			}
			rss = r
		}
		anon, file := e.rssSplitKB()
		s := legSample{rssNowKB: rssNow, anonKB: anon, fileKB: file, legs: legs, heap: metric(m, "go_memstats_heap_inuse_bytes"), alloc: metric(m, "go_memstats_heap_alloc_bytes"),
			sys: metric(m, "go_memstats_sys_bytes"), released: metric(m, "go_memstats_heap_released_bytes"),
			goroutines: metric(m, "go_goroutines"), goal: metric(m, "go_memstats_next_gc_bytes"), rssKB: rss, engineLegs: metric(m, "recpol_engine_legs"), at: time.Since(t0),
			profile: filepath.Join(profDir, fmt.Sprintf("heap-%s-%d.pb.gz", strings.ReplaceAll(v.name, " ", "-"), legs))}
		if err := e.saveHeapProfile(s.profile); err != nil {
			return err
		}
		v.samples = append(v.samples, s)
		log.Printf("legs (%s): %d legs in %s: Go heap after GC %.1f MiB (live %.1f, next GC at %.1f), Go sys %.1f MiB (released %.1f), RSS %d MiB (%d right after the GC; anonymous %d, files %d), goroutines %.0f, engine legs %.0f, hangups kept from it %d",
			v.name, legs, s.at.Round(time.Second), s.heap/(1<<20), s.alloc/(1<<20), s.goal/(1<<20), s.sys/(1<<20), s.released/(1<<20), s.rssKB/1024, s.rssNowKB/1024, s.anonKB/1024, s.fileKB/1024,
			s.goroutines, s.engineLegs, proxy.dropped.Load())
		return nil
	}
	time.Sleep(2 * time.Second)
	if err := sample(0); err != nil {
		return err
	}
	stopWatch, watched := make(chan struct{}), make(chan struct{})
	defer func() { close(stopWatch); <-watched }()
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Second):
			}
			if m, err := e.metrics(); err == nil {
				v.maxBacklog = max(v.maxBacklog, metric(m, "recpol_event_backlog"))
			}
		}
	}()

	ctx := context.Background()
	next := n / 3
	for done := 0; done < n; {
		k := min(legBatch, n-done)
		sc := &scenario.Scenario{}
		for i := range k {
			sc.Calls = append(sc.Calls, originated(fmt.Sprintf("orig-%d", done+i)))
		}
		if err := e.sw.Load(sc); err != nil {
			return err
		}
		if err := e.sw.Run(ctx); err != nil {
			return err
		}
		// At the runtime's pace: the next batch once it has handled all
		// but about one batch's events. Its event queue is unbounded
		// (runtime/esl/queue.go) and keeps the capacity of its longest
		// backlog: a burst would measure that, not the legs.
		waitFor(60*time.Second, func() bool {
			m, err := e.metrics()
			return err != nil || metric(m, "recpol_event_backlog") < 3*legBatch
		})
		done += k
		if done >= next {
			if err := sample(done); err != nil {
				return err
			}
			next += n / 3
		}
		if !e.running() {
			return fmt.Errorf("the runtime exited after %d legs (log %s)", done, e.logPath)
		}
	}
	v.dropped = proxy.dropped.Load()
	// What grew: the heap at the first sample after legs against the
	// one before any, and at the last against the first after legs.
	if len(v.samples) >= 3 {
		zero, first, last := v.samples[0], v.samples[1], v.samples[len(v.samples)-1]
		v.warmTop = pprofTop(e.bin, first.profile, zero.profile)
		v.profileTop = pprofTop(e.bin, last.profile, first.profile)
		v.profileFrom, v.profileTo = first.legs, last.legs
		log.Printf("legs (%s): growth from 0 to %d legs: %s", v.name, first.legs, strings.Join(v.warmTop, " | "))
		log.Printf("legs (%s): growth from %d to %d legs: %s", v.name, first.legs, last.legs, strings.Join(v.profileTop, " | "))
	}
	if v.lost {
		// The switch's clock moves past the idle age (an hour): HEARTBEATs
		// carry it to the runtime, whose recheck rounds then ask
		// uuid_exists about the idle legs.
		e.sw.Advance(61 * time.Minute)
		waitFor(30*time.Second, func() bool {
			m, err := e.metrics()
			return err == nil && metric(m, "recpol_event_backlog") == 0
		})
		m, err := e.metrics()
		if err != nil {
			return err
		}
		v.idleLegs = metric(m, "recpol_engine_legs")
		v.freeWindow = 60 * time.Second
		time.Sleep(v.freeWindow)
		if m, err = e.metrics(); err != nil {
			return err
		}
		v.freed = v.idleLegs - metric(m, "recpol_engine_legs")
		log.Printf("legs (%s): an hour later on the switch's clock, %.0f of %.0f idle legs freed in %s (%.1f/s)",
			v.name, v.freed, v.idleLegs, v.freeWindow, v.freed/v.freeWindow.Seconds())
	}
	return nil
}

// pprofTop is the first lines of `go tool pprof -top` of a heap profile
// (in-use space), against base when it is not "".
func pprofTop(bin, prof, base string) []string {
	args := []string{"tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=6"}
	if base != "" {
		args = append(args, "-diff_base="+base)
	}
	out, err := exec.Command("go", append(args, bin, prof)...).Output()
	if err != nil {
		return nil
	}
	var lines []string
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "flat%") {
			in = true
			continue
		}
		if in && strings.TrimSpace(l) != "" {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	return lines
}

// growth is the largest rise of f over the first sample, as a share of it.
func growth(ss []legSample, f func(legSample) float64) float64 {
	if len(ss) < 2 || f(ss[0]) == 0 {
		return 0
	}
	var g float64
	for _, s := range ss[1:] {
		g = max(g, (f(s)-f(ss[0]))/f(ss[0]))
	}
	return g
}

func kLegs(s legSample) string {
	if s.legs == 0 {
		return "0"
	}
	return fmt.Sprintf("%dk", s.legs/1000)
}

func (v *legsVariant) series(f func(legSample) string) string {
	var parts []string
	for _, s := range v.samples {
		parts = append(parts, f(s))
	}
	return strings.Join(parts, ", ")
}

func (r *legsResult) goals() []goal {
	var gs []goal
	heap := func(s legSample) float64 { return s.heap }
	rss := func(s legSample) float64 { return float64(s.rssKB) }
	for _, v := range r.variants {
		complete := len(v.samples) == 4 && v.err == ""
		gh, gr := growth(v.samples, heap), growth(v.samples, rss)
		gs = append(gs,
			goal{fmt.Sprintf("%s: Go heap after GC at %s legs", v.name, v.series(kLegs)),
				v.series(func(s legSample) string { return fmt.Sprintf("%.1f", s.heap/(1<<20)) }) + fmt.Sprintf(" MiB (%+.1f%%)", 100*gh),
				"flat within 10%", complete && gh <= 0.10},
			goal{fmt.Sprintf("%s: RSS at %s legs", v.name, v.series(kLegs)),
				v.series(func(s legSample) string { return fmt.Sprintf("%d", s.rssKB/1024) }) + fmt.Sprintf(" MiB (%+.1f%%)", 100*gr),
				"flat within 10%", complete && gr <= 0.10},
		)
	}
	return gs
}

func (r *legsResult) notes() []string {
	ns := []string{
		fmt.Sprintf("How: the switch on its virtual clock (not real time) originates legs %d at a time, each `outbound` on `sofia/internal/1001` with the account's variables: CHANNEL_CREATE, CHANNEL_PROGRESS, then a hangup NO_ANSWER 10 ms later; never answered nor bridged. Each sample waits until the runtime's event backlog is 0 (and, hung up, its `recpol_engine_legs` 0), then collects garbage through the profiler, reads /metrics, and reads VmRSS once it stops falling (Go returns freed memory to the OS gradually; 30 s at most).", legBatch),
		"Hangups lost: a proxy between the runtime and the switch keeps every CHANNEL_HANGUP and CHANNEL_HANGUP_COMPLETE from the runtime (as FreeSWITCH drops events when a slow listener's queue is full): the switch forgets each leg, the runtime never hears it ended. The runtime asks `uuid_exists` about a leg idle for an hour on the switch's clock, at most 100 legs per 5 s round (runtime/engine.go: legIdleCheck, legChecksPerRound; runtime/recover.go: recheckEvery); after the last sample the harness moves the switch's clock 61 minutes forward and counts the legs freed in a minute. This variant runs fewer legs (`-lost-legs`): each one lost is kept, by design, for the idle age at least, and the runtime's memory grows with them; the figures scale linearly.",
	}
	for _, v := range r.variants {
		if len(v.samples) > 0 {
			ns = append(ns, fmt.Sprintf("%s: at the samples, `recpol_engine_legs` %s; live heap (`go_memstats_heap_alloc_bytes`) %s MiB; heap goal the collection set (`go_memstats_next_gc_bytes`, not moved by what the scrape itself allocates) %s MiB; Go's memory from the OS (`go_memstats_sys_bytes`) %s MiB, of which released %s MiB; goroutines %s; RSS right after the collection %s MiB; RSS once it stopped falling, anonymous memory (`RssAnon`: heap, stacks, SQLite's caches) %s MiB and mapped files (`RssFile`: the binary's pages, touched as its code runs) %s MiB; taken at %s after the first. The event backlog reached %.0f events (`recpol_event_backlog`, read each second; the harness sends the next batch once it is under %d).", v.name,
				v.series(func(s legSample) string { return fmt.Sprintf("%.0f", s.engineLegs) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%.1f", s.alloc/(1<<20)) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%.1f", s.goal/(1<<20)) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%.0f", s.sys/(1<<20)) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%.0f", s.released/(1<<20)) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%.0f", s.goroutines) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%d", s.rssNowKB/1024) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%.1f", float64(s.anonKB)/1024) }),
				v.series(func(s legSample) string { return fmt.Sprintf("%.1f", float64(s.fileKB)/1024) }),
				v.series(func(s legSample) string { return s.at.Round(time.Second).String() }), v.maxBacklog, 3*legBatch))
		}
		if v.lost {
			ns = append(ns, fmt.Sprintf("%s: the proxy kept %d hangup events from the runtime. An hour later on the switch's clock, %.0f of the %.0f idle legs were freed in %s (%.1f legs/s): freeing all of them takes %s at that pace.",
				v.name, v.dropped, v.freed, v.idleLegs, v.freeWindow, v.freed/max(v.freeWindow.Seconds(), 1), projected(v)))
		}
		if len(v.warmTop) > 0 && !v.lost {
			ns = append(ns, fmt.Sprintf("%s: what grew in the Go heap from 0 to %dk legs (same columns): %s.",
				v.name, v.profileFrom/1000, "`"+strings.Join(v.warmTop, "`; `")+"`"))
		}
		if len(v.profileTop) > 0 {
			ns = append(ns, fmt.Sprintf("%s: what grew in the Go heap from %dk to %dk legs (`go tool pprof -top -sample_index=inuse_space -diff_base`; flat, flat%%, sum%%, cum, cum%%): %s.",
				v.name, v.profileFrom/1000, v.profileTo/1000, "`"+strings.Join(v.profileTop, "`; `")+"`"))
			if v.lost && strings.Contains(strings.Join(v.profileTop, " "), "eslwire.parseFrame") {
				ns = append(ns, fmt.Sprintf("%s: why so much a leg: `eslwire.parseFrame` in the growth is the whole frame (about 2.4 KB) of each held leg's last event, kept alive by the engine's idle map: `e.seen[id] = ts` in `(*engine).Handle` (runtime/engine.go) is keyed by `id := ev.Get(\"Unique-ID\")`, a slice of the frame, and a Go map assignment stores the key it is given, also over an existing entry.", v.name))
			}
		}
		if v.err != "" {
			ns = append(ns, fmt.Sprintf("%s: the run stopped early: %s", v.name, v.err))
		}
	}
	return ns
}

func projected(v *legsVariant) string {
	if v.freed <= 0 {
		return "for ever"
	}
	d := time.Duration(v.idleLegs / (v.freed / v.freeWindow.Seconds()) * float64(time.Second))
	return d.Round(time.Minute).String()
}
