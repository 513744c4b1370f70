package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/cue/input"
	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
)

// lintDiagnostics are the warnings only a simulation of every call of a
// compiled policy can give: a leg one call records twice, recording
// settings no call reaches. Each is positioned at the setting that causes
// it (see compiler.Result.SettingPosition); one without such a setting
// carries the directory.
func lintDiagnostics(dir string, res *compiler.Result) compiler.Diagnostics {
	var ds compiler.Diagnostics
	for _, f := range simulate.Lint(res.Table) {
		pos, ok := res.SettingPosition(f.Account, f.Setting)
		if !ok {
			pos = compiler.Position{File: dir}
		}
		ds = append(ds, compiler.Diagnostic{Code: f.Code, Severity: compiler.Warning,
			Position: pos, Path: "accounts." + f.Account,
			Message: "account " + f.Account + ": " + f.Message})
	}
	return ds
}

// compileFlags are the flags of every command that compiles a policy.
type compileFlags struct {
	cache string
}

func (f *compileFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cache, "cache", "",
		"cache evaluated account groups in `DIR` (default: the user cache directory, $XDG_CACHE_HOME/recpol/compile; \"off\" disables it)")
}

// options returns the compiler options the flags ask for.
func (f *compileFlags) options() compiler.Options {
	var o compiler.Options
	switch f.cache {
	case "off":
	case "":
		if d, err := compiler.DefaultCacheDir(); err == nil {
			o.CacheDir = d
		}
	default:
		o.CacheDir = f.cache
	}
	return o
}

// compileDir compiles a policy directory and prints its diagnostics to
// stderr as text. It returns invalid() when the policy has errors and a
// usage error when the directory cannot be read.
func compileDir(s *streams, dir string) (*table.Table, error) {
	return compileDirWith(s, dir, compiler.Options{})
}

// compileDirWith is compileDir with compiler options.
func compileDirWith(s *streams, dir string, o compiler.Options) (*table.Table, error) {
	res, err := compileResult(s, dir, o, nil)
	if err != nil {
		return nil, err
	}
	return res.Table, nil
}

// printDiagnostics prints diagnostics to stderr as text, one mistake
// reached from many accounts once (see compiler.Diagnostics.Dedup).
func printDiagnostics(s *streams, ds compiler.Diagnostics) {
	_ = input.Print(s.stderr, ds.Dedup())
}

// compileResult compiles a policy directory and prints its diagnostics,
// with those more(res) adds to a valid policy, to stderr as text, sorted
// by position. It returns invalid() when the policy has errors and a usage
// error when the directory cannot be read.
func compileResult(s *streams, dir string, o compiler.Options, more func(*compiler.Result) compiler.Diagnostics) (*compiler.Result, error) {
	res, err := o.Compile(dir)
	if err != nil {
		return nil, usageErr(err)
	}
	ds := res.Diagnostics
	if res.Table != nil && more != nil {
		ds = append(append(compiler.Diagnostics(nil), ds...), more(res)...)
		ds.Sort()
	}
	printDiagnostics(s, ds)
	if res.Table == nil {
		return nil, invalid()
	}
	return res, nil
}

func newVetCmd(s *streams) *cobra.Command {
	var format string
	var quiet bool
	var cf compileFlags
	cmd := &cobra.Command{
		Use:   "vet DIR",
		Short: "Check a policy directory and report every error",
		Long: `vet compiles the policy in DIR (every .cue file of package recpol directly in
it) and reports every problem it finds, not only the first, each as

  file:line:col: message

Errors make vet exit with status 1. Warnings are printed too and keep exit
status 0: enabled set in defaults, and, from a simulation of every call, a
leg that one call records twice (the account and the caller device both
record the A-leg) and recording settings that no call ever reaches.

One mistake reached from many accounts (a template in a shared file) is
reported once, with how many accounts and the first few:

  shared.cue:9:76: accounts.*.call_recording...: 12345 is not allowed: ... (in 300 accounts: a, b, c and 297 more)

A valid policy ends with one line on stdout, unless --quiet:

  ok: 3 accounts, 12 users, 30 devices, 2 callflows (1 warning)

With --format json the diagnostics are printed to stdout as one JSON object
for editors and CI:

  {"ok": bool, "diagnostics": [{"code", "severity", "file", "line", "column",
                                "path", "message", "related": [...]}]}`,
		Example: `  recpol vet policies
  recpol vet --format json policies | jq '.diagnostics[] | .message'`,
		Args: exactArgs(1, "a policy directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "text":
				var warnings int
				res, err := compileResult(s, args[0], cf.options(), func(res *compiler.Result) compiler.Diagnostics {
					ds := lintDiagnostics(args[0], res)
					warnings = len(append(res.Diagnostics.Warnings(), ds...).Dedup())
					return ds
				})
				if err != nil || quiet {
					return err
				}
				fmt.Fprintln(s.stdout, vetSummary(res.Table, warnings))
				return nil
			case "json":
				res, err := cf.options().Compile(args[0])
				if err != nil {
					return usageErr(err)
				}
				if res.Table != nil {
					res.Diagnostics = append(res.Diagnostics, lintDiagnostics(args[0], res)...)
					res.Diagnostics.Sort()
				}
				res.Diagnostics = res.Diagnostics.Dedup()
				out := struct {
					OK          bool                 `json:"ok"`
					Diagnostics compiler.Diagnostics `json:"diagnostics"`
				}{OK: res.Table != nil, Diagnostics: res.Diagnostics}
				if out.Diagnostics == nil {
					out.Diagnostics = compiler.Diagnostics{}
				}
				enc := json.NewEncoder(s.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return usageErr(err)
				}
				if !out.OK {
					return invalid()
				}
				return nil
			}
			return usageErr(fmt.Errorf("--format %q: want text or json", format))
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text (to stderr) or json (to stdout)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "text: no ok line for a valid policy, only the diagnostics")
	cf.register(cmd)
	return cmd
}

func newCompileCmd(s *streams) *cobra.Command {
	var out string
	var summary bool
	var cf compileFlags
	cmd := &cobra.Command{
		Use:   "compile DIR",
		Short: "Compile a policy directory into its decision table",
		Long: `compile resolves every cell of the policy in DIR and writes the decision
table as canonical JSON (sorted keys, no insignificant whitespace): for every
account its 4 account cells, for every user and device its 8 endpoint cells,
its callflows and metaflows, each setting with its provenance. The table's
"version" depends only on the policy's meaning.

Diagnostics go to stderr; an invalid policy exits with status 1 and writes
nothing.

With a cache (the default), a compile of a directory whose files did not
change reads its table from the cache without evaluating anything, and
-o FILE is not rewritten when FILE still holds that table, untouched since
recpol wrote it.`,
		Example: `  recpol compile policies -o table.json
  recpol compile policies --summary`,
		Args: exactArgs(1, "a policy directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := cf.options()
			if !summary {
				if ds, ok := compiler.OutputCurrent(o.CacheDir, args[0], out); ok {
					printDiagnostics(s, ds)
					return nil // out holds this table already: nothing to decode
				}
			}
			t, err := compileDirWith(s, args[0], o)
			if err != nil {
				return err
			}
			if summary {
				writeSummary(s.stdout, t)
				if out == "" {
					return nil
				}
			}
			if compiler.OutputHolds(o.CacheDir, out, t.Version) {
				return nil // out holds this table already
			}
			if err := writeOutput(s, out, t.WriteJSON); err != nil {
				return err
			}
			compiler.RecordOutput(o.CacheDir, out, t.Version)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the table to `FILE` instead of stdout")
	cmd.Flags().BoolVar(&summary, "summary", false, "print a readable summary of the table instead of its JSON (unless -o is given too)")
	cf.register(cmd)
	return cmd
}

// writeOutput writes to stdout, or to a file when name is set. A regular
// file is replaced atomically, so a failed write never leaves a truncated
// table behind; anything else that exists (a device such as /dev/null, a
// named pipe) is written to as it is.
func writeOutput(s *streams, name string, write func(io.Writer) error) error {
	if name == "" || name == "-" {
		if err := write(s.stdout); err != nil {
			return usageErr(err)
		}
		return nil
	}
	if info, err := os.Stat(name); err == nil && !info.Mode().IsRegular() {
		if info.IsDir() {
			return usageErr(fmt.Errorf("writing %s: is a directory", name))
		}
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return usageErr(fmt.Errorf("writing %s: %w", name, err))
		}
		werr := write(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return usageErr(fmt.Errorf("writing %s: %w", name, werr))
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return usageErr(fmt.Errorf("writing %s: %w", name, err))
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return usageErr(fmt.Errorf("writing %s: %w", name, err))
	}
	if err := f.Close(); err != nil {
		return usageErr(fmt.Errorf("writing %s: %w", name, err))
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return usageErr(fmt.Errorf("writing %s: %w", name, err))
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return usageErr(fmt.Errorf("writing %s: %w", name, err))
	}
	return nil
}

// vetSummary is vet's line for a valid policy: "ok: 3 accounts, 12 users,
// 30 devices, 2 callflows", with the warnings when there are any.
func vetSummary(t *table.Table, warnings int) string {
	var users, devices, callflows int
	for _, id := range t.AccountIDs() {
		a, _ := t.Account(id)
		users += len(a.Users)
		devices += len(a.Devices)
		callflows += len(a.Callflows)
	}
	n := func(k int, one string) string {
		if k == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", k, one)
	}
	line := fmt.Sprintf("ok: %s, %s, %s, %s", n(len(t.AccountIDs()), "account"), n(users, "user"), n(devices, "device"), n(callflows, "callflow"))
	if warnings > 0 {
		line += " (" + n(warnings, "warning") + ")"
	}
	return line
}

// writeSummary prints one block per account: which cells record.
func writeSummary(w io.Writer, t *table.Table) {
	fmt.Fprintf(w, "table %s\n", t.Version)
	for _, id := range t.AccountIDs() {
		a, _ := t.Account(id)
		fmt.Fprintf(w, "\naccount %s: %d users, %d devices, %d callflows\n",
			id, len(a.Users), len(a.Devices), len(a.Callflows))
		fmt.Fprintf(w, "  %-28s %s\n", "", "in/onnet  in/offnet  out/onnet  out/offnet")
		fmt.Fprintf(w, "  %-28s %s\n", "account", cellRow(&a.Cells))
		for _, uid := range a.UserIDs() {
			fmt.Fprintf(w, "  %-28s %s\n", "user:"+uid, cellRow(&a.Users[uid].Cells))
		}
		for _, did := range a.DeviceIDs() {
			fmt.Fprintf(w, "  %-28s %s\n", "device:"+did, cellRow(&a.Devices[did].Cells))
		}
	}
}

func cellRow(c *table.Cells) string {
	mark := func(d table.Direction, n table.Network) string {
		if c.Get(d, n).Record {
			return "rec"
		}
		return "-"
	}
	return fmt.Sprintf("%-9s %-10s %-10s %s",
		mark(table.Inbound, table.Onnet), mark(table.Inbound, table.Offnet),
		mark(table.Outbound, table.Onnet), mark(table.Outbound, table.Offnet))
}

// exactArgs is cobra.ExactArgs with a message that says what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s (got %d arguments); see 'recpol %s --help'", cmd.Name(), what, len(args), cmd.Name())
		}
		return nil
	}
}
