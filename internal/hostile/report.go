package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// heading is the section of RELIABILITY.md this harness owns.
const heading = "## Hostile inputs at scale"

// section is one check's part of the report.
type section struct {
	title string
	goals []goal
	notes []string
	err   string
	took  time.Duration
	load  string
}

func render(ss []section, cmdline, machine, nofile string) string {
	var b strings.Builder
	b.WriteString(heading + "\n\n")
	b.WriteString("Written by `make hostile` (`internal/hostile`; this section is replaced on each run, the rest of\n")
	b.WriteString("the file is left as it is): three of issue 20's \"Done when\" lines measured against the real\n")
	b.WriteString("`recpol run` binary beside the fake switch on loopback, at the issue's scale. Peak RSS is wait4's\n")
	b.WriteString("ru_maxrss of each runtime process, started through procstat's launcher so that the harness's\n")
	b.WriteString("memory is not in it; the Go heap is `go_memstats_heap_inuse_bytes` from the runtime's /metrics\n")
	b.WriteString("read right after a collection (its profiler's heap profile with `gc=1`, `RECPOL_PPROF_LISTEN`).\n\n")
	fmt.Fprintf(&b, "Command: %s on %s, %s UTC. Harness RLIMIT_NOFILE: %s (the runtime inherits it; Go raises a\n", cmdline, machine,
		time.Now().UTC().Format("2006-01-02 15:04"), nofile)
	b.WriteString("process's soft limit to its hard limit at start).\n")
	for _, s := range ss {
		fmt.Fprintf(&b, "\n### %s\n\n", s.title)
		fmt.Fprintf(&b, "Ran %s; load average at the start, end: %s.\n\n", s.took.Round(time.Second), s.load)
		b.WriteString("| goal | measured | target | |\n|---|---|---|---|\n")
		for _, g := range s.goals {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", g.name, g.value, g.target, g.verdict())
		}
		if s.err != "" {
			fmt.Fprintf(&b, "\nThe check stopped early: %s\n", s.err)
		}
		if len(s.notes) > 0 {
			b.WriteString("\n")
			for _, n := range s.notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
		}
	}
	return b.String()
}

// writeSection replaces the section under heading in path (up to the next
// heading of its level, or the end) with sec, or appends it at the end of
// the file, which in RELIABILITY.md is below the hand-written marker
// (bench.HandMarker): `make soak` rewrites what is above it only.
func writeSection(path, sec string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	doc := string(old)
	var out string
	if i := indexLine(doc, heading); i >= 0 {
		rest := doc[i+len(heading):]
		end := len(doc)
		if j := strings.Index(rest, "\n## "); j >= 0 {
			end = i + len(heading) + j + 1
		}
		tail := doc[end:]
		if tail != "" {
			sec += "\n"
		}
		out = doc[:i] + sec + tail
	} else {
		out = strings.TrimRight(doc, "\n") + "\n\n" + sec
	}
	tmp := path + ".hostile.tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// indexLine returns the offset of the line that is exactly line, or -1.
func indexLine(doc, line string) int {
	for off := 0; off < len(doc); {
		j := strings.IndexByte(doc[off:], '\n')
		end := len(doc)
		if j >= 0 {
			end = off + j
		}
		if strings.TrimRight(doc[off:end], " \r") == line {
			return off
		}
		if j < 0 {
			break
		}
		off = end + 1
	}
	return -1
}
