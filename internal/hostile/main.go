// Command hostile measures three of issue 20's "Done when" lines against
// the real recpol binary (`recpol run`) beside the fake switch on
// loopback, at the scale the issue states:
//
//   - wav: a 2 KB WAV whose LIST (or data) chunk claims 4 GB where a
//     recording in progress was when the runtime was killed, so that its
//     start-up recovery checks it: peak RSS under 200 MB, the file
//     quarantined once, the runtime up and recording after;
//   - legs: 300,000 originated legs that never bridge (hung up; and a
//     variant whose hangups never reach the runtime): the runtime's Go
//     heap after GC and RSS at 0, 100k, 200k and 300k legs, flat within
//     10%;
//   - conns: 20,000 idle HTTP connections to the runtime's API while calls
//     are recorded: /healthz still answers and no false "journal
//     quarantined" is logged.
//
// Each figure is printed and written into RELIABILITY.md's section
// "Hostile inputs at scale" (replaced on each run; the rest of the file is
// kept as it is).
//
//	make build && go run ./internal/hostile -recpol bin/recpol -out RELIABILITY.md
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/recpol/recpol/internal/bench/procstat"
)

// goal is one "Done when" figure with its verdict.
type goal struct {
	name, value, target string
	met                 bool
}

func (g goal) verdict() string {
	if g.met {
		return "MET"
	}
	return "**NOT MET**"
}

func main() {
	bin := flag.String("recpol", "bin/recpol", "the recpol binary (make build)")
	out := flag.String("out", "RELIABILITY.md", "the report whose section \"Hostile inputs at scale\" is replaced (empty: none)")
	checks := flag.String("checks", "wav,legs,conns", "the checks to run, comma-separated")
	legs := flag.Int("legs", 300_000, "originated legs of the legs check, hung up")
	lostLegs := flag.Int("lost-legs", 100_000, "originated legs of the legs check whose hangups are lost (0: skip)")
	conns := flag.Int("conns", 20_000, "idle HTTP connections of the conns check")
	flood := flag.Duration("flood", 90*time.Second, "how long the conns check holds its connections")
	keep := flag.Bool("keep", false, "keep the working directories")
	floodChild := flag.String("flood-child", "", "internal: hold idle connections to this address (a flood process)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *floodChild != "" {
		os.Exit(floodMain(*floodChild, *conns, *flood))
	}
	nofile := raiseNofile()
	abs, err := filepath.Abs(*bin)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		log.Fatalf("%s: %v (make build)", abs, err)
	}
	dir, err := os.MkdirTemp("", "recpol-hostile-bin-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	launcher, err := procstat.Build(".", dir)
	if err != nil {
		log.Fatal(err)
	}
	rev, _ := exec.Command(abs, "version").Output()
	machine := fmt.Sprintf("%s/%s, %d CPUs (shared with other work), %s; recpol %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		runtime.Version(), revision(string(rev)))
	log.Printf("machine: %s; load average %s; harness RLIMIT_NOFILE %s", machine, procstat.LoadAvg(), nofile)

	var sections []section
	for _, c := range strings.Split(*checks, ",") {
		t0 := time.Now()
		load0 := procstat.LoadAvg()
		var s section
		switch strings.TrimSpace(c) {
		case "wav":
			r := checkWAV(abs, launcher, *keep)
			s = section{title: "Poisoned WAV", goals: r.goals(), notes: r.notes(), err: r.err}
		case "legs":
			r := checkLegs(abs, launcher, *legs, *lostLegs, *keep)
			s = section{title: fmt.Sprintf("%s originated legs that never bridge", thousands(*legs)), goals: r.goals(), notes: r.notes(), err: r.err}
		case "conns":
			r := checkConns(abs, launcher, *conns, *flood, nofile, *keep)
			s = section{title: fmt.Sprintf("%s idle HTTP connections", thousands(*conns)), goals: r.goals(), notes: r.notes(), err: r.err}
		default:
			log.Fatalf("unknown check %q", c)
		}
		s.took = time.Since(t0)
		s.load = load0 + "; " + procstat.LoadAvg()
		sections = append(sections, s)
		for _, g := range s.goals {
			log.Printf("%s: %s: %s (goal %s): %s", s.title, g.name, g.value, g.target, g.verdict())
		}
	}
	if *out != "" {
		cmdline := "`go run ./internal/hostile " + strings.Join(os.Args[1:], " ") + "`"
		if os.Getenv("MAKELEVEL") != "" {
			cmdline = "`make hostile` (" + cmdline + ")"
		}
		if err := writeSection(*out, render(sections, cmdline, machine, nofile)); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote the section %q of %s", heading, *out)
	}
}

// thousands writes n with comma separators: 300,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// revision is the commit line of `recpol version`.
func revision(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(l, "commit "); ok {
			return "commit " + c
		}
	}
	return strings.TrimSpace(out)
}

// raiseNofile raises the harness's soft RLIMIT_NOFILE to its hard limit
// (the flood's connections and the runtime, which inherits it) and says
// what applies.
func raiseNofile() string {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return "unknown: " + err.Error()
	}
	was := rl.Cur
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Sprintf("soft %d, hard %d (raising it failed: %v)", was, rl.Max, err)
	}
	return fmt.Sprintf("soft %d (was %d), hard %d", rl.Cur, was, rl.Max)
}
