package isolate

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recpol/recpol/compiler"
)

// envParent makes the test binary a parent that starts a compile of
// cpuBomb and prints its child's pid once the child is busy with it.
const envParent = "RECPOL_ISOLATE_TEST_PARENT"

func init() {
	if dir := os.Getenv(envParent); dir != "" {
		os.Unsetenv(envParent) // the child it starts is a worker
		runParent(dir)
		os.Exit(0)
	}
}

// cpuTicks is the user CPU time of a process, in clock ticks.
func cpuTicks(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return strconv.Atoi(f[11]) // utime, the 14th field of proc(5)
}

func runParent(dir string) {
	c := New(compiler.Options{}, Budget{Time: time.Hour, Memory: 4 << 30})
	if _, err := c.Compile(context.Background(), dir+"/valid"); err != nil {
		fmt.Println("error", err)
		return
	}
	pid := c.w.cmd.Process.Pid
	before, _ := cpuTicks(pid)
	go c.Compile(context.Background(), dir+"/bomb")
	// Busy: a child still reading its request would exit on the closed
	// pipe alone, and the test would prove nothing.
	for {
		now, err := cpuTicks(pid)
		if err != nil {
			fmt.Println("error", err)
			return
		}
		if now-before >= 30 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(pid)
	select {}
}

// TestChildDiesWithParent: a runtime killed with kill -9 in the middle of
// a long compile leaves no compiler child running.
func TestChildDiesWithParent(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{"valid": valid, "bomb": cpuBomb} {
		if err := os.Mkdir(dir+"/"+name, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+name+"/p.cue", []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), envParent+"="+dir)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		parent.Wait()
		t.Fatalf("the parent said nothing: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		parent.Process.Kill()
		parent.Wait()
		t.Fatalf("the parent: %q", line)
	}
	_ = parent.Process.Kill()
	_ = parent.Wait()
	// The child is gone when /proc has no such process or only its zombie
	// (reaped by whoever inherited it); polled, there is nothing to wait on.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the compiler child %d outlived its killed parent by 30s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
