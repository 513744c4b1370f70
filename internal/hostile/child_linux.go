package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when the harness dies, however
// it dies: a runtime or flood process left running would load every later
// measurement.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
