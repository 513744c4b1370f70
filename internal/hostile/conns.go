package main

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floodPerProcess is how many connections one flood process holds: each
// process has its own RLIMIT_NOFILE (20,000 on the 2-core host, hard),
// so 20,000 connections take three of them.
const floodPerProcess = 7000

// probeDeadline is how long a /healthz probe may take to count as
// answered: the server's read-header timeout (5 s) plus 5 s, the bound of
// TestIdleConnectionsFlood.
const probeDeadline = 10 * time.Second

// floodMain is a flood process: it keeps n connections to addr open and
// idle (a connection the server closes is opened again) for d, and prints
// its counts every 5 s and at the end. It returns the exit code.
func floodMain(addr string, n int, d time.Duration) int {
	raiseNofile()
	var established, open, dials, fails, closed atomic.Int64
	var peak atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	dialer := net.Dialer{Timeout: 30 * time.Second}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for time.Now().Before(end) {
				dials.Add(1)
				c, err := dialer.Dial("tcp", addr)
				if err != nil {
					fails.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				established.Add(1)
				o := open.Add(1)
				for p := peak.Load(); o > p && !peak.CompareAndSwap(p, o); p = peak.Load() {
				}
				c.SetReadDeadline(end)
				if _, err := c.Read(buf); err != nil && !isTimeout(err) {
					closed.Add(1) // the server closed it
				}
				c.Close()
				open.Add(-1)
			}
		}()
	}
	report := func(tag string) {
		fmt.Printf("%s established=%d open=%d peak=%d dials=%d fails=%d closed_by_server=%d\n", tag,
			established.Load(), open.Load(), peak.Load(), dials.Load(), fails.Load(), closed.Load())
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				report("progress")
			}
		}
	}()
	wg.Wait()
	close(stop)
	report("final")
	return 0
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// probe is one /healthz request during or after the flood.
type probe struct {
	at   time.Duration // from the flood's start
	code int
	took time.Duration
	err  string
}

type connsResult struct {
	n, processes       int
	flood              time.Duration
	nofile             string
	runtimeLimits      string
	peakFDs            int
	established, peak  int64 // flood connections established (total), open at once (sum of the processes' peaks)
	dials, fails       int64
	closedByServer     int64
	overflows          int64 // TcpExtListenOverflows during the flood
	during, after      []probe
	placed, produced   int
	stored             int
	journalQuarantined []string
	recQuarantined     []string
	emfile             int // "too many open files" lines
	alive              bool
	err                string
}

// checkConns floods the runtime's API with n idle connections for d while
// calls are recorded, probes /healthz every second on a new connection,
// then counts what the runtime logged.
func checkConns(bin, launcher string, n int, d time.Duration, nofile string, keep bool) *connsResult {
	res := &connsResult{n: n, flood: d, nofile: nofile}
	if err := runConns(bin, launcher, keep, res); err != nil {
		res.err = err.Error()
		log.Printf("conns: %v", err)
	}
	return res
}

func runConns(bin, launcher string, keep bool, res *connsResult) error {
	e, err := newEnv(bin, launcher, envOpts{name: "conns", realtime: true}, keep)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.start(60 * time.Second); err != nil {
		return err
	}
	res.runtimeLimits = nofileOf(e.pid())
	self, err := os.Executable()
	if err != nil {
		return err
	}
	overflow0 := listenOverflows()
	t0 := time.Now()
	var floods []*exec.Cmd
	var fmu sync.Mutex
	finals := map[int]map[string]int64{}
	res.processes = (res.n + floodPerProcess - 1) / floodPerProcess
	var readers sync.WaitGroup
	for i := range res.processes {
		k := min(floodPerProcess, res.n-i*floodPerProcess)
		cmd := exec.Command(self, "-flood-child", e.httpAddr, "-conns", strconv.Itoa(k), "-flood", res.flood.String())
		cmd.Stderr = os.Stderr
		dieWithParent(cmd)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting a flood process: %w", err)
		}
		floods = append(floods, cmd)
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 0 {
					continue
				}
				kv := map[string]int64{}
				for _, x := range f[1:] {
					if k, v, ok := strings.Cut(x, "="); ok {
						kv[k], _ = strconv.ParseInt(v, 10, 64)
					}
				}
				fmu.Lock()
				finals[i] = kv
				fmu.Unlock()
			}
		}()
	}
	log.Printf("conns: %d flood processes holding %d idle connections to %s for %s", res.processes, res.n, e.httpAddr, res.flood)

	// Calls recorded all along, 5 a second.
	stopCalls := make(chan struct{})
	var callsWG sync.WaitGroup
	callsWG.Add(1)
	go func() {
		defer callsWG.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopCalls:
				return
			case <-t.C:
			}
			if _, err := e.sw.StartCall(call(fmt.Sprintf("flood-%d", i), 2500)); err == nil {
				res.placed++
			}
		}
	}()
	// Probes: one a second on a new connection, each waiting up to 60 s.
	var pmu sync.Mutex
	var pwg sync.WaitGroup
	probeOnce := func(into *[]probe) {
		defer pwg.Done()
		at := time.Since(t0)
		code, took, err := e.healthz(60 * time.Second)
		p := probe{at: at, code: code, took: took}
		if err != nil {
			p.err = err.Error()
		}
		pmu.Lock()
		*into = append(*into, p)
		pmu.Unlock()
	}
	// The runtime's descriptors, every second.
	fdsDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-fdsDone:
				return
			case <-time.After(time.Second):
			}
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.pid())); err == nil {
				res.peakFDs = max(res.peakFDs, len(ents))
			}
		}
	}()
	time.Sleep(2 * time.Second) // the flood under way
	lastLog := time.Now()
	for time.Since(t0) < res.flood-time.Second {
		pwg.Add(1)
		go probeOnce(&res.during)
		time.Sleep(time.Second)
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			pmu.Lock()
			ok, n := 0, len(res.during)
			for _, p := range res.during {
				if p.code == http.StatusOK {
					ok++
				}
			}
			pmu.Unlock()
			fmu.Lock()
			var open int64
			for _, kv := range finals {
				open += kv["open"]
			}
			fmu.Unlock()
			log.Printf("conns: %s: flood connections open %d, runtime fds %d, probes answered 200 so far %d of %d, runtime RSS %d MiB",
				time.Since(t0).Round(time.Second), open, res.peakFDs, ok, n, e.rssKB()/1024)
		}
	}
	pwg.Wait()
	close(stopCalls)
	callsWG.Wait()
	for _, c := range floods {
		c.Wait()
	}
	readers.Wait()
	res.overflows = listenOverflows() - overflow0
	for _, kv := range finals {
		res.established += kv["established"]
		res.peak += kv["peak"]
		res.dials += kv["dials"]
		res.fails += kv["fails"]
		res.closedByServer += kv["closed_by_server"]
	}
	// After the flood.
	for range 5 {
		pwg.Add(1)
		probeOnce(&res.after)
	}
	close(fdsDone)
	// Every recording the switch kept is stored.
	waitFor(90*time.Second, func() bool { return e.sw.Pending() == 0 && e.stored() >= e.produced() })
	res.produced, res.stored = e.produced(), e.stored()
	code, _, _ := e.healthz(10 * time.Second)
	res.alive = e.running() && code == http.StatusOK
	res.journalQuarantined = e.logLines("journal quarantined")
	res.recQuarantined = e.logLines("recording quarantined")
	res.emfile = len(e.logLines("too many open files"))
	log.Printf("conns: flood over: %d established (peak open %d), %d dials failed, %d closed by the runtime; %d calls placed, %d recordings kept by the switch, %d stored; journal quarantined %d, recording quarantined %d, EMFILE lines %d",
		res.established, res.peak, res.fails, res.closedByServer, res.placed, res.produced, res.stored, len(res.journalQuarantined), len(res.recQuarantined), res.emfile)
	return nil
}

// nofileOf reads a process's "Max open files" from /proc/<pid>/limits.
func nofileOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			f := strings.Fields(l)
			if len(f) >= 5 {
				return "soft " + f[3] + ", hard " + f[4]
			}
		}
	}
	return "unknown"
}

// listenOverflows reads TcpExtListenOverflows: connections the kernel
// refused because a listener's accept queue was full.
func listenOverflows() int64 {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if n == "ListenOverflows" && j < len(vals) {
				v, _ := strconv.ParseInt(vals[j], 10, 64)
				return v
			}
		}
	}
	return 0
}

// stats summarizes probes: answered 200 within probeDeadline, the
// latencies' median and maximum, and the failures.
func stats(ps []probe) (ok int, p50, pmax time.Duration, fails []string) {
	var lat []time.Duration
	for _, p := range ps {
		if p.code == http.StatusOK && p.took <= probeDeadline {
			ok++
		}
		if p.err != "" {
			fails = append(fails, fmt.Sprintf("at %s: %s", p.at.Round(time.Second), p.err))
		} else if p.code != http.StatusOK {
			fails = append(fails, fmt.Sprintf("at %s: %d", p.at.Round(time.Second), p.code))
		}
		lat = append(lat, p.took)
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p50, pmax = lat[len(lat)/2], lat[len(lat)-1]
	}
	return ok, p50, pmax, fails
}

func (r *connsResult) goals() []goal {
	ok, p50, pmax, _ := stats(r.during)
	aok, _, amax, _ := stats(r.after)
	return []goal{
		{"/healthz during the flood (a probe a second, new connection)",
			fmt.Sprintf("%d of %d answered 200 within %s; median %s, slowest %s", ok, len(r.during), probeDeadline,
				p50.Round(time.Millisecond), pmax.Round(time.Millisecond)),
			"every probe", len(r.during) > 0 && ok == len(r.during)},
		{"/healthz after the flood", fmt.Sprintf("%d of %d within %s (slowest %s)", aok, len(r.after), probeDeadline, amax.Round(time.Millisecond)),
			"every probe", len(r.after) > 0 && aok == len(r.after) && r.alive},
		{"false \"journal quarantined\" logged", fmt.Sprint(len(r.journalQuarantined)), "0", r.err == "" && len(r.journalQuarantined) == 0},
		{"recordings stored (calls placed during the flood)", fmt.Sprintf("%d of %d kept by the switch (%d calls)", r.stored, r.produced, r.placed),
			"all", r.produced > 0 && r.stored >= r.produced},
	}
}

func (r *connsResult) notes() []string {
	_, _, _, fails := stats(r.during)
	ns := []string{
		fmt.Sprintf("How: %d flood processes (each with its own RLIMIT_NOFILE) keep %d connections to the runtime's HTTP address open and idle (nothing sent) for %s; one the runtime closes is opened again at once. Meanwhile a call a 200 ms (5/s, 2.5 s each, recorded) and a `/healthz` probe a second on a new connection, each waiting up to 60 s; a probe counts as answered when it is 200 within %s.",
			r.processes, r.n, r.flood, probeDeadline),
		fmt.Sprintf("Limits: harness %s; the runtime: %s (its /proc limits); the kernel's accept queue: somaxconn %s, tcp_max_syn_backlog %s. The runtime held at most %d descriptors (sampled each second).",
			r.nofile, r.runtimeLimits, readProc("/proc/sys/net/core/somaxconn"), readProc("/proc/sys/net/ipv4/tcp_max_syn_backlog"), r.peakFDs),
		fmt.Sprintf("Flood: %d connections established over the run as the flood processes saw them (at most %d open at once, summed over the processes: more than the runtime's 256 plus the kernel's accept queue, because a handshake the full queue then drops looks established to the client until it is reset), %d dials failed (a SYN the full queue dropped, timed out after 30 s), %d closed by the runtime (to make room for a new one, or its 5 s read-header timeout); the kernel counted %d listen overflows (TcpExtListenOverflows, host-wide).",
			r.established, r.peak, r.fails, r.closedByServer, r.overflows),
		fmt.Sprintf("Runtime log: %d `journal quarantined`, %d `recording quarantined`, %d lines naming `too many open files`.", len(r.journalQuarantined), len(r.recQuarantined), r.emfile),
	}
	if len(fails) > 0 {
		ns = append(ns, fmt.Sprintf("Probes that failed: %d; the first: %s.", len(fails), strings.Join(fails[:min(len(fails), 5)], "; ")))
	}
	if ok, _, _, _ := stats(r.during); ok < len(r.during) && r.peakFDs < 256+64 {
		// A probe that failed was either closed before its answer (an
		// error) or answered late: its SYN met a full accept queue and
		// was sent again 1, 3, 7, 15 s later.
		var closed, late int
		for _, p := range r.during {
			switch {
			case p.err != "":
				closed++
			case p.code == http.StatusOK && p.took > probeDeadline:
				late++
			}
		}
		life := "unknown"
		if r.established > 0 {
			life = (time.Duration(float64(r.flood) * 256 / float64(r.established))).Round(time.Millisecond).String()
		}
		ns = append(ns, fmt.Sprintf("Why not met: the runtime never ran short of descriptors (at most %d), so its connection limit held. Past 256 connections its listener makes room by closing the oldest connection that has sent nothing, never one whose request has arrived (unread in the kernel or being read; runtime/httplimit.go); the flood opens each connection it loses again at once, so at %d connections in %s one that has sent nothing stays open about %s, and the kernel's accept queue stays full. Of the probes that failed, %d were closed before an answer and %d were answered late: their SYN met the full queue, which drops it (the listen overflows above), and the client sent it again 1, 3, 7, 15 s later. On loopback the flood and the probes come from one address; no choice of the runtime's keeps the kernel from dropping a SYN while the flood refills its queue as fast as the runtime empties it.",
			r.peakFDs, r.established, r.flood, life, closed, late))
	}
	return ns
}

func readProc(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
