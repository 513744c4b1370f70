//go:build linux

// Command launch starts one program and reports, on file descriptor 3,
// that program's pid and, once it has exited, its own rusage from wait4:
//
//	pid <pid> hwm <launcher's VmHWM in KiB>
//	exit <code> maxrss <KiB> utime <µs> stime <µs>
//
// It exists so that a child's peak RSS means the child's: the kernel
// starts a process's ru_maxrss at the peak RSS of the image it replaced at
// exec, so a child forked by a 600 MB harness reports at least 600 MB.
// Started through this launcher, whose image is a few MB, the figure is
// max(the child's own peak, the launcher's peak when it forked), and the
// launcher reports the latter so that the bound is known.
//
// SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to the program; the
// program is killed if the launcher dies. The launcher exits with the
// program's exit code (128+signal when a signal ended it).
package main

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	out := os.NewFile(3, "result")
	if out == nil || len(os.Args) < 2 {
		os.Stderr.WriteString("usage: launch PROGRAM [ARG...] (with file descriptor 3 open for the result)\n")
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], attr)
	if err != nil {
		out.WriteString("error " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n")
		os.Exit(127)
	}
	// Read after the fork: the peak is monotonic, so this bounds what the
	// program's ru_maxrss started from.
	out.WriteString("pid " + strconv.Itoa(pid) + " hwm " + strconv.FormatInt(selfHWM(), 10) + "\n")
	go func() {
		for s := range sigs {
			syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err := syscall.Wait4(pid, &ws, 0, &ru)
		if err != syscall.EINTR {
			break
		}
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	us := func(tv syscall.Timeval) string { return strconv.FormatInt(tv.Sec*1e6+tv.Usec, 10) }
	out.WriteString("exit " + strconv.Itoa(code) + " maxrss " + strconv.FormatInt(ru.Maxrss, 10) +
		" utime " + us(ru.Utime) + " stime " + us(ru.Stime) + "\n")
	os.Exit(code)
}

// selfHWM is the launcher's own peak RSS in KiB, or -1.
func selfHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
