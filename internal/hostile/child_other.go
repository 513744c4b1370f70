//go:build !linux

package main

import "os/exec"

// dieWithParent is a no-op where the kernel cannot tie a child's life to
// its parent's: stop the harness with SIGTERM or Ctrl-C there.
func dieWithParent(*exec.Cmd) {}
