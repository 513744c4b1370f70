package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/internal/bench/procstat"
	recpolruntime "github.com/recpol/recpol/runtime"
	"github.com/recpol/recpol/scenario"
)

// policy records the account's inbound offnet calls in WAV, with no
// upload: one recording per call of call().
const policy = `package recpol

accounts: acme: call_recording: account: inbound: offnet: {enabled: true, format: "wav"}
`

// call is an offnet caller to agent-1, answered at 200 ms and bridged,
// hung up at hangupMS.
func call(id string, hangupMS int64) scenario.Call {
	return scenario.Call{ID: id, Legs: []scenario.Leg{
		{Name: "a", CallerIDNumber: "+15550100", DestinationNumber: "2001",
			Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}},
		{Name: "b", Parent: "a", DestinationNumber: "2001",
			Variables: map[string]string{"recpol_account": "acme", "recpol_device": "agent-1", "recpol_network": "onnet"}},
	}, Steps: []scenario.Step{
		{AtMS: 0, Do: "create", Leg: "a"},
		{AtMS: 10, Do: "create", Leg: "b"},
		{AtMS: 200, Do: "answer", Leg: "b"},
		{AtMS: 200, Do: "answer", Leg: "a"},
		{AtMS: 210, Do: "bridge", Leg: "a", Other: "b"},
		{AtMS: hangupMS, Do: "hangup", Leg: "a"},
	}}
}

// envOpts configures an env.
type envOpts struct {
	name string
	// realtime runs the fake switch on the wall clock (Config.Realtime),
	// played by a goroutine of the env; otherwise the check drives its
	// virtual clock (Load, Run, Advance).
	realtime bool
	// history keeps the switch's commands and events (Commands, Events).
	history bool
	// pprof serves the runtime's profiler (RECPOL_PPROF_LISTEN).
	pprof bool
	// proxy, when set, is given the switch's address and returns the one
	// the runtime is to dial instead.
	proxy func(switchAddr string) (string, error)
	// wrap, when set, is the command the runtime runs under (its argv
	// before recpol's), e.g. prlimit.
	wrap []string
}

// env is one check's world: a fake switch on loopback, the real runtime
// binary as a child (through procstat's launcher, so that its peak RSS is
// its own), its directories, config and log.
type env struct {
	o                        envOpts
	bin, launcher            string
	dir, rec, storage, spool string
	cfgPath, logPath         string
	sw                       *fakeswitch.Server
	swLn                     net.Listener
	httpAddr, pprofAddr      string
	logf                     *os.File
	cancel                   context.CancelFunc
	playing                  sync.WaitGroup
	filesMu                  sync.Mutex
	files                    map[string]fakeswitch.FileRecord // kept recordings by path
	mu                       sync.Mutex
	proc                     *procstat.Proc
	exited                   []chan procstat.Usage
	keep                     bool
}

// freeAddr returns a loopback address nothing listens on (a moment ago).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func newEnv(bin, launcher string, o envOpts, keep bool) (*env, error) {
	dir, err := os.MkdirTemp("", "recpol-hostile-"+o.name+"-")
	if err != nil {
		return nil, err
	}
	e := &env{o: o, bin: bin, launcher: launcher, dir: dir, rec: filepath.Join(dir, "recordings"),
		storage: filepath.Join(dir, "storage"), spool: filepath.Join(dir, "spool"), keep: keep,
		files: map[string]fakeswitch.FileRecord{}}
	for _, d := range []string{filepath.Join(dir, "policies"), e.rec} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "policy.cue"), []byte(policy), 0o644); err != nil {
		return nil, err
	}
	e.sw = fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: e.rec, Realtime: o.realtime,
		NoHistory: !o.history, OnFile: func(f fakeswitch.FileRecord) {
			if f.Deleted || f.Error != "" {
				return
			}
			e.filesMu.Lock()
			e.files[f.Path] = f
			e.filesMu.Unlock()
		}})
	if e.swLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	go e.sw.Serve(e.swLn)
	dial := e.swLn.Addr().String()
	if o.proxy != nil {
		if dial, err = o.proxy(dial); err != nil {
			return nil, err
		}
	}
	if e.httpAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	if o.pprof {
		if e.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(`switches: [{name: "fs1", address: %q, password: "ClueCon", record_dir: %q, local_dir: %q}]
policies: "policies"
storage: "storage"
spool: "spool"
reload_debounce_ms: 200
log: level: "info"
http: listen: %q
`, dial, e.rec, e.rec, e.httpAddr)
	e.cfgPath = filepath.Join(dir, "runtime.cue")
	if err := os.WriteFile(e.cfgPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	e.logPath = filepath.Join(dir, "runtime.log")
	if e.logf, err = os.Create(e.logPath); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if o.realtime {
		e.playing.Add(1)
		go func() { // the switch's clock
			defer e.playing.Done()
			for ctx.Err() == nil {
				if err := e.sw.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
					log.Printf("fake switch: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	return e, nil
}

// close stops the runtime, the switch and removes the directory (unless
// -keep).
func (e *env) close() {
	e.stop()
	e.cancel()
	e.playing.Wait()
	e.sw.Close()
	e.logf.Close()
	if e.keep {
		log.Printf("%s: kept %s", e.o.name, e.dir)
		return
	}
	os.RemoveAll(e.dir)
}

// start starts the runtime and waits until it answers /healthz with 200
// (its switch connected, its policy live).
func (e *env) start(wait time.Duration) error {
	args := append(append([]string{}, e.o.wrap...), e.bin, "run", "--config", e.cfgPath)
	cmd := exec.Command(args[0], args[1:]...)
	if len(e.o.wrap) > 0 {
		p, err := exec.LookPath(args[0])
		if err != nil {
			return err
		}
		cmd.Path = p
	}
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = e.logf, e.logf
	cmd.Env = os.Environ()
	if e.pprofAddr != "" {
		cmd.Env = append(cmd.Env, recpolruntime.DebugListenEnv+"="+e.pprofAddr)
	}
	dieWithParent(cmd)
	p, err := procstat.Start(e.launcher, cmd)
	if err != nil {
		return fmt.Errorf("starting the runtime: %w", err)
	}
	done := make(chan procstat.Usage, 1)
	e.mu.Lock()
	e.proc = p
	e.exited = append(e.exited, done)
	e.mu.Unlock()
	go func() {
		u, _ := p.Wait() // a kill's exit status is expected
		done <- u
	}()
	deadline := time.Now().Add(wait)
	for {
		code, _, err := e.healthz(2 * time.Second)
		if err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("the runtime exited while starting (log %s)", e.logPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the runtime did not become ready in %s (last /healthz: %d %v; log %s)", wait, code, err, e.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running reports whether the runtime process started last is still up.
func (e *env) running() bool {
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.Exited():
		return false
	default:
		return true
	}
}

func (e *env) pid() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc == nil {
		return 0
	}
	return e.proc.Pid()
}

// sigkill ends the runtime with SIGKILL and waits for it to be gone.
func (e *env) sigkill() {
	e.mu.Lock()
	p := e.proc
	e.proc = nil
	e.mu.Unlock()
	if p == nil {
		return
	}
	p.Signal(syscall.SIGKILL)
	<-p.Exited()
}

// stop ends the runtime with SIGTERM, as an operator would, and kills it
// after 15 s.
func (e *env) stop() {
	e.mu.Lock()
	p := e.proc
	e.proc = nil
	e.mu.Unlock()
	if p == nil {
		return
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited():
	case <-time.After(15 * time.Second):
		p.Signal(syscall.SIGKILL)
		<-p.Exited()
	}
}

// peakRSSKB waits for every runtime process started to have exited and
// returns the highest of their peak RSS (KiB).
func (e *env) peakRSSKB() int64 {
	e.mu.Lock()
	exited := e.exited
	e.mu.Unlock()
	var peak int64
	for _, ch := range exited {
		u := <-ch
		ch <- u
		peak = max(peak, u.PeakRSS>>10)
	}
	return peak
}

// rssKB reads the running runtime's resident memory (VmRSS).
func (e *env) rssKB() int64 {
	pid := e.pid()
	if pid == 0 {
		return 0
	}
	rss, _, _ := procstat.Status(pid)
	return rss >> 10
}

// rssSplitKB reads how much of the running runtime's resident memory is
// anonymous and how much maps files (procstat.Resident), in KiB.
func (e *env) rssSplitKB() (anon, file int64) {
	pid := e.pid()
	if pid == 0 {
		return 0, 0
	}
	anon, file, _ = procstat.Resident(pid)
	return anon >> 10, file >> 10
}

// healthz asks the runtime's /healthz on a new connection.
func (e *env) healthz(timeout time.Duration) (int, time.Duration, error) {
	c := http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	t0 := time.Now()
	resp, err := c.Get("http://" + e.httpAddr + "/healthz")
	if err != nil {
		return 0, time.Since(t0), err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, time.Since(t0), nil
}

// scrape is the client of every /metrics read: one transport, so that
// its connections are reused rather than left idle in the runtime (each
// one a goroutine and buffers there until its idle timeout, which a
// memory measurement would count), and no gzip (a compressor allocated
// in the runtime by the read itself).
var scrape = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 2}}

// metrics reads the runtime's /metrics: each series' value by its name
// and labels as written.
func (e *env) metrics() (map[string]float64, error) {
	resp, err := scrape.Get("http://" + e.httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// metric sums the series of one metric name (every label set).
func metric(m map[string]float64, name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// afterGC has the runtime collect garbage twice (its profiler's heap
// profile with gc=1, as text: no gzip compressor allocated after the
// collection; the second empties what sync.Pools kept through the first),
// then reads its /metrics, uncompressed for the same reason.
func (e *env) afterGC() (map[string]float64, error) {
	if e.pprofAddr == "" {
		return nil, errors.New("the profiler is off")
	}
	for range 2 {
		resp, err := scrape.Get("http://" + e.pprofAddr + "/debug/pprof/heap?gc=1&debug=1")
		if err != nil {
			return nil, fmt.Errorf("collecting garbage: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return e.metrics()
}

// saveHeapProfile fetches the runtime's heap profile after a GC into path
// ("" discards it).
func (e *env) saveHeapProfile(path string) error {
	resp, err := scrape.Get("http://" + e.pprofAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	var w io.Writer = io.Discard
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// logLines returns the runtime log's lines containing s.
func (e *env) logLines(s string) []string {
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// produced is how many recordings the switch kept (files written).
func (e *env) produced() int {
	e.filesMu.Lock()
	defer e.filesMu.Unlock()
	return len(e.files)
}

// stored counts the recordings in storage (their JSON sidecars).
func (e *env) stored() int {
	n := 0
	filepath.WalkDir(e.storage, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			n++
		}
		return nil
	})
	return n
}

// quarantined lists the files in the store's quarantine directory.
func (e *env) quarantined() []string {
	ents, _ := os.ReadDir(filepath.Join(e.spool, "store", "quarantine"))
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

// waitFor polls cond every 100 ms until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
