// Package procstat measures a child process honestly: its own peak
// resident set size, its CPU time (user and system) and its wall time.
//
// A child's ru_maxrss from wait4 is not its own peak: at exec the kernel
// starts the new image's figure from the peak RSS of the image it replaces
// (on Linux exec_mmap folds the old mm's high-water mark into the signal
// struct), and os/exec forks with the parent's memory shared, so a child
// `/bin/true` of a 600 MB harness reports 600 MB. Children started here go
// through a tiny launcher (./launch, a few MB) that forks the program and
// reads its wait4 rusage: the peak is then max(the program's own peak, the
// launcher's peak), and the launcher's is reported beside it.
package procstat

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles the launcher into dir and returns its path. root is the
// module root.
func Build(root, dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "recpol-launch")
	cmd := exec.Command("go", "build", "-o", bin, "./internal/bench/procstat/launch")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the launcher: %w\n%s", err, out)
	}
	return bin, nil
}

// Usage is what a child used over its whole life.
type Usage struct {
	Wall time.Duration
	// User and Sys are the child's CPU time from wait4's rusage.
	User, Sys time.Duration
	// PeakRSS is wait4's ru_maxrss of the child, in bytes: max(the
	// child's own peak, LauncherRSS); or SampledHWM when that is higher
	// (the kernel's RSS counters are per-CPU and approximate, and the two
	// are read at different moments: they may differ by a few pages).
	PeakRSS int64
	// LauncherRSS is the launcher's own peak when it forked the child:
	// a PeakRSS equal to it says only that the child's peak was at most
	// that.
	LauncherRSS int64
	// SampledHWM is the highest VmHWM read from /proc/<pid>/status while
	// the child ran (every 10 ms): a lower bound of its own peak.
	SampledHWM int64
	// ExitCode is the child's exit code, 128+signal when a signal ended it.
	ExitCode int
}

// CPU is User + Sys.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// Proc is a child started through the launcher.
type Proc struct {
	cmd     *exec.Cmd
	pid     int // the program's, not the launcher's
	start   time.Time
	result  chan result
	mu      sync.Mutex
	hwm     int64
	done    bool
	usage   Usage
	waitErr error
	waited  chan struct{}
}

type result struct {
	usage Usage
	err   error
}

// Start starts cmd (cmd.Path, cmd.Args, cmd.Dir, cmd.Env, cmd.Stdin,
// cmd.Stdout, cmd.Stderr and cmd.SysProcAttr are used) through the
// launcher. The launcher replaces cmd's program: cmd must not have been
// started and is not to be used afterwards.
func Start(launcher string, cmd *exec.Cmd) (*Proc, error) {
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	lc := exec.Command(launcher, append([]string{cmd.Path}, cmd.Args[1:]...)...)
	lc.Dir, lc.Env, lc.Stdin, lc.Stdout, lc.Stderr, lc.SysProcAttr = cmd.Dir, cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.SysProcAttr
	lc.ExtraFiles = []*os.File{w}
	p := &Proc{cmd: lc, start: time.Now(), result: make(chan result, 1), waited: make(chan struct{})}
	if err := lc.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close()
	br := bufio.NewReader(r)
	first, err := br.ReadString('\n')
	var hwmKB int64
	if err == nil {
		_, err = fmt.Sscanf(first, "pid %d hwm %d", &p.pid, &hwmKB)
	}
	if err != nil {
		r.Close()
		werr := lc.Wait()
		return nil, fmt.Errorf("launch %s: %s (%v)", cmd.Path, strings.TrimSpace(first), werr)
	}
	p.usage.LauncherRSS = hwmKB << 10
	go p.sample()
	go func() {
		defer r.Close()
		line, err := br.ReadString('\n')
		var u Usage
		var maxrss, ut, st int64
		if err == nil {
			_, err = fmt.Sscanf(line, "exit %d maxrss %d utime %d stime %d", &u.ExitCode, &maxrss, &ut, &st)
		}
		if err != nil {
			p.result <- result{err: fmt.Errorf("the launcher gave no result: %q: %v", line, err)}
			return
		}
		u.PeakRSS, u.User, u.Sys = maxrss<<10, time.Duration(ut)*time.Microsecond, time.Duration(st)*time.Microsecond
		p.result <- result{usage: u}
	}()
	return p, nil
}

// Pid is the program's process id (not the launcher's).
func (p *Proc) Pid() int { return p.pid }

// Signal sends sig to the program while it runs; after it has exited it
// does nothing (its pid may have been reused).
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return os.ErrProcessDone
	}
	return syscall.Kill(p.pid, sig)
}

// Exited is closed once Wait has returned.
func (p *Proc) Exited() <-chan struct{} { return p.waited }

func (p *Proc) sample() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		_, hwm, err := Status(p.pid)
		p.mu.Lock()
		if p.done {
			p.mu.Unlock()
			return
		}
		if err == nil {
			p.hwm = max(p.hwm, hwm)
		}
		p.mu.Unlock()
		select {
		case <-p.waited:
			return
		case <-t.C:
		}
	}
}

// Wait waits for the program and the launcher to exit and returns the
// program's usage. A program that exits non-zero is an *exec.ExitError,
// as from exec.Cmd.Wait, with the usage still filled in. Wait may be
// called once.
func (p *Proc) Wait() (Usage, error) {
	res := <-p.result
	werr := p.cmd.Wait()
	p.mu.Lock()
	p.done = true
	u := res.usage
	u.Wall = time.Since(p.start)
	u.LauncherRSS = p.usage.LauncherRSS
	u.SampledHWM = p.hwm
	u.PeakRSS = max(u.PeakRSS, u.SampledHWM)
	p.usage = u
	p.mu.Unlock()
	close(p.waited)
	if res.err != nil {
		return u, res.err
	}
	return u, werr
}

// Status reads the current and peak resident set size of a live process
// (VmRSS and VmHWM of /proc/<pid>/status), in bytes.
func Status(pid int) (rss, hwm int64, err error) {
	v, err := status(pid, "VmRSS", "VmHWM")
	return v[0], v[1], err
}

// Resident reads how much of a live process's resident memory is
// anonymous (heap, stacks, caches it allocated) and how much maps files
// (its binary's pages, as its code runs): RssAnon and RssFile of
// /proc/<pid>/status, in bytes.
func Resident(pid int) (anon, file int64, err error) {
	v, err := status(pid, "RssAnon", "RssFile")
	return v[0], v[1], err
}

// status reads fields of /proc/<pid>/status given in kB, in bytes, in
// the order of keys; an error when one is missing.
func status(pid int, keys ...string) ([]int64, error) {
	out := make([]int64, len(keys))
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return out, err
	}
	found := 0
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		for i, key := range keys {
			if k != key {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				out[i] = n << 10
				found++
			}
		}
	}
	if found < len(keys) {
		return out, fmt.Errorf("/proc/%d/status: no %s (the process has exited)", pid, strings.Join(keys, " and "))
	}
	return out, nil
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTick = 100

// CPU reads the CPU time (user + system, every thread) a live process has
// used so far from /proc/<pid>/stat: the counters wait4's rusage reports
// at its exit, at 10 ms resolution.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// Self is the CPU time (user + system) this process has used so far.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAvg is the machine's load average over 1, 5 and 15 minutes, as
// /proc/loadavg says it ("unknown" without it).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
