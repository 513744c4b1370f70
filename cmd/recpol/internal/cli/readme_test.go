package cli

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadmeLocalSetup follows the README's "Try the runtime locally"
// literally, in a temporary directory instead of /tmp/recpol-try and with
// the fake switch on a free port instead of 8021 (both substituted in
// every step): the fake switch prints the switches entry the README shows,
// the runtime started with the README's config stores a recording.
func TestReadmeLocalSetup(t *testing.T) {
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := readmeSection(t, string(readme), "### Try the runtime locally")
	blocks := fencedBlocks(section)
	if len(blocks) != 3 {
		t.Fatalf("the section has %d code blocks, want 3 (commands, what the fake switch prints, the runtime's config and command)", len(blocks))
	}
	dir := t.TempDir()
	const readmeDir, readmeAddr = "/tmp/recpol-try", "127.0.0.1:8021"
	local := func(s string) string { return strings.ReplaceAll(s, readmeDir, dir) }

	// Block 1: mkdir and cp, then the fake switch.
	var fsArgs []string
	for _, line := range strings.Split(strings.TrimSpace(blocks[0]), "\n") {
		line = local(line)
		switch {
		case strings.HasPrefix(line, "mkdir -p "):
			m := regexp.MustCompile(`^mkdir -p (\S+) && cp -r (\S+) (\S+)$`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("README step %q: not mkdir -p DIR && cp -r SRC DST", line)
			}
			if err := os.MkdirAll(m[1], 0o755); err != nil {
				t.Fatal(err)
			}
			copyDir(t, filepath.Join(root, m[2]), m[3])
		case strings.HasPrefix(line, "bin/recpol fakeswitch "):
			fsArgs = repoArgs(root, strings.Fields(strings.TrimPrefix(line, "bin/recpol ")))
		default:
			t.Fatalf("README step %q: the test does not know it", line)
		}
	}
	if fsArgs == nil {
		t.Fatal("no bin/recpol fakeswitch step")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fsOut, fsOutW := io.Pipe()
	fsExit := make(chan int, 1)
	go func() {
		// The same command on a free port: the last --listen wins.
		fsExit <- RunContext(ctx, append(fsArgs, "--listen", "127.0.0.1:0"), nil, fsOutW, io.Discard)
		fsOutW.Close()
	}()
	lines := bufio.NewScanner(fsOut)
	var printed []string
	for len(printed) < 2 && lines.Scan() {
		printed = append(printed, lines.Text())
	}
	go io.Copy(io.Discard, fsOut)
	if len(printed) < 2 {
		t.Fatalf("the fake switch printed %q, want the comment and the switches entry", printed)
	}
	addr := regexp.MustCompile(`address: "([^"]+)"`).FindStringSubmatch(printed[1])
	if addr == nil {
		t.Fatalf("no address in %q", printed[1])
	}
	// Block 2: what the fake switch prints, as the README shows it.
	want := strings.Split(strings.TrimSpace(local(blocks[1])), "\n")
	for i := range want {
		want[i] = strings.ReplaceAll(want[i], readmeAddr, addr[1])
	}
	if strings.Join(printed, "\n") != strings.Join(want, "\n") {
		t.Errorf("the fake switch printed\n%s\nthe README shows\n%s", strings.Join(printed, "\n"), strings.Join(want, "\n"))
	}

	// Block 3: the config by a heredoc, then the runtime.
	step3 := strings.ReplaceAll(local(blocks[2]), readmeAddr, addr[1])
	m := regexp.MustCompile(`(?s)^cat > (\S+) <<'EOF'\n(.*?\n)EOF\n(.*)$`).FindStringSubmatch(strings.TrimSpace(step3) + "\n")
	if m == nil {
		t.Fatalf("README block %q: not cat > FILE <<'EOF' ... EOF, then a command", blocks[2])
	}
	if err := os.WriteFile(m[1], []byte(m[2]), 0o644); err != nil {
		t.Fatal(err)
	}
	run := strings.TrimSpace(m[3])
	if !strings.HasPrefix(run, "bin/recpol run ") {
		t.Fatalf("README step %q: want bin/recpol run", run)
	}
	// recpol run applies its memory limit (the config's default) to the
	// process: this test's, restored after.
	t.Setenv("GOMEMLIMIT", "")
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit) })
	logR, logW := io.Pipe()
	rtCtx, stopRuntime := context.WithCancel(ctx)
	rtExit := make(chan int, 1)
	go func() {
		rtExit <- RunContext(rtCtx, repoArgs(root, strings.Fields(strings.TrimPrefix(run, "bin/recpol "))), nil, io.Discard, logW)
		logW.Close()
	}()
	stored := regexp.MustCompile(`msg="recording finished".* outcome=stored .*path=(\S+)`)
	var path string
	logLines := bufio.NewScanner(logR)
	var log []string
	for path == "" && logLines.Scan() {
		log = append(log, logLines.Text())
		if m := stored.FindStringSubmatch(logLines.Text()); m != nil {
			path = m[1]
		}
	}
	stopRuntime()
	go io.Copy(io.Discard, logR)
	if code := <-rtExit; code != ExitOK {
		t.Errorf("recpol run exited %d", code)
	}
	if path == "" {
		t.Fatalf("the runtime stored no recording; its log:\n%s", strings.Join(log, "\n"))
	}
	if !slices.ContainsFunc(log, func(l string) bool {
		return strings.Contains(l, `msg="memory limit" limit_mb=120 source=memory_limit_mb`)
	}) {
		t.Errorf("the runtime did not log its memory limit; its log:\n%s", strings.Join(log, "\n"))
	}
	if got := debug.SetMemoryLimit(-1); got != 120<<20 {
		t.Errorf("the process's memory limit is %d, want the config's default 120 MB", got)
	}
	if !strings.HasPrefix(path, filepath.Join(dir, "recordings")+string(filepath.Separator)) {
		t.Errorf("stored at %s, not under the config's storage %s", path, filepath.Join(dir, "recordings"))
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("the stored recording: %v", err)
	}
	cancel()
	<-fsExit
}

// readmeSection returns the text under heading, up to the next heading of
// the same or a higher level.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	rest := readme[i+len(heading)+2:]
	level := strings.Repeat("#", strings.Count(strings.Fields(heading)[0], "#"))
	for _, h := range []string{"\n" + level + " ", "\n" + level[:len(level)-1] + " "} {
		if j := strings.Index(rest, h); j >= 0 && len(h) > 2 {
			rest = rest[:j]
		}
	}
	return rest
}

// fencedBlocks returns the contents of the ``` blocks of md.
func fencedBlocks(md string) []string {
	var out []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			if in {
				out = append(out, strings.Join(cur, "\n")+"\n")
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return out
}

// repoArgs makes the repository-relative paths of args (testdata/...)
// absolute: the README's commands run from the repository's root.
func repoArgs(root string, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "testdata/") {
			a = filepath.Join(root, a)
		}
		out[i] = a
	}
	return out
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}
