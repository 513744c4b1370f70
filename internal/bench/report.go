package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// HandMarker starts the part of BENCHMARKS.md measured by hand, each figure
// with the command that measured it; make bench keeps it as it is.
const HandMarker = "<!-- written by hand below this line: a new run rewrites what is above and keeps this -->"

// Markdown writes the report as BENCHMARKS.md.
func (rep *Report) Markdown(w io.Writer, invocation string) error {
	var b strings.Builder
	b.WriteString("# recpol benchmarks\n\n")
	b.WriteString("Written by `make bench` (`" + invocation + "`); do not edit by hand. ")
	b.WriteString("Each figure is the median of several runs; its peer is measured in the same run. ")
	b.WriteString("A goal not met carries the top of a CPU profile of the same work (`go tool pprof -top -cum`). ")
	b.WriteString("A child process is started through a launcher of a few MB (internal/bench/procstat), so its peak RSS (wait4's ru_maxrss) and CPU time (user + system) are its own; ")
	b.WriteString("each figure shows the machine's load average (1 min) when its measurement started and ended: other work on the machine shows there.\n\n")
	if rep.Quick {
		b.WriteString("**Quick mode: small trees and few runs. These numbers say nothing about the goals.**\n\n")
	}
	b.WriteString("## Machine\n\n")
	for _, m := range rep.Machine {
		b.WriteString("- " + m + "\n")
	}
	fmt.Fprintf(&b, "- Date: %s, the whole run took %s\n\n", rep.Started.UTC().Format(time.RFC3339), dur(rep.Took.Round(time.Second)))

	b.WriteString("## Summary\n\n| figure | median | CPU | peer | ratio | goal | load (1 min) start -> end | |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range rep.Figures {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", cell(f.Name), cell(f.Value), cell(orDash(shortCPU(f.CPU))), cell(orDash(f.Peer)), cell(orDash(f.Ratio)), cell(f.Goal), cell(load1(f)), verdict(f))
	}
	b.WriteString("\n## Setup\n\n```\n")
	for _, c := range rep.Commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n")
	for _, f := range rep.Figures {
		fmt.Fprintf(&b, "\n## %s: %s\n\n", f.Name, verdict(f))
		b.WriteString("```\n")
		for _, c := range f.Commands {
			b.WriteString(c + "\n")
		}
		b.WriteString("```\n\n")
		fmt.Fprintf(&b, "- median: %s\n- CPU: %s\n- peer: %s\n- ratio: %s\n- goal: %s\n", f.Value, orDash(f.CPU), orDash(f.Peer), orDash(f.Ratio), f.Goal)
		fmt.Fprintf(&b, "- load average (1, 5, 15 min): %s at the start, %s at the end\n", orDash(f.LoadStart), orDash(f.LoadEnd))
		for _, n := range f.Notes {
			b.WriteString("- " + n + "\n")
		}
		if f.Profile != "" {
			b.WriteString("\nWhere the time goes:\n\n```\n" + f.Profile + "\n```\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func verdict(f *Figure) string {
	switch {
	case f.Met == nil:
		return "NOT MEASURED"
	case *f.Met:
		return "MET"
	}
	return "**NOT MET**"
}

// shortCPU is a figure's CPU without its explanation (in parentheses or
// after a comma), for the summary.
func shortCPU(s string) string {
	if i := strings.Index(s, " ("); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ", "); i >= 0 {
		s = s[:i]
	}
	return s
}

// load1 is the 1-minute load average at a figure's start and end.
func load1(f *Figure) string {
	first := func(s string) string {
		if fs := strings.Fields(s); len(fs) > 0 {
			return fs[0]
		}
		return "-"
	}
	return first(f.LoadStart) + " -> " + first(f.LoadEnd)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
