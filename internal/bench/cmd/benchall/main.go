// Command benchall measures recpol against its performance goals and
// writes BENCHMARKS.md. `make bench` runs it:
//
//	go run ./internal/bench/cmd/benchall -recpol bin/recpol -cue bin/cue -o BENCHMARKS.md
//
// -quick uses small trees and few runs (a smoke test of the harness).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/recpol/recpol/compiler/isolate"
	"github.com/recpol/recpol/internal/bench"
)

func main() {
	isolate.Main() // the reload figures compile in a child worker, as the runtime does
	out := flag.String("o", "BENCHMARKS.md", "write the report to `FILE` (- for stdout)")
	recpol := flag.String("recpol", "bin/recpol", "the recpol `BINARY`")
	cue := flag.String("cue", "bin/cue", "the CUE CLI `BINARY` (the peer of the cold compile)")
	work := flag.String("work", "", "scratch `DIR` (default: a new temporary directory, removed at the end)")
	quick := flag.Bool("quick", false, "small trees and few runs")
	only := flag.String("only", "", "measure only these comma-separated `GROUPS` of figures (compile, reload, lookup, simulate, runtime); for iterating, not for BENCHMARKS.md")
	flag.Parse()
	var groups []string
	if *only != "" {
		groups = strings.Split(*only, ",")
		if filepath.Base(*out) == "BENCHMARKS.md" {
			fmt.Fprintln(os.Stderr, "benchall: -only measures part of the figures; write it elsewhere (-o /tmp/bench.md or -o -), BENCHMARKS.md holds every figure")
			os.Exit(2)
		}
	}
	if err := run(*out, *recpol, *cue, *work, *quick, groups); err != nil {
		fmt.Fprintln(os.Stderr, "benchall:", err)
		os.Exit(1)
	}
}

func run(out, recpol, cue, work string, quick bool, only []string) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if recpol, err = filepath.Abs(recpol); err != nil {
		return err
	}
	if cue, err = filepath.Abs(cue); err != nil {
		return err
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "recpol-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if work, err = filepath.Abs(work); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := bench.Run(ctx, bench.Config{Root: root, Work: work, Recpol: recpol, Cue: cue, Quick: quick, Log: os.Stderr, Only: only})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	inv := "go run ./internal/bench/cmd/benchall " + strings.Join(os.Args[1:], " ")
	if err := rep.Markdown(&b, strings.TrimSpace(inv)); err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(b.Bytes())
		return err
	}
	// Figures measured by hand (each with its command) follow the marker
	// in the report; a new run keeps them.
	if old, err := os.ReadFile(out); err == nil {
		if i := bytes.Index(old, []byte(bench.HandMarker)); i >= 0 {
			b.WriteString("\n")
			b.Write(old[i:])
		}
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}
