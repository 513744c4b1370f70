//go:build !linux

package isolate

import "os/exec"

// setParentDeath does nothing where the kernel has no parent-death
// signal: a child outlives a killed parent until its compile ends.
func setParentDeath(*exec.Cmd) {}
