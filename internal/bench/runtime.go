package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	eventsocket "github.com/fiorix/go-eventsocket/eventsocket"

	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/internal/bench/procstat"
	recpolruntime "github.com/recpol/recpol/runtime"
	"github.com/recpol/recpol/scenario"
)

// rtEnv is a fake switch, the tap in front of it and a runtime connected
// through the tap: a child `recpol run` process, or the runtime in this
// process (for profiles).
type rtEnv struct {
	dir     string
	srv     *fakeswitch.Server
	tap     *tap
	proc    *procstat.Proc // the child `recpol run`, through the launcher
	usage   procstat.Usage // its rusage, once it has exited
	cancel  context.CancelFunc
	done    chan error
	metrics string
	calls   int
	// call is the call setup placed again and again
	// (testdata/bench/call.json); callLength is when it hangs up, in
	// virtual ms from its start.
	call       scenario.Call
	callLength int64
}

// callAt is the benchmark call with its own id, starting at startMS.
func (e *rtEnv) callAt(id string, startMS int64) scenario.Call {
	return callFrom(e.call, id, startMS)
}

// callFrom is the call tmpl with its own id, starting at startMS.
func callFrom(tmpl scenario.Call, id string, startMS int64) scenario.Call {
	c := tmpl.Clone()
	c.ID, c.StartMS = id, startMS
	for i := range c.Legs {
		c.Legs[i].UUID = "" // derived again from the new id
	}
	return c
}

var envSeq atomic.Int64

// withRecordings is the benchmark call hung up so that both legs' recordings
// (started on answer) last ms milliseconds.
func (e *rtEnv) withRecordings(ms int64) (scenario.Call, error) {
	c := e.call.Clone()
	var answered int64 = -1
	for i, st := range c.Steps {
		switch st.Do {
		case "answer":
			answered = max(answered, st.AtMS)
		case "hangup":
			if answered < 0 {
				return c, fmt.Errorf("testdata/bench/call.json hangs up before it answers")
			}
			c.Steps[i].AtMS = answered + ms
			return c, nil
		}
	}
	return c, fmt.Errorf("testdata/bench/call.json has no hangup step")
}

// startRuntime starts a fake switch and a runtime with the main tree and
// the bench account as its policy.
func (r *runner) startRuntime(ctx context.Context, inProcess bool) (*rtEnv, error) {
	e := &rtEnv{dir: filepath.Join(r.cfg.Work, fmt.Sprintf("runtime-%d", envSeq.Add(1)))}
	if err := os.RemoveAll(e.dir); err != nil {
		return nil, err
	}
	policies := filepath.Join(e.dir, "policies")
	if err := copyTree(r.tree, policies); err != nil {
		return nil, err
	}
	account, err := os.ReadFile(filepath.Join(r.cfg.Root, "testdata", "bench", "bench.cue"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(policies, "bench.cue"), account, 0o644); err != nil {
		return nil, err
	}
	sc, err := scenario.ParseFile(filepath.Join(r.cfg.Root, "testdata", "bench", "call.json"))
	if err != nil {
		return nil, err
	}
	e.call = sc.Calls[0]
	e.callLength = e.call.EndMS()
	rec := filepath.Join(e.dir, "fs-recordings")
	e.srv = fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Quiet: 2 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go e.srv.Serve(ln)
	if e.tap, err = newTap(ln.Addr().String()); err != nil {
		e.srv.Close()
		return nil, err
	}
	httpAddr, err := freePort()
	if err != nil {
		e.stop()
		return nil, err
	}
	e.metrics = "http://" + httpAddr + "/metrics"
	conf := fmt.Sprintf(`switches: [{address: %q, password: "ClueCon", record_dir: %q, local_dir: %q}]
policies: "policies"
storage: "storage"
spool: "spool"
http: listen: %q
log: level: "warn"
`, e.tap.addr(), rec, rec, httpAddr)
	cfgPath := filepath.Join(e.dir, "runtime.cue")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		e.stop()
		return nil, err
	}
	if inProcess {
		cfg, err := recpolruntime.LoadConfig(cfgPath)
		if err != nil {
			e.stop()
			return nil, err
		}
		rt, err := recpolruntime.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			e.stop()
			return nil, err
		}
		rctx, cancel := context.WithCancel(ctx)
		e.cancel, e.done = cancel, make(chan error, 1)
		go func() { e.done <- rt.Run(rctx) }()
	} else {
		cmd := exec.Command(r.cfg.Recpol, "run", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(r.cfg.Work, "xdg-cache"))
		logf, err := os.Create(filepath.Join(e.dir, "runtime.log"))
		if err != nil {
			e.stop()
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if e.proc, err = procstat.Start(r.launcher, cmd); err != nil {
			logf.Close()
			e.stop()
			return nil, err
		}
		e.done = make(chan error, 1)
		go func() {
			u, err := e.proc.Wait()
			e.usage = u
			logf.Close()
			e.done <- err
		}()
	}
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := e.srv.WaitClients(wctx, 1); err != nil {
		e.stop()
		return nil, fmt.Errorf("the runtime did not connect: %w%s", err, e.logTail())
	}
	for {
		if _, err := e.counts(); err == nil {
			break
		}
		if wctx.Err() != nil {
			e.stop()
			return nil, fmt.Errorf("the runtime's /metrics did not answer%s", e.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e, nil
}

func (e *rtEnv) logTail() string {
	b, err := os.ReadFile(filepath.Join(e.dir, "runtime.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\n" + tail(string(b), 2000)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (e *rtEnv) stop() {
	if e.proc != nil {
		e.proc.Signal(syscall.SIGINT)
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			e.proc.Signal(syscall.SIGKILL)
			<-e.done
		}
		e.proc = nil
	}
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
	if e.tap != nil {
		e.tap.close()
	}
	e.srv.Close()
	os.RemoveAll(e.dir)
}

// counts are the runtime's recording counters, from its /metrics.
type counts struct {
	stopped  int // RECORD_STOP handled by the engine (recpol_recordings_total{event="stopped"})
	failed   int // starts the switch refused, the call already gone (event="failed")
	finished int // handed over by the store, every outcome (recpol_recordings_finished_total)
	dropped  int // commands dropped because the engine's command queue was full (event="command_dropped")
}

func (e *rtEnv) counts() (counts, error) {
	var c counts
	resp, err := http.Get(e.metrics)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("/metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case strings.HasPrefix(l, "recpol_recordings_finished_total{"):
			c.finished += int(v)
		case strings.HasPrefix(l, `recpol_recordings_total{event="stopped"}`):
			c.stopped = int(v)
		case strings.HasPrefix(l, `recpol_recordings_total{event="failed"}`):
			c.failed = int(v)
		case strings.HasPrefix(l, `recpol_recordings_total{event="command_dropped"}`):
			c.dropped = int(v)
		}
	}
	return c, sc.Err()
}

// wait waits until over(counts) reaches n.
func (e *rtEnv) wait(ctx context.Context, what string, n int, over func(counts) int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := e.counts()
		if err == nil && over(c) >= n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d recordings %s after %s (%v)%s", over(c), n, what, timeout, err, e.logTail())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func stoppedOrFailed(c counts) int  { return c.stopped + c.failed }
func finishedOrFailed(c counts) int { return c.finished + c.failed }

// rss returns the child's current and peak resident set size.
func (e *rtEnv) rss() (cur, peak int64) {
	if e.proc == nil {
		return 0, 0
	}
	cur, peak, _ = procstat.Status(e.proc.Pid())
	return cur, peak
}

// cpu returns the CPU time (user + system) the child has used so far.
func (e *rtEnv) cpu() (time.Duration, error) {
	if e.proc == nil {
		return 0, errors.New("the runtime runs in the harness's process")
	}
	return procstat.CPU(e.proc.Pid())
}

func (e *rtEnv) nextID() string {
	e.calls++
	return fmt.Sprintf("bench-%06d", e.calls)
}

// throughput places n calls as fast as the runtime keeps up: batches of
// 50 calls start together on the virtual clock, which moves on by 150 ms
// once the runtime has sent the recording commands of the batch before the
// previous one; the calls hang up 1.6 s of virtual time after they start,
// ten batches later.
// It returns the time from the first call to the last RECORD_STOP handled
// by the engine, and to the last recording handed over by the store.
func (e *rtEnv) throughput(ctx context.Context, n int, tmpl scenario.Call) (stopped, stored time.Duration, err error) {
	const batch, step, lag = 50, 150 * time.Millisecond, 2
	c0, err := e.counts()
	if err != nil {
		return 0, 0, err
	}
	starts0 := e.tap.starts.Load()
	start := time.Now()
	placed := 0
	for placed < n {
		k := min(batch, n-placed)
		for i := 0; i < k; i++ {
			if _, err := e.srv.StartCall(callFrom(tmpl, e.nextID(), 0)); err != nil {
				return 0, 0, err
			}
		}
		placed += k
		e.srv.Advance(step)
		// Two batches may be in the runtime's hands; the calls of older
		// batches must have their recordings started before the clock
		// moves on (they hang up tmpl.EndMS()/step batches later).
		if err := e.waitStarts(ctx, starts0, 2*max(0, placed-lag*batch)); err != nil {
			return 0, 0, err
		}
	}
	if err := e.waitStarts(ctx, starts0, 2*placed); err != nil {
		return 0, 0, err
	}
	e.srv.Advance(time.Duration(2*tmpl.EndMS()) * time.Millisecond)
	if err := e.wait(ctx, "stopped", stoppedOrFailed(c0)+2*n, stoppedOrFailed, 60*time.Second); err != nil {
		return 0, 0, err
	}
	stopped = time.Since(start)
	if err := e.wait(ctx, "stored", finishedOrFailed(c0)+2*n, finishedOrFailed, 120*time.Second); err != nil {
		return 0, 0, err
	}
	return stopped, time.Since(start), nil
}

// waitStarts waits until the tap has seen n uuid_record starts since
// starts0.
func (e *rtEnv) waitStarts(ctx context.Context, starts0 int64, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for e.tap.starts.Load()-starts0 < int64(n) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d recordings started after 30 s%s", e.tap.starts.Load()-starts0, n, e.logTail())
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// paced places n calls at rate setups per second of wall-clock time: the
// virtual clock follows the wall clock, advanced every millisecond. It
// returns the wall time until the last call started and, as a non-nil
// summary, what
// became of the recordings (failed starts, dropped commands); a real
// failure comes with a zero duration.
func (e *rtEnv) paced(ctx context.Context, n, rate int) (startsTook time.Duration, err error) {
	c0, err := e.counts()
	if err != nil {
		return 0, err
	}
	sc := &scenario.Scenario{}
	for i := 0; i < n; i++ {
		sc.Calls = append(sc.Calls, e.callAt(e.nextID(), int64(i)*1000/int64(rate)))
	}
	if err := e.srv.Load(sc); err != nil {
		return 0, err
	}
	v0 := e.srv.Now()
	end := time.Duration(sc.Calls[n-1].StartMS+e.callLength+10) * time.Millisecond
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	lastStart := time.Duration(sc.Calls[n-1].StartMS) * time.Millisecond
	for e.srv.Now()-v0 < end {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
		if d := v0 + time.Since(start) - e.srv.Now(); d > 0 {
			e.srv.Advance(d)
		}
		if startsTook == 0 && e.srv.Now()-v0 >= lastStart {
			startsTook = time.Since(start)
		}
	}
	took := startsTook
	// A start command dropped from a full queue leaves a recording that
	// never finishes: the wait ends at its timeout and the shortfall is
	// reported.
	if err := e.wait(ctx, "stored", finishedOrFailed(c0)+2*n, finishedOrFailed, 60*time.Second); err != nil {
		c, _ := e.counts()
		return took, fmt.Errorf("%d of %d recordings finished or failed, %d commands dropped", finishedOrFailed(c)-finishedOrFailed(c0), 2*n, c.dropped-c0.dropped)
	}
	c, _ := e.counts()
	return took, fmt.Errorf("%d recordings failed to start, %d commands dropped", c.failed-c0.failed, c.dropped-c0.dropped)
}

// peerRead feeds frames (event frames as the runtime received them) to
// go-eventsocket's own client over loopback TCP and returns how long it
// took to read all n events.
func peerRead(frames []byte, n int) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	ready := make(chan struct{})
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		if _, err := io.WriteString(c, "Content-Type: auth/request\n\n"); err != nil {
			srvErr <- err
			return
		}
		for { // auth <pw>, then an empty line
			l, err := r.ReadString('\n')
			if err != nil {
				srvErr <- err
				return
			}
			if strings.TrimSpace(l) == "" {
				break
			}
		}
		if _, err := io.WriteString(c, "Content-Type: command/reply\nReply-Text: +OK accepted\n\n"); err != nil {
			srvErr <- err
			return
		}
		<-ready
		_, err = c.Write(frames)
		srvErr <- err
		io.Copy(io.Discard, r)
	}()
	conn, err := eventsocket.Dial(ln.Addr().String(), "ClueCon")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	close(ready)
	for i := 0; i < n; i++ {
		if _, err := conn.ReadEvent(); err != nil {
			return 0, fmt.Errorf("go-eventsocket: event %d of %d: %w", i, n, err)
		}
	}
	took := time.Since(start)
	if err := <-srvErr; err != nil {
		return 0, err
	}
	return took, nil
}

var errNoFrames = errors.New("no event frames were captured")
