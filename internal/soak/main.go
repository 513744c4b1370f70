// Command soak runs the recpol runtime (the real binary, `recpol run`)
// against the fake switch at a steady rate of call setups and checks that
// no recording is lost or duplicated. It runs two phases:
//
//   - kill: -kill-calls calls (default 1000) while the runtime is killed
//     with SIGKILL at random moments and restarted;
//   - soak: -rate call setups per second for -duration, the policy
//     reloaded every -reload, the upload server failing -fail of its
//     requests with 500.
//
// Each phase then waits (-drain at most) until every upload is done and
// compares, by recording id, the recordings the switch wrote with those
// the store holds, and, by object name, the recordings with an upload URL
// with the objects the upload server received, and the count with the
// simulator's prediction. The result is written to -out (RELIABILITY.md).
//
//	go run ./internal/soak -duration 30m -rate 200 -out RELIABILITY.md
//
// The upload server answers at once unless -upload-delay holds every
// request that long: a slow server leaves more uploads in flight when the
// runtime is killed, and those it had received are sent again after the
// restart under the same name (re-sent; delivery is at-least-once):
//
//	go run ./internal/soak -duration 0 -kill-calls 12000 -kill-rate 100 -upload-delay 400ms -out /tmp/resend.md
//
// SOAK_DEBUG=1 keeps the fake switch's history, logs how long after a
// leg's answer its recording's start reached the switch, and serves pprof
// on 127.0.0.1:6061.
//
// SOAK_PROFILE=<prefix> profiles the soak's own process (the fake switch
// runs in it), without the history SOAK_DEBUG keeps: its CPU to
// <prefix>.cpu and every contended lock to <prefix>.mutex, written when
// the run ends (go tool pprof <prefix>.mutex).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/internal/bench"
	"github.com/recpol/recpol/internal/bench/procstat"
	recpolruntime "github.com/recpol/recpol/runtime"
	"github.com/recpol/recpol/runtime/catalog"
	"github.com/recpol/recpol/runtime/store"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/simulate"
)

func main() {
	duration := flag.Duration("duration", 30*time.Minute, "how long the soak phase places calls")
	rate := flag.Float64("rate", 200, "call setups per second")
	killCalls := flag.Int("kill-calls", 1000, "calls of the kill -9 phase (0: skip it)")
	killRate := flag.Float64("kill-rate", 50, "call setups per second in the kill -9 phase")
	reload := flag.Duration("reload", time.Minute, "policy reload interval in the soak phase")
	fail := flag.Float64("fail", 0.10, "share of upload requests answered 500")
	uploadDelay := flag.Duration("upload-delay", 0, "how long the upload server holds each request before it answers (a slow object store)")
	drain := flag.Duration("drain", 5*time.Minute, "how long a phase waits, once its calls have ended, for its recordings to be stored and uploaded")
	out := flag.String("out", "RELIABILITY.md", "the report")
	keep := flag.Bool("keep", false, "keep the working directory")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if os.Getenv("SOAK_DEBUG") != "" {
		runtime.SetMutexProfileFraction(5)
		runtime.SetBlockProfileRate(100000)
		go http.ListenAndServe("127.0.0.1:6061", nil)
	}

	calls := float64(*killCalls) + *rate*duration.Seconds()
	if err := checkDisk(os.TempDir(), calls); err != nil {
		log.Fatal(err)
	}
	stopProfile := startProfile(os.Getenv("SOAK_PROFILE"))
	defer stopProfile()

	bin, launcher, err := build()
	if err != nil {
		log.Fatal(err)
	}
	var results []*result
	if *killCalls > 0 {
		r, err := runPhase(phase{name: "kill", bin: bin, launcher: launcher, calls: *killCalls, rate: *killRate, fail: *fail,
			uploadDelay: *uploadDelay, drain: *drain, kill: true, keep: *keep})
		if err != nil {
			log.Fatal(err)
		}
		results = append(results, r)
	}
	if *duration > 0 {
		r, err := runPhase(phase{name: "soak", bin: bin, launcher: launcher, duration: *duration, rate: *rate, fail: *fail,
			uploadDelay: *uploadDelay, drain: *drain, reload: *reload, keep: *keep})
		if err != nil {
			log.Fatal(err)
		}
		results = append(results, r)
	}
	os.RemoveAll(filepath.Dir(bin))
	cmdline := "go run ./internal/soak " + strings.Join(os.Args[1:], " ")
	rep := report(results, cmdline)
	// What was written by hand below the marker (notes, the fuzz table)
	// stays.
	if old, err := os.ReadFile(*out); err == nil {
		if i := strings.Index(string(old), bench.HandMarker); i >= 0 {
			rep += "\n" + string(old[i:])
		}
	}
	if err := os.WriteFile(*out, []byte(rep), 0o644); err != nil {
		log.Fatal(err)
	}
	bad := false
	for _, r := range results {
		log.Printf("%s: %s", r.name, r.summary())
		for _, g := range r.goals() {
			log.Printf("%s: %s: %s (goal %s): %s", r.name, g.name, g.value, g.goal, g.verdict())
		}
		bad = bad || r.lost() > 0 || r.duplicates > 0 || r.dupObjects() > 0
	}
	if bad {
		stopProfile()
		os.Exit(1)
	}
}

// bytesPerCall is the disk a call of the soak takes in its working
// directory until the phase ends (its recordings in storage with their
// sidecars, the catalog): 94 KB measured at 200 calls/s in 2026-12.
const bytesPerCall = 100 << 10

// checkDisk refuses a run whose calls would not fit in dir (the
// temporary directory, where the phases keep every recording until they
// end): a disk that fills midway ends the run without a report.
func checkDisk(dir string, calls float64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("checking the free space in %s: %w", dir, err)
	}
	free := float64(st.Bavail) * float64(st.Bsize)
	if need := calls * bytesPerCall; need > free {
		return fmt.Errorf("the soak's %.0f calls need about %.1f GB in %s (TMPDIR), and %.1f GB are free: free some, set TMPDIR, or shorten -duration", calls, need/1e9, dir, free/1e9)
	}
	return nil
}

// startProfile starts the CPU profile of the process to prefix.cpu and
// records contended locks; the function it returns stops the CPU profile
// and writes the mutex profile to prefix.mutex. An empty prefix profiles
// nothing.
func startProfile(prefix string) (stop func()) {
	if prefix == "" {
		return func() {}
	}
	runtime.SetMutexProfileFraction(1)
	cpu, err := os.Create(prefix + ".cpu")
	if err != nil {
		log.Fatalf("profile: %v", err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		log.Fatalf("profile: %v", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			cpu.Close()
			f, err := os.Create(prefix + ".mutex")
			if err != nil {
				log.Printf("profile: %v", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("mutex").WriteTo(f, 0); err != nil {
				log.Printf("profile: %v", err)
			}
		})
	}
}

// gauges reads the runtime's state gauges from its /metrics: how far
// behind it is (event backlog and lag, finish queue) and what it holds
// (legs, recordings), for the progress lines.
func gauges(addr string) string {
	var out []string
	text := metricsText(addr)
	for _, g := range []string{"recpol_event_backlog", "recpol_event_lag_seconds", "recpol_finish_queue", "recpol_engine_legs", "recpol_engine_recordings"} {
		eachSample(text, g, func(v float64) {
			out = append(out, strings.TrimPrefix(g, "recpol_")+"="+strconv.FormatFloat(v, 'g', -1, 64))
		})
	}
	if len(out) == 0 {
		return ""
	}
	return ", " + strings.Join(out, " ")
}

// lateStart is how late after the answer a start may come before the
// agent's recording (2.8 s from the answer to the hangup) falls under its
// 2 s record_min_sec and is discarded.
const lateStart = 800 * time.Millisecond

// lagSummary says the median, 90th and 99th percentiles and the largest
// of lags, and how many are over late.
func lagSummary(lags []time.Duration, late time.Duration) string {
	if len(lags) == 0 {
		return ""
	}
	lags = slices.Clone(lags)
	slices.Sort(lags)
	q := func(p float64) time.Duration { return lags[int(p*float64(len(lags)-1))] }
	over := len(lags) - sort.Search(len(lags), func(i int) bool { return lags[i] > late })
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s; %d of %d later than %s", q(0.5), q(0.9), q(0.99), lags[len(lags)-1], over, len(lags), late)
}

// startDelay reads the runtime's recpol_start_delay_seconds histogram from
// its /metrics (how long a start took inside the runtime, from reading the
// event that decided it to writing its command) and says its median, 99th
// percentile and count, each quantile as the upper bound of its bucket.
func startDelay(addr string) string {
	return histogramQuantiles(metricsText(addr), "recpol_start_delay_seconds")
}

// metricsText reads the runtime's /metrics at addr ("" when it cannot).
func metricsText(addr string) string {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return ""
	}
	return string(b)
}

// histogramQuantiles says the median and 99th percentile of the histogram
// name in a Prometheus text exposition, summed over its series, as the
// upper bounds of the buckets they fall in, and the observations' count.
func histogramQuantiles(text, name string) string {
	counts := map[float64]float64{} // cumulative, by upper bound
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		i := strings.Index(line, `le="`)
		if i < 0 {
			continue
		}
		le, rest, ok := strings.Cut(line[i+4:], `"`)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		bound := math.Inf(1)
		if le != "+Inf" {
			if bound, err = strconv.ParseFloat(le, 64); err != nil {
				continue
			}
		}
		counts[bound] += n
	}
	bounds := make([]float64, 0, len(counts))
	for b := range counts {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 || counts[bounds[len(bounds)-1]] == 0 {
		return ""
	}
	total := counts[bounds[len(bounds)-1]]
	q := func(p float64) string {
		for _, b := range bounds {
			if counts[b] >= p*total {
				if math.IsInf(b, 1) {
					return fmt.Sprintf("> %s", fmtSeconds(bounds[len(bounds)-2]))
				}
				return "<= " + fmtSeconds(b)
			}
		}
		return "?"
	}
	return fmt.Sprintf("p50 %s, p99 %s, %.0f starts", q(0.5), q(0.99), total)
}

// fmtSeconds writes a bucket bound in seconds as a duration.
func fmtSeconds(s float64) string { return time.Duration(s * float64(time.Second)).String() }

// build compiles the recpol binary the runtime runs as, and the launcher
// that starts it so that its peak RSS and CPU are its own
// (internal/bench/procstat).
func build() (bin, launcher string, err error) {
	dir, err := os.MkdirTemp("", "recpol-soak-bin-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "recpol")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/recpol")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("building recpol: %w", err)
	}
	if launcher, err = procstat.Build(".", dir); err != nil {
		return "", "", err
	}
	return bin, launcher, nil
}

type phase struct {
	name     string
	bin      string
	launcher string
	calls    int           // stop after this many calls (kill phase)
	duration time.Duration // or after this long
	rate     float64
	fail     float64
	// uploadDelay holds every upload request this long before its answer.
	uploadDelay time.Duration
	// drain bounds the wait for the last recordings to be stored and
	// uploaded.
	drain  time.Duration
	reload time.Duration
	kill   bool
	keep   bool
}

type result struct {
	name                       string
	phase                      phase
	ran                        time.Duration
	placed                     int
	expected                   int // kept recordings the simulator predicts
	produced                   int // files the switch kept
	stored                     int // produced files the store holds
	missing                    []string
	uploadsExpected            int
	uploaded                   int // recordings with a URL whose object name got a 2xx
	uploadRequests, upload500s int64
	duplicates                 int // recordings stored twice (same leg, scope and origin)
	// The upload server's objects, by name: objects is the names answered
	// 2xx at least once; resent the 2xx answers beyond the first of a
	// name (the same object written again: idempotent); strays the names
	// no stored recording has; extraObjects the names beyond the first
	// of one leg, scope and origin (the same recording as two objects);
	// shared the recordings whose name another recording also has (one
	// object for two recordings).
	objects, resent               int
	strays, extraObjects, shared  []string
	dupStored, dupUploads         []string
	reloads, kills                int
	ownExits                      int   // runtime processes that exited on their own (started again)
	peakRSSKB                     int64 // the highest of the runtime processes' own peaks
	cpu                           time.Duration
	discarded, quarantined, notes int
	// The catalog at the end, by state, and the sidecars in storage.
	catalog  map[catalog.State]int
	sidecars int
	// switchLag is how long after its leg's answer each recording
	// started on the switch (lagSummary).
	switchLag string
	// timeline is the phase second by second (where the late starts
	// fall).
	timeline *timeline
	// startDelay is the runtime's recpol_start_delay_seconds at the end
	// of the phase (histogramQuantiles): the part of a start's delay
	// spent inside the runtime (the last runtime process's, in the kill
	// phase).
	startDelay string
	// load0 and load1 are the load averages when the phase started and
	// once its last recording was stored and uploaded.
	load0, load1 string
}

func (r *result) lost() int { return len(r.missing) + (r.uploadsExpected - r.uploaded) }

// dupObjects counts the objects the upload server holds beyond one per
// recording: a second name for the same leg, scope and origin, or a name
// no stored recording has. The same name sent again is re-sent, not a
// duplicate: the server holds one object.
func (r *result) dupObjects() int { return len(r.strays) + len(r.extraObjects) }

// resentRate is re-sent uploads per object received.
func (r *result) resentRate() float64 {
	if r.objects == 0 {
		return 0
	}
	return float64(r.resent) / float64(r.objects)
}

// made is the share of the recordings the simulator predicts that the
// switch produced.
func (r *result) made() float64 {
	if r.expected == 0 {
		return 0
	}
	return float64(r.produced) / float64(r.expected)
}

// goal is one of issue 15's goals for a phase, with its verdict.
type goal struct {
	name, value, goal string
	met               bool
}

func (g goal) verdict() string {
	if g.met {
		return "MET"
	}
	return "**NOT MET**"
}

// goals are the phase's goals: every predicted recording made (the soak
// phase only: in the kill phase a call whose decisions fell while the
// runtime was down cannot be recorded), none lost, none duplicated, the
// runtime's peak RSS under 200 MB.
func (r *result) goals() []goal {
	var gs []goal
	if !r.phase.kill {
		gs = append(gs, goal{"recordings made of those predicted", fmt.Sprintf("%.1f%% (%d of %d)", 100*r.made(), r.produced, r.expected), "100%", r.expected > 0 && r.produced >= r.expected})
	}
	gs = append(gs,
		goal{"recordings lost", fmt.Sprint(r.lost()), "0", r.lost() == 0},
		goal{"recordings duplicated", fmt.Sprint(r.duplicates), "0", r.duplicates == 0},
		goal{"upload objects duplicated (by name)", fmt.Sprint(r.dupObjects()), "0", r.dupObjects() == 0},
		goal{"runtime peak RSS", fmt.Sprintf("%d MiB", r.peakRSSKB/1024), "< 200 MB", r.peakRSSKB > 0 && r.peakRSSKB<<10 < 200<<20})
	return gs
}

func (r *result) summary() string {
	return fmt.Sprintf("%d calls in %s (%.1f/s), %d recordings expected, %d produced, %d stored, %d uploaded of %d, lost %d, duplicates %d, upload objects %d, re-sent %d (%.1f%%), duplicated objects %d, names shared %d, kills %d, runtime exits on its own %d, reloads %d, peak RSS %d MiB, CPU %s (%s per call)",
		r.placed, r.ran.Round(time.Second), float64(r.placed)/r.ran.Seconds(), r.expected, r.produced, r.stored,
		r.uploaded, r.uploadsExpected, r.lost(), r.duplicates, r.objects, r.resent, 100*r.resentRate(), r.dupObjects(), len(r.shared),
		r.kills, r.ownExits, r.reloads, r.peakRSSKB/1024, r.cpu.Round(time.Millisecond), r.cpuPerCall())
}

func (r *result) cpuPerCall() time.Duration {
	if r.placed == 0 {
		return 0
	}
	return (r.cpu / time.Duration(r.placed)).Round(time.Microsecond)
}

// policy is the soak's policy: the account records offnet calls, the
// agent's phone records what it answers (dropped under 2 s), *72/*73 mask
// and unmask; every recording is uploaded. n adds a dummy account, so that
// each reload gives a new table version without changing the calls'
// recordings.
func policy(url string, n int) string {
	return fmt.Sprintf(`package recpol

accounts: acme: {
	call_recording: account: inbound: offnet: {enabled: true, format: "wav", url: %q}
	users: agent: {
		call_recording: inbound: any: {enabled: true, format: "wav", record_min_sec: 2, url: %q}
		metaflows: numbers: {
			"72": {module: "record_call", data: action: "mask"}
			"73": {module: "record_call", data: action: "unmask"}
		}
	}
	devices: "agent-1": owner: "agent"
}
accounts: "reload-%d": {}
`, url, url, n)
}

// call is call i: an offnet caller to agent-1, answered, 3 s long; every
// fifth call masks a second of it; every tenth hangs up before the agent's
// recording reaches its 2 s minimum.
func call(prefix string, i int) scenario.Call {
	id := fmt.Sprintf("%s-%d", prefix, i)
	hangup := int64(3000)
	if i%10 == 9 {
		hangup = 1500
	}
	steps := []scenario.Step{
		{AtMS: 0, Do: "create", Leg: "a"},
		{AtMS: 10, Do: "create", Leg: "b"},
		{AtMS: 200, Do: "answer", Leg: "b"},
		{AtMS: 200, Do: "answer", Leg: "a"},
		{AtMS: 210, Do: "bridge", Leg: "a", Other: "b"},
	}
	if i%5 == 0 {
		steps = append(steps, scenario.Step{AtMS: 1000, Do: "dtmf", Leg: "b", Digits: "*72"},
			scenario.Step{AtMS: 2000, Do: "dtmf", Leg: "b", Digits: "*73"})
	}
	steps = append(steps, scenario.Step{AtMS: hangup, Do: "hangup", Leg: "a"})
	return scenario.Call{ID: id, Legs: []scenario.Leg{
		{Name: "a", CallerIDNumber: "+15550100", DestinationNumber: "2001",
			Variables: map[string]string{"recpol_account": "acme", "recpol_network": "offnet"}},
		{Name: "b", Parent: "a", DestinationNumber: "2001",
			Variables: map[string]string{"recpol_account": "acme", "recpol_device": "agent-1", "recpol_network": "onnet"}},
	}, Steps: steps}
}

// uploads is the upload server: it answers 500 to a share of requests and
// counts the 2xx it gives per upload name. With a delay it holds each
// request that long once it has read the body, then answers; a request
// whose client is gone by then (the runtime killed) is counted all the
// same, as an object store keeps what it received in full.
type uploads struct {
	fail     float64
	delay    time.Duration
	mu       sync.Mutex
	ok       map[string]int
	requests atomic.Int64
	failed   atomic.Int64
}

func (u *uploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.requests.Add(1)
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if u.delay > 0 {
		time.Sleep(u.delay)
	}
	if rand.Float64() < u.fail {
		u.failed.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	u.mu.Lock()
	u.ok[r.URL.Path]++
	u.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func runPhase(p phase) (*result, error) {
	res := &result{name: p.name, phase: p, load0: procstat.LoadAvg(), timeline: &timeline{}}
	dir, err := os.MkdirTemp("", "recpol-soak-"+p.name+"-")
	if err != nil {
		return nil, err
	}
	if !p.keep {
		defer os.RemoveAll(dir)
	}
	up := &uploads{fail: p.fail, delay: p.uploadDelay, ok: map[string]int{}}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	usrv := &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second}
	go usrv.Serve(uln)
	defer usrv.Close()
	url := "http://" + uln.Addr().String() + "/rec"

	policies := filepath.Join(dir, "policies")
	rec := filepath.Join(dir, "recordings")
	for _, d := range []string{policies, rec} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	writePolicy := func(n int) error {
		tmp := filepath.Join(dir, "policy.tmp")
		if err := os.WriteFile(tmp, []byte(policy(url, n)), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(policies, "policy.cue"))
	}
	if err := writePolicy(0); err != nil {
		return nil, err
	}
	cres := compiler.Options{}.CompileFiles([]compiler.File{{Name: "policy.cue", Data: []byte(policy(url, 0))}})
	if cres.Table == nil {
		return nil, fmt.Errorf("soak policy: %v", cres.Diagnostics)
	}
	// What the simulator predicts for each kind of call.
	predicted := map[int]int{}
	for k := 0; k < 10; k++ {
		ps, err := simulate.PredictScenario(cres.Table, &scenario.Scenario{Calls: []scenario.Call{call("predict", k)}})
		if err != nil {
			return nil, err
		}
		for _, pr := range ps {
			if pr.Kept {
				predicted[k]++
			}
		}
	}

	var filesMu sync.Mutex
	// v0 is the switch's clock when the first call is placed: the
	// timeline's seconds count from it.
	var v0 atomic.Value
	v0.Store(time.Duration(0))
	files := map[string]fakeswitch.FileRecord{}
	var startLags []time.Duration // per recording started after its leg's answer
	srv := fakeswitch.New(fakeswitch.Config{Password: "ClueCon", RecordingsDir: rec, Realtime: true,
		NoHistory: os.Getenv("SOAK_DEBUG") == "", OnFile: func(f fakeswitch.FileRecord) {
			if f.AnsweredAt > 0 {
				filesMu.Lock()
				startLags = append(startLags, f.StartedAt-f.AnsweredAt)
				filesMu.Unlock()
				res.timeline.start(f.AnsweredAt-v0.Load().(time.Duration), f.StartedAt-f.AnsweredAt > lateStart)
			}
			if f.Deleted || f.Error != "" {
				return
			}
			filesMu.Lock()
			files[strings.TrimSuffix(filepath.Base(f.Path), filepath.Ext(f.Path))] = f
			filesMu.Unlock()
		}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(ln)
	defer srv.Close()

	// The runtime's HTTP API, for its gauges in the progress lines. Every
	// restart binds it again: a port of the ephemeral range could be taken
	// in between by any connection the host makes.
	httpAddr, err := reservedPort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`switches: [{name: "fs1", address: %q, password: "ClueCon", record_dir: %q, local_dir: %q}]
policies: "policies"
storage: "storage"
spool: "spool"
reload_debounce_ms: 200
log: level: "warn"
http: listen: %q
`, ln.Addr().String(), rec, rec, httpAddr)
	cfgPath := filepath.Join(dir, "runtime.cue")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "runtime.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	rt := &child{bin: p.bin, launcher: p.launcher, cfg: cfgPath, log: logf}
	if err := rt.start(); err != nil {
		return nil, err
	}
	defer rt.kill()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = srv.WaitClients(wctx, 1)
	wcancel()
	if err != nil {
		return nil, fmt.Errorf("the runtime did not connect: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runWG sync.WaitGroup
	runWG.Add(1)
	go func() { // the switch's clock
		defer runWG.Done()
		for ctx.Err() == nil {
			if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Printf("fake switch: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
	}()

	v0.Store(srv.Now())
	start := time.Now()
	runWG.Add(1)
	go func() {
		defer runWG.Done()
		sampleTimeline(ctx, res.timeline, start, httpAddr, filepath.Join(dir, "spool", "store", "catalog.db-wal"), srv)
	}()
	log.Printf("%s: placing calls at %.0f/s", p.name, p.rate)
	nextReload := start.Add(p.reload)
	nextKill := start.Add(randDur(time.Second, 3*time.Second))
	interval := time.Duration(float64(time.Second) / p.rate)
	lastLog := start
	for i := 0; ; i++ {
		// Keep the average rate: call i is due at start + i*interval.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		if p.calls > 0 && i >= p.calls || p.duration > 0 && now.Sub(start) >= p.duration {
			break
		}
		c := call(p.name, i)
		if _, err := srv.StartCall(c); err != nil {
			return nil, err
		}
		res.placed++
		res.expected += predicted[i%10]
		if p.reload > 0 && now.After(nextReload) {
			res.reloads++
			res.timeline.reloaded(now.Sub(start))
			if err := writePolicy(res.reloads); err != nil {
				return nil, err
			}
			nextReload = now.Add(p.reload)
		}
		if p.kill && now.After(nextKill) {
			res.kills++
			rt.sigkill()
			time.Sleep(randDur(0, 500*time.Millisecond))
			if err := rt.start(); err != nil {
				return nil, err
			}
			nextKill = time.Now().Add(randDur(500*time.Millisecond, 3*time.Second))
		}
		if now.Sub(lastLog) > 30*time.Second {
			lastLog = now
			log.Printf("%s: %d calls placed in %s, runtime RSS %d MiB%s; start delay in the runtime %s", p.name, res.placed, now.Sub(start).Round(time.Second), rt.rssKB()/1024, gauges(httpAddr), startDelay(httpAddr))
		}
	}
	res.ran = time.Since(start)
	log.Printf("%s: %d calls placed in %s; waiting for the calls to end", p.name, res.placed, res.ran.Round(time.Second))
	for srv.Pending() > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	runWG.Wait()

	// Wait until every kept file is stored and every upload is done.
	filesMu.Lock()
	res.produced = len(files)
	res.switchLag = lagSummary(startLags, lateStart)
	filesMu.Unlock()
	storage, spool := filepath.Join(dir, "storage"), filepath.Join(dir, "spool")
	deadline := time.Now().Add(p.drain)
	for {
		stored := countStored(storage)
		up.mu.Lock()
		n := len(up.ok)
		up.mu.Unlock()
		intents, err := recpolruntime.PendingIntents(spool)
		if err != nil {
			log.Printf("%s: reading the recording intents: %v", p.name, err)
		}
		// Recordings being finished: journal files of an earlier release
		// (the catalog's finishing rows show in the sidecars not yet
		// written and the uploads not yet made).
		pending := countFiles(filepath.Join(spool, "store", "journal")) + intents
		if stored >= res.produced && n >= stored && pending == 0 || time.Now().After(deadline) {
			break
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			log.Printf("%s: draining: %d of %d files stored, %d objects uploaded, %d recordings pending", p.name, stored, res.produced, n, pending)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if os.Getenv("SOAK_DEBUG") != "" {
		ans := map[string]time.Duration{}
		for _, ev := range srv.Events() {
			if ev.Event.Name() == "CHANNEL_ANSWER" {
				ans[ev.Event.Get("Unique-ID")] = ev.At
			}
		}
		var lags []time.Duration
		for _, c := range srv.Commands() {
			f := strings.Fields(c.Line)
			if len(f) > 4 && f[3] == "start" {
				if a, ok := ans[f[2]]; ok {
					lags = append(lags, c.At-a)
				}
			}
		}
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99} {
			if len(lags) > 0 {
				log.Printf("lag p%.0f %v", q*100, lags[int(q*float64(len(lags)-1))])
			}
		}
	}
	res.load1 = procstat.LoadAvg()
	res.startDelay = startDelay(httpAddr)
	rt.stop()
	res.peakRSSKB, res.cpu = rt.usage()
	res.ownExits = int(rt.ownExits.Load())
	res.sidecars = countStored(storage)

	// The runtime's catalog (SQLite, in its spool), read through the store
	// and, for the counts by state, directly.
	cat, err := catalog.Open(context.Background(), catalog.Config{Driver: catalog.DriverSQLite, DSN: filepath.Join(spool, "store", "catalog.db")})
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	st, err := store.Open(store.Config{Storage: storage, Spool: filepath.Join(spool, "store"), Catalog: cat})
	if err != nil {
		return nil, err
	}
	metas, err := st.List(store.Filter{})
	if err != nil {
		return nil, err
	}
	byID := map[string]store.Metadata{}
	perLeg := map[string]int{}
	for _, m := range metas {
		byID[m.RecordingID] = m
		perLeg[m.CallID+"|"+m.Scope+"|"+m.Origin]++
		if m.URL != "" {
			res.uploadsExpected++
		}
	}
	for k, n := range perLeg {
		if n > 1 {
			res.duplicates += n - 1
			res.dupStored = append(res.dupStored, k)
		}
	}
	for id := range files {
		if _, ok := byID[id]; ok {
			res.stored++
		} else {
			res.missing = append(res.missing, id)
		}
	}
	sort.Strings(res.missing)
	// The catalog by state: what the store says of every recording.
	res.catalog = map[catalog.State]int{}
	for _, state := range []catalog.State{catalog.StateActive, catalog.StateFinishing, catalog.StateStored, catalog.StateUploaded, catalog.StateDead,
		catalog.StateQuarantined, catalog.StateDiscarded, catalog.StateDeleted} {
		p, err := cat.Search(context.Background(), catalog.Filter{State: state, Limit: 1, Total: true})
		if err != nil {
			return nil, err
		}
		res.catalog[state] = p.Total
	}
	if err := st.Close(); err != nil {
		log.Printf("%s: closing the store: %v", p.name, err)
	}
	// The uploads by object name: a recording with a URL has one name
	// (objectPath), and the server's 2xx per name say whether it arrived,
	// arrived more than once (re-sent) or under a name of its own.
	up.mu.Lock()
	received := maps.Clone(up.ok)
	up.mu.Unlock()
	res.countUploads(metas, received)
	res.uploadRequests, res.upload500s = up.requests.Load(), up.failed.Load()
	return res, nil
}

// countUploads compares, by object name, the recordings with a URL with
// the 2xx the upload server gave per name (received): uploaded, objects,
// re-sent, strays, second objects of a recording and names shared.
func (r *result) countUploads(metas []store.Metadata, received map[string]int) {
	byName := map[string][]store.Metadata{}
	for _, m := range metas {
		if m.URL != "" {
			name := objectPath(m)
			byName[name] = append(byName[name], m)
		}
	}
	namesPerLeg := map[string][]string{}
	for name, n := range received {
		r.objects++
		if n > 1 {
			// The same name PUT again: the runtime was killed after the
			// server had the file and before it recorded the 2xx, so it
			// sent it again; the server holds one object.
			r.resent += n - 1
			r.dupUploads = append(r.dupUploads, name)
		}
		ms := byName[name]
		if len(ms) == 0 {
			r.strays = append(r.strays, name)
			continue
		}
		k := ms[0].CallID + "|" + ms[0].Scope + "|" + ms[0].Origin
		namesPerLeg[k] = append(namesPerLeg[k], name)
	}
	for _, names := range namesPerLeg {
		if len(names) > 1 {
			sort.Strings(names)
			r.extraObjects = append(r.extraObjects, names[1:]...)
		}
	}
	for name, ms := range byName {
		if received[name] > 0 {
			r.uploaded += len(ms)
		}
		if len(ms) > 1 {
			r.shared = append(r.shared, name)
		}
	}
	sort.Strings(r.dupUploads)
	sort.Strings(r.strays)
	sort.Strings(r.extraObjects)
	sort.Strings(r.shared)
}

// objectPath is the path on the upload server of m's object: its URL's
// path and the object name the store gives it (runtime/store, "Upload
// names": call_recording_<call id>.<ext>, or <media_name>_<call id>.<ext>,
// with _<recording id> before the extension when the leg carries several
// recordings).
func objectPath(m store.Metadata) string {
	name := "call_recording_" + m.CallID
	if m.MediaName != "" {
		name = m.MediaName + "_" + m.CallID
	}
	if m.SameLegRecordings {
		name += "_" + m.RecordingID
	}
	base := m.URL
	if u, err := url.Parse(m.URL); err == nil {
		base = u.Path
	}
	return strings.TrimSuffix(base, "/") + "/" + name + "." + m.Format
}

// reservedPort returns a loopback address free now whose port is below
// the host's ephemeral range (ip_local_port_range), so that no outgoing
// connection takes it while the runtime, killed and restarted, is not
// listening on it.
func reservedPort() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &low)
	}
	const from = 10000
	if low <= from+100 {
		return "", fmt.Errorf("reserving a port: the ephemeral range starts at %d", low)
	}
	var err error
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", from+rand.IntN(low-from))
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("reserving a port below %d: %w", low, err)
}

func randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

func countStored(storage string) int {
	n := 0
	filepath.WalkDir(storage, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			n++
		}
		return nil
	})
	return n
}

func countFiles(dir string) int {
	ents, _ := os.ReadDir(dir)
	return len(ents)
}

// child is the runtime process, started through the launcher so that its
// peak RSS and CPU time (wait4's rusage) are its own; a kill -9 ends one
// process and the next start begins another. A process that exits on its
// own (it could not start) is started again after a second, as a service
// manager would (systemd's Restart=always), and counted.
type child struct {
	bin, launcher, cfg string
	log                io.Writer
	mu                 sync.Mutex
	proc               *procstat.Proc
	exited             []chan procstat.Usage // one per process started
	ownExits           atomic.Int64          // exits that were not a kill or a stop
}

func (c *child) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startLocked()
}

// startLocked starts a process; c.mu is held.
func (c *child) startLocked() error {
	cmd := exec.Command(c.bin, "run", "--config", c.cfg)
	cmd.Stdout, cmd.Stderr = c.log, c.log
	dieWithParent(cmd) // a harness killed mid-run leaves no runtime behind (the launcher passes it on)
	p, err := procstat.Start(c.launcher, cmd)
	if err != nil {
		return err
	}
	done := make(chan procstat.Usage, 1)
	c.proc = p
	c.exited = append(c.exited, done)
	go func() {
		u, _ := p.Wait() // an exit status from a kill is expected
		done <- u
		// Killed or stopped, c.proc is no longer p.
		c.mu.Lock()
		own := c.proc == p
		c.mu.Unlock()
		if !own {
			return
		}
		c.ownExits.Add(1)
		time.Sleep(time.Second)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.proc == p {
			if err := c.startLocked(); err != nil {
				log.Printf("starting the runtime again: %v", err)
			}
		}
	}()
	return nil
}

// sigkill kills the runtime with SIGKILL and waits (10 s at most) until
// it is gone, as a service manager does before it starts the next one.
func (c *child) sigkill() {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
	}
}

func (c *child) kill() { c.sigkill() }

// stop ends the runtime with SIGTERM, as an operator would, and kills it
// after 10 s.
func (c *child) stop() {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		p.Signal(syscall.SIGKILL)
	}
}

// usage waits for every runtime process started to have exited and
// returns the highest of their peak RSS (KiB) and their CPU time summed.
func (c *child) usage() (peakKB int64, cpu time.Duration) {
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	for _, ch := range exited {
		u := <-ch
		ch <- u
		peakKB = max(peakKB, u.PeakRSS>>10)
		cpu += u.CPU()
	}
	return peakKB, cpu
}

// rssKB reads the running runtime's resident memory (VmRSS).
func (c *child) rssKB() int64 {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p == nil {
		return 0
	}
	rss, _, _ := procstat.Status(p.Pid())
	return rss >> 10
}

func report(rs []*result, cmdline string) string {
	var b strings.Builder
	b.WriteString("# Reliability\n\n")
	b.WriteString("Produced by `make soak` (`internal/soak`): the real `recpol run` binary beside the fake switch\n")
	b.WriteString("over TCP on loopback, every recording uploaded to a local HTTP server that answers 500 to a share\n")
	b.WriteString("of requests. A recording is *lost* when the switch kept its file and the store does not hold it,\n")
	b.WriteString("or when it has a URL and never got a 2xx; a *duplicate* is a second stored recording of the same\n")
	b.WriteString("leg, scope and origin. Uploads are compared by object name (each recording with a URL has one):\n")
	b.WriteString("*re-sent* counts 2xx answers beyond the first for one name, the runtime having been killed after\n")
	b.WriteString("the server had the file and before it recorded the 2xx, so it sent the file again (a PUT to the\n")
	b.WriteString("same name: one object; delivery is at-least-once), as a share of the objects received; a\n")
	b.WriteString("*duplicated object* is a second name for one leg, scope and origin, or a name no stored recording\n")
	b.WriteString("has. *Expected* is the simulator's prediction (`simulate.PredictScenario`) of the recordings kept,\n")
	b.WriteString("summed over the calls placed; *produced* is what the switch wrote.\n\n")
	b.WriteString("*Peak RSS* is the highest of the runtime processes' own peaks (wait4's ru_maxrss of each, started\n")
	b.WriteString("through a launcher of a few MB, internal/bench/procstat, so that the harness's memory is not in it); *CPU*\n")
	b.WriteString("is the user + system time of every runtime process of the phase (their rusage), per call placed.\n")
	b.WriteString("The store's figures come from its catalog (SQLite, in the spool): *stored* are the produced files it\n")
	b.WriteString("holds; the catalog table below counts every recording by state, beside the JSON sidecars in storage.\n\n")
	fmt.Fprintf(&b, "Command: `%s` (on %s, %d CPUs, Go %s; %s UTC; load average at the end %s).\n\n", cmdline, runtime.GOOS+"/"+runtime.GOARCH,
		runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04"), procstat.LoadAvg())
	b.WriteString("| phase | ran | calls placed | achieved rate | recordings expected | produced | stored | uploaded (of expected) | upload requests (500s) | lost | duplicates | re-sent | kill -9 | reloads | peak RSS | runtime CPU (per call) | load average at the start, end |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f/s (target %.0f/s) | %d | %d | %d | %d (%d) | %d (%d) | %d | %d | %d (%.1f%%) | %d | %d | %d MiB | %s (%s) | %s; %s |\n",
			r.name, r.ran.Round(time.Second), r.placed, float64(r.placed)/r.ran.Seconds(), r.phase.rate, r.expected,
			r.produced, r.stored, r.uploaded, r.uploadsExpected, r.uploadRequests, r.upload500s, r.lost(), r.duplicates,
			r.resent, 100*r.resentRate(), r.kills, r.reloads, r.peakRSSKB/1024, r.cpu.Round(100*time.Millisecond), r.cpuPerCall(), r.load0, r.load1)
	}
	b.WriteString("\n## Goals\n\n| phase | goal | measured | target | |\n|---|---|---|---|---|\n")
	for _, r := range rs {
		for _, g := range r.goals() {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.name, g.name, g.value, g.goal, g.verdict())
		}
	}
	b.WriteString("\n## The catalog at the end\n\n| phase | active | finishing | stored (upload pending) | uploaded | dead-lettered | quarantined | discarded | deleted | sidecars in storage |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		c := r.catalog
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", r.name, c[catalog.StateActive], c[catalog.StateFinishing], c[catalog.StateStored], c[catalog.StateUploaded],
			c[catalog.StateDead], c[catalog.StateQuarantined], c[catalog.StateDiscarded], c[catalog.StateDeleted], r.sidecars)
	}
	for _, r := range rs {
		delay := "answering at once"
		if r.phase.uploadDelay > 0 {
			delay = "holding each request " + r.phase.uploadDelay.String()
		}
		perKill := ""
		if r.kills > 0 {
			perKill = fmt.Sprintf(", %.1f per kill -9", float64(r.resent)/float64(r.kills))
		}
		fmt.Fprintf(&b, "\n%s: uploads by object name (upload server %s): %d recordings with a URL, %d of them received; %d objects; re-sent %d (%.1f%% of the objects%s); duplicated objects %d; names shared by two recordings %d\n",
			r.name, delay, r.uploadsExpected, r.uploaded, r.objects, r.resent, 100*r.resentRate(), perKill, r.dupObjects(), len(r.shared))
		if r.switchLag != "" {
			fmt.Fprintf(&b, "\n%s: start lag on the switch (from the leg's answer to the start running on the fake switch, its clock; the runtime's part is the line below): %s\n", r.name, r.switchLag)
		}
		if st := r.timeline.stallReport(lateStart); st != "" {
			fmt.Fprintf(&b, "\n%s: where the late starts fall. %s", r.name, st)
		}
		if r.startDelay != "" {
			fmt.Fprintf(&b, "\n%s: start delay inside the runtime (`recpol_start_delay_seconds`: from reading the event that decided a start to writing its command; bucket bounds): %s\n", r.name, r.startDelay)
		}
		if r.ownExits > 0 {
			fmt.Fprintf(&b, "\n%s: the runtime exited on its own %d times (neither killed nor stopped by the harness: runtime.log, kept with -keep, says why); the harness started it again after a second each time\n", r.name, r.ownExits)
		}
		if len(r.strays) > 0 {
			fmt.Fprintf(&b, "\n%s: objects no stored recording names: %s\n", r.name, strings.Join(r.strays[:min(len(r.strays), 20)], ", "))
		}
		if len(r.extraObjects) > 0 {
			fmt.Fprintf(&b, "\n%s: second objects of one recording: %s\n", r.name, strings.Join(r.extraObjects[:min(len(r.extraObjects), 20)], ", "))
		}
		if len(r.shared) > 0 {
			fmt.Fprintf(&b, "\n%s: object names of two recordings: %s\n", r.name, strings.Join(r.shared[:min(len(r.shared), 20)], ", "))
		}
		if len(r.dupStored) > 0 {
			fmt.Fprintf(&b, "\n%s: recordings stored twice (leg|scope|origin): %s\n", r.name, strings.Join(r.dupStored, ", "))
		}
		if len(r.dupUploads) > 0 {
			fmt.Fprintf(&b, "\n%s: uploads re-sent after a kill: %s\n", r.name, strings.Join(r.dupUploads[:min(len(r.dupUploads), 20)], ", "))
		}
		if len(r.missing) > 0 {
			fmt.Fprintf(&b, "\n%s: missing recordings: %s\n", r.name, strings.Join(r.missing[:min(len(r.missing), 20)], ", "))
		}
	}
	return b.String()
}
