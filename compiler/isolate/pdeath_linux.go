package isolate

import (
	"os/exec"
	"syscall"
)

// setParentDeath has the kernel kill the child when its parent dies, so
// that a runaway compile does not outlive a runtime killed with kill -9
// (the parent's timer and memory watch enforce the budget). The kernel
// sends it when the thread that forked exits; Go ends a thread only when a
// goroutine locked to it returns without unlocking, which this package
// never does.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
