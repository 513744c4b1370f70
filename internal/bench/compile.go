package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/recpol/recpol/compiler"
)

// coldCompile runs `recpol compile` in a new process with a fresh, empty
// cache directory each run.
func (r *runner) coldCompile(ctx context.Context, tree string, runs int) ([]proc, string, error) {
	var ps []proc
	var cmdline string
	for i := 0; i < runs; i++ {
		cache, err := os.MkdirTemp(r.cfg.Work, "cache-")
		if err != nil {
			return nil, "", err
		}
		out := filepath.Join(r.cfg.Work, "table.json")
		cmdline = fmt.Sprintf("recpol compile %s -o %s --cache %s  # a new empty cache dir each run", r.rel(tree), r.rel(out), r.rel(filepath.Join(r.cfg.Work, "cache-XXXX")))
		p, err := r.runProc(ctx, "", nil, r.cfg.Recpol, "compile", tree, "-o", out, "--cache", cache)
		os.RemoveAll(cache)
		if err != nil {
			return nil, cmdline, err
		}
		r.logf("cold compile %s: %s, %s, %s", filepath.Base(tree), dur(p.wall), cpuDur(p.cpu), mb(p.maxRSS))
		ps = append(ps, p)
	}
	return ps, cmdline, nil
}

// cueVet runs `cue vet` on the tree (its files and recpol_schema.cue, one
// package) in a new process.
func (r *runner) cueVet(ctx context.Context, tree string, runs int, onceOver time.Duration) ([]proc, string, error) {
	if r.cfg.Cue == "" {
		return nil, "", errNoCue
	}
	if _, err := os.Stat(r.cfg.Cue); err != nil {
		return nil, "", errNoCue
	}
	cmdline := fmt.Sprintf("(cd %s && cue vet .)", r.rel(tree))
	var ps []proc
	for i := 0; i < runs; i++ {
		p, err := r.runProc(ctx, tree, nil, r.cfg.Cue, "vet", ".")
		if err != nil {
			return nil, cmdline, err
		}
		r.logf("cue vet %s: %s, %s, %s", filepath.Base(tree), dur(p.wall), cpuDur(p.cpu), mb(p.maxRSS))
		ps = append(ps, p)
		if onceOver > 0 && p.wall > onceOver {
			break
		}
	}
	return ps, cmdline, nil
}

func walls(ps []proc) []time.Duration {
	var out []time.Duration
	for _, p := range ps {
		out = append(out, p.wall)
	}
	return out
}

func cpus(ps []proc) []time.Duration {
	var out []time.Duration
	for _, p := range ps {
		out = append(out, p.cpu)
	}
	return out
}

// cpuOf says the median CPU time of child runs, and whose it is.
func cpuOf(ps []proc) string {
	return fmt.Sprintf("%s (user + system, the child's rusage; %s)", dur(median(cpus(ps))), spread(cpus(ps)))
}

func rsss(ps []proc) []int64 {
	var out []int64
	for _, p := range ps {
		out = append(out, p.maxRSS)
	}
	return out
}

// compileFigures measures the cold compiles of both trees against cue vet
// and the warm compile against the cold one.
func (r *runner) compileFigures(ctx context.Context) {
	n, large := r.sz.accounts, r.sz.large
	cold := r.figure(fmt.Sprintf("cold compile, %d accounts x %d endpoints", n, r.sz.users+r.sz.devices),
		"<= 0.35x cue vet's time, <= 0.5x its CPU, <= 0.2x its peak memory (issue 15; issue 6 asked <= 0.1x memory)")
	coldRuns, cmd, err := r.coldCompile(ctx, r.tree, r.sz.slowRuns)
	if err != nil {
		r.fail(cold, err)
		return
	}
	cold.Commands = []string{cmd}
	cw, cm := median(walls(coldRuns)), median(rsss(coldRuns))
	cold.Value = fmt.Sprintf("%s, peak RSS %s (%s)", dur(cw), mb(cm), spread(walls(coldRuns)))
	cold.CPU = cpuOf(coldRuns)
	peer, pcmd, err := r.cueVet(ctx, r.tree, r.sz.slowRuns, 0)
	if pcmd != "" {
		cold.Commands = append(cold.Commands, pcmd)
	}
	if err != nil {
		cold.Peer, cold.Ratio = "not measured", "-"
		cold.Notes = append(cold.Notes, "cue vet: "+firstLine(err.Error()))
	} else {
		pw, pm := median(walls(peer)), median(rsss(peer))
		cold.Peer = fmt.Sprintf("cue vet: %s, %s, peak RSS %s (%s)", dur(pw), cpuDur(median(cpus(peer))), mb(pm), spread(walls(peer)))
		tr, mr := float64(cw)/float64(pw), float64(cm)/float64(pm)
		cold.Ratio = fmt.Sprintf("time %.2fx, CPU %s, memory %.2fx", tr, ratio(float64(median(cpus(coldRuns))), float64(median(cpus(peer)))), mr)
		cr := float64(median(cpus(coldRuns))) / float64(median(cpus(peer)))
		cold.Met = met(tr <= 0.35 && cr <= 0.5 && mr <= 0.2)
		issue6 := "MET"
		if mr > 0.1 {
			issue6 = "NOT MET"
		}
		cold.Notes = append(cold.Notes, fmt.Sprintf("issue 6's stricter memory goal, <= 0.1x cue vet's peak: %s (%.2fx)", issue6, mr))
	}
	cold.Notes = append(cold.Notes, peakNote)
	r.add(cold)
	if cold.Met != nil && !*cold.Met {
		cold.Profile = r.compileProfile(cold.Name, r.tree)
	}

	lf := r.figure(fmt.Sprintf("cold compile, %d accounts", large), "< 10 s and < 500 MB")
	lruns, lcmd, err := r.coldCompile(ctx, r.large, r.sz.slowRuns)
	if err != nil {
		r.fail(lf, err)
	} else {
		lf.Commands = []string{lcmd}
		lw, lm := median(walls(lruns)), median(rsss(lruns))
		lf.Value = fmt.Sprintf("%s, peak RSS %s (%s)", dur(lw), mb(lm), spread(walls(lruns)))
		lf.CPU = cpuOf(lruns)
		lf.Notes = append(lf.Notes, peakNote)
		lf.Met = met(lw < 10*time.Second && lm < 500<<20)
		peer, pcmd, err := r.cueVet(ctx, r.large, r.sz.slowRuns, r.sz.skipPeerLargeOver)
		if pcmd != "" {
			lf.Commands = append(lf.Commands, pcmd)
		}
		if err != nil {
			lf.Peer, lf.Ratio = "not measured", "-"
			lf.Notes = append(lf.Notes, "cue vet: "+firstLine(err.Error()))
		} else {
			pw, pm := median(walls(peer)), median(rsss(peer))
			lf.Peer = fmt.Sprintf("cue vet: %s, %s, peak RSS %s (%s)", dur(pw), cpuDur(median(cpus(peer))), mb(pm), spread(walls(peer)))
			lf.Ratio = fmt.Sprintf("time %s, CPU %s, memory %s", ratio(float64(lw), float64(pw)), ratio(float64(median(cpus(lruns))), float64(median(cpus(peer)))), ratio(float64(lm), float64(pm)))
			if len(peer) < r.sz.slowRuns {
				lf.Notes = append(lf.Notes, fmt.Sprintf("cue vet ran %d time(s): one run took longer than %s", len(peer), dur(r.sz.skipPeerLargeOver)))
			}
		}
		r.add(lf)
		if !*lf.Met {
			lf.Profile = r.compileProfile(lf.Name, r.large)
		}
	}

	wf := r.figure(fmt.Sprintf("warm compile, nothing changed, %d accounts", n), "< 100 ms")
	cache := filepath.Join(r.cfg.Work, "warm-cache")
	os.RemoveAll(cache)
	out := filepath.Join(r.cfg.Work, "table.json")
	if _, err := r.runProc(ctx, "", nil, r.cfg.Recpol, "compile", r.tree, "-o", out, "--cache", cache); err != nil {
		r.fail(wf, err)
		return
	}
	var warm []proc
	for i := 0; i < r.sz.fastRuns; i++ {
		p, err := r.runProc(ctx, "", nil, r.cfg.Recpol, "compile", r.tree, "-o", out, "--cache", cache)
		if err != nil {
			r.fail(wf, err)
			return
		}
		warm = append(warm, p)
	}
	ww := median(walls(warm))
	wf.Commands = []string{fmt.Sprintf("recpol compile %s -o %s --cache %s  # the cache filled by one compile before", r.rel(r.tree), r.rel(out), r.rel(cache))}
	wf.Value = fmt.Sprintf("%s, peak RSS %s (%s)", dur(ww), mb(median(rsss(warm))), spread(walls(warm)))
	wf.CPU = cpuOf(warm)
	wf.Peer = "cold compile: " + dur(cw)
	wf.Ratio = ratio(float64(ww), float64(cw))
	wf.Met = met(ww < 100*time.Millisecond)
	wf.Notes = append(wf.Notes, "a new process each run: start-up, listing and stating the files, reading the manifest's header and the output's stamp all count; nothing is parsed, decoded or written", peakNote)
	if start, err := r.startup(ctx); err == nil {
		wf.Notes = append(wf.Notes, "of which the process's start-up: "+start)
	}
	r.add(wf)
	if !*wf.Met {
		wf.Profile = r.warmProfile(wf.Name)
	}
}

// startup measures the start of a recpol process that does nothing:
// `recpol version`, the floor under any command's time.
func (r *runner) startup(ctx context.Context) (string, error) {
	var ps []proc
	for i := 0; i < r.sz.fastRuns; i++ {
		p, err := r.runProc(ctx, "", nil, r.cfg.Recpol, "version")
		if err != nil {
			return "", err
		}
		ps = append(ps, p)
	}
	return fmt.Sprintf("recpol version takes %s, %s (%s)", dur(median(walls(ps))), cpuDur(median(cpus(ps))), spread(walls(ps))), nil
}

// warmProfile profiles what a warm `recpol compile DIR -o FILE` runs in
// its process, compiler.OutputCurrent, which is all it runs when nothing
// changed. A manifest is salted with the executable that wrote it, so
// this process fills a cache of its own first, as one compile of the CLI
// does, and checks that the path it profiles is the warm one.
func (r *runner) warmProfile(name string) string {
	cache := filepath.Join(r.cfg.Work, "warm-profile-cache")
	out := filepath.Join(r.cfg.Work, "warm-profile-table.json")
	os.RemoveAll(cache)
	defer os.RemoveAll(cache)
	defer os.Remove(out)
	res, err := compiler.Options{CacheDir: cache}.Compile(r.tree)
	if err != nil {
		return "profile: " + err.Error()
	}
	if res.Table == nil {
		return "profile: " + firstLine(fmt.Sprint(res.Diagnostics.Errors()))
	}
	if err := writeTable(out, res); err != nil {
		return "profile: " + err.Error()
	}
	compiler.RecordOutput(cache, out, res.Table.Version)
	runs := 0
	prof := r.profile(name, func() error {
		for start := time.Now(); time.Since(start) < r.sz.profileFor; runs++ {
			if _, ok := compiler.OutputCurrent(cache, r.tree, out); !ok {
				return fmt.Errorf("the warm path missed: compiler.OutputCurrent found the policy or the output changed")
			}
		}
		return nil
	})
	return prof + fmt.Sprintf("\n(profile: compiler.OutputCurrent in-process, what a warm `recpol compile -o` runs, %d times in %s, with a cache this process filled; the process's start-up is not in it)", runs, r.sz.profileFor)
}

// writeTable writes a compiled table's JSON to the file name.
func writeTable(name string, res *compiler.Result) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	werr := res.Table.WriteJSON(f)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("writing %s: %w", name, werr)
	}
	return nil
}

// compileProfile profiles a cold in-process compile of tree.
func (r *runner) compileProfile(name, tree string) string {
	return r.profile(name, func() error {
		files, err := compiler.ReadDir(tree)
		if err != nil {
			return err
		}
		cache, err := os.MkdirTemp(r.cfg.Work, "cache-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(cache)
		res := compiler.Options{CacheDir: cache}.CompileFiles(files)
		if res.Table == nil {
			return fmt.Errorf("%s", strings.TrimSpace(fmt.Sprint(res.Diagnostics.Errors())))
		}
		return nil
	}) + "\n(profile: one cold compiler.Options{CacheDir: <empty dir>}.CompileFiles in-process)"
}
