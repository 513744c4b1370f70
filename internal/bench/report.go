package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// HandMarker starts the part of BENCHMARKS.md measured by hand, each figure
// with the command that measured it; make bench keeps it as it is.
const HandMarker = "<!-- measured by hand below this line: make bench keeps it -->"

// Markdown writes the report as BENCHMARKS.md.
func (rep *Report) Markdown(w io.Writer, invocation string) error {
	var b strings.Builder
	b.WriteString("# recpol benchmarks\n\n")
	b.WriteString("Written by `make bench` (`" + invocation + "`); do not edit by hand. ")
	b.WriteString("Each figure is the median of several runs; its peer is measured in the same run. ")
	b.WriteString("A goal not met carries the top of a CPU profile of the same work (`go tool pprof -top -cum`).\n\n")
	if rep.Quick {
		b.WriteString("**Quick mode: small trees and few runs. These numbers say nothing about the goals.**\n\n")
	}
	b.WriteString("## Machine\n\n")
	for _, m := range rep.Machine {
		b.WriteString("- " + m + "\n")
	}
	fmt.Fprintf(&b, "- Date: %s, the whole run took %s\n\n", rep.Started.UTC().Format(time.RFC3339), dur(rep.Took.Round(time.Second)))

	b.WriteString("## Summary\n\n| figure | median | peer | ratio | goal | |\n|---|---|---|---|---|---|\n")
	for _, f := range rep.Figures {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(f.Name), cell(f.Value), cell(orDash(f.Peer)), cell(orDash(f.Ratio)), cell(f.Goal), verdict(f))
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
		fmt.Fprintf(&b, "- median: %s\n- peer: %s\n- ratio: %s\n- goal: %s\n", f.Value, orDash(f.Peer), orDash(f.Ratio), f.Goal)
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
