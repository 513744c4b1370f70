package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/cue/input"
	"github.com/recpol/recpol/internal/readlimit"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/simulate"
)

// maxExpectBytes bounds the size of an expectations file: a larger one is
// refused, never read whole.
const maxExpectBytes = 4 << 20

func newSimulateCmd(s *streams) *cobra.Command {
	var format, out, expect, scen, preset, account string
	var matrix bool
	var maxChars int
	cmd := &cobra.Command{
		Use:   "simulate DIR | --matrix",
		Short: "Show which recordings every call of a policy starts",
		Long: `simulate compiles the policy in DIR and places every call an account can
see: each device (by id) and offnet calling each device (a device calling
itself included), each user (all of whose other devices ring) and offnet;
in a policy of several accounts also other-account (a party on another
account of the platform, onnet: each account decides on its own legs)
calling and called.
For every call it shows the recordings it starts: the account's
(at most one), the caller device's and one per ringing callee device.

Formats:
  text   one truth table per account for a terminal (default)
  md     for a pull-request comment: a summary line per account (users,
         devices, calls, calls recorded, by account, caller and callee
         recordings, callflows, devices with DTMF codes), then each
         account's truth table, callflows and DTMF codes in a <details>
         block; on stdout at most --max-chars characters (default 60,000):
         past it the tables that do not fit are left out, with a note; -o
         FILE writes it whole
  json   every call with every recording: scope, endpoint, leg, origin,
         settings and the provenance of each setting
         {"format_version":1, "policy_version":"sha256:...",
          "accounts":[{"account", "calls":[{"from", "to", "recordings":[...]}]}]}
  junit  only with --expect: one testcase per expectation (a simulation
         alone asserts nothing, so it has no test case that could fail)

--account PATTERN keeps the accounts whose id matches the glob pattern
(text, md and json).

In the tables A = account recording, C = caller device, E = callee device
(En = n ringing devices recorded), - = nothing.

With --matrix (and no DIR) simulate reproduces KAZOO's documented recording
matrix instead: it compiles single-setting policies through the compiler,
compares each of the 24 documented cells (plus 8 undocumented offnet->offnet
cells) and runs the named precedence and condition checks; formats text, md
and json. It exits with status 1 when any cell or check does not hold.

With --scenario FILE simulate predicts, for the timed calls of a scenario
(the format the fake switch plays), every recording the runtime makes: leg,
account, scope, origin, settings, what starts it (media, answer, bridge,
callflow, dtmf), start and stop on the scenario's clock, duration_ms and
masked spans, and whether it is kept (not shorter than record_min_sec). The
calls run through the same call state machine as the runtime: transfers,
pickups, parks, loopbacks and calls between accounts included. Legs are
classified by --preset as the runtime's classify.preset does (default
recpol: recpol_account, recpol_device, recpol_network; kazoo: ecallmgr_*
variables; freeswitch: directory users). Only --format json.

In the text and md tables each account also lists its callflows (numbers,
patterns, each action with its settings, what a call to them records) and
its devices' DTMF codes (grouped by identical metaflows: the scope each code
comes from, whose DTMF fires it and what it does); json has them as
"callflows" and "metaflows" of each account.

With --expect FILE.cue simulate checks assertions written by the operator
against the simulation instead of printing the tables. Each expectation is
about calls (from/to), calls to a callflow number (number) or a DTMF code
(dtmf); it selects with glob patterns and states what must hold for every
call or device selected (the schema: README, "Expectations"):

  expect: "offnet calls to sales are recorded by the account": {
      account: "sales"            // default "*"
      from:    "offnet"           // device:<id>, device:*, offnet, *
      to:      "device:*"         // device:<id>, user:<id>, user:*, offnet, *
      account_recording: true     // optional: bool
      account_origin: "inbound from offnet to account"   // optional
      caller_recording:  false    // optional: bool
      callee_recording:  true     // optional: at least one ringing device records
      recordings: 2               // optional: exact number of recordings
      settings: {format: "mp3", url: "https://rec.example.com/sales"}
                                  // optional: every recording has these settings
  }
  expect: "card payments are recorded for 30 minutes": {
      account: "pci", number: "+442071234567", from: "offnet"   // from: default "*"
      callflow: "payments", label: "Card payments", callflow_recordings: 1
      settings: {time_limit: 1800}   // of the callflow's recordings
  }
  expect: "*72 masks every recording of any call of account pci": {
      account: "pci", dtmf: "*72"    // endpoint: default "device:*"
      action: "mask", binding_from: "account:*", listen: "self"
      every_recording: true          // or starts_recording: true (+ settings)
  }

An expectation that asserts nothing, an assertion that does not apply to
its kind or an unknown field is an error, printed like vet's diagnostics
(file:line:col: path: message) with exit status 1. An expectation that
selects no call fails. Every result names the expectation's file:line:col.
The report is text, md, json ({"format_version", "policy_version", "file",
"ok", "expectations": [{"name", "file", "line", "column", "ok", "calls",
"detail"}]}) or junit (one testcase per expectation, with its file and line,
failing with its detail).

Exit status: 0 ok, 1 invalid policy, invalid expectations file, matrix
mismatch or failed expectation, 2 usage or I/O error.`,
		Example: `  recpol simulate policies
  recpol simulate policies --format md -o simulation.md
  recpol simulate policies --format md --account 'pci-*'
  recpol simulate policies --format json | jq '.accounts[].calls[] | select(.recordings != [])'
  recpol simulate policies --expect expect.cue --format junit -o expect.xml
  recpol simulate --matrix`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if matrix {
				if len(args) != 0 {
					return usageErr(fmt.Errorf("simulate --matrix takes no policy directory"))
				}
				if expect != "" {
					return usageErr(fmt.Errorf("--expect checks a policy directory; it cannot be combined with --matrix"))
				}
				return runMatrix(s, format, out)
			}
			if len(args) != 1 {
				return usageErr(fmt.Errorf("simulate takes a policy directory (got %d arguments); see 'recpol simulate --help'", len(args)))
			}
			if scen != "" {
				return runScenario(s, args[0], scen, preset, format, out)
			}
			var write func(*simulate.Result, io.Writer) error
			switch format {
			case "text":
				write = (*simulate.Result).WriteText
			case "md":
				write = (*simulate.Result).WriteMarkdown
			case "json":
				write = (*simulate.Result).WriteJSON
			case "junit":
				if expect == "" {
					return usageErr(fmt.Errorf("--format junit reports expectations: give --expect FILE.cue " +
						"(a simulation alone asserts nothing, so every test case would pass; see 'recpol simulate --help')"))
				}
			default:
				return usageErr(fmt.Errorf("--format %q: want text, md, json or junit", format))
			}
			if format == "md" && out == "" {
				write = func(r *simulate.Result, w io.Writer) error {
					return r.WriteMarkdownWith(w, simulate.MarkdownOptions{MaxChars: maxChars})
				}
			}
			var exps []simulate.Expectation
			if expect != "" {
				data, err := readlimit.File(expect, maxExpectBytes)
				if err != nil {
					return usageErr(fmt.Errorf("--expect: %w", err))
				}
				if exps, err = simulate.ParseExpectations(expect, data); err != nil {
					var ds input.Diagnostics
					if errors.As(err, &ds) {
						_ = input.Print(s.stderr, ds)
						return invalid()
					}
					return usageErr(err)
				}
			}
			t, err := compileDir(s, args[0])
			if err != nil {
				return err
			}
			r, err := simulate.Run(t)
			if err != nil {
				return usageErr(fmt.Errorf("simulating %s: %w", args[0], err))
			}
			if expect != "" {
				return writeExpect(s, format, out, r.Check(expect, exps))
			}
			if account != "" {
				if err := r.KeepAccounts(account); err != nil {
					return usageErr(fmt.Errorf("--account: %w", err))
				}
			}
			return writeOutput(s, out, func(w io.Writer) error { return write(r, w) })
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, md, json or junit (junit: with --expect; --matrix: text, md or json)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to `FILE` instead of stdout")
	cmd.Flags().StringVar(&expect, "expect", "", "check the assertions of `FILE.cue` against the simulation")
	cmd.Flags().StringVar(&scen, "scenario", "", "predict the recordings of the timed calls of scenario `FILE` (json output)")
	cmd.Flags().StringVar(&preset, "preset", "recpol", "with --scenario: classify legs by the runtime's `PRESET` (recpol, kazoo or freeswitch)")
	cmd.Flags().StringVar(&account, "account", "", "show only the accounts whose id matches the glob `PATTERN`")
	cmd.Flags().IntVar(&maxChars, "max-chars", simulate.CommentLimit, "md on stdout: the most characters the report may have (0: no limit)")
	cmd.Flags().BoolVar(&matrix, "matrix", false, "reproduce KAZOO's documented recording matrix and the precedence checks")
	return cmd
}

// writeExpect prints an expectations report; it exits 1 when one failed.
func writeExpect(s *streams, format, out string, rep *simulate.ExpectReport) error {
	var write func(io.Writer) error
	switch format {
	case "text":
		write = rep.WriteText
	case "md":
		write = rep.WriteMarkdown
	case "json":
		write = rep.WriteJSON
	case "junit":
		write = rep.WriteJUnit
	}
	if err := writeOutput(s, out, write); err != nil {
		return err
	}
	if !rep.OK {
		return invalid()
	}
	return nil
}

// runMatrix reproduces the documented matrix; it exits 1 when a cell or a
// check does not hold.
func runMatrix(s *streams, format, out string) error {
	var write func(*simulate.MatrixReport, io.Writer) error
	switch format {
	case "text":
		write = (*simulate.MatrixReport).WriteText
	case "md":
		write = (*simulate.MatrixReport).WriteMarkdown
	case "json":
		write = (*simulate.MatrixReport).WriteJSON
	default:
		return usageErr(fmt.Errorf("--matrix --format %q: want text, md or json", format))
	}
	rep, err := simulate.RunMatrix()
	if err != nil {
		return usageErr(err)
	}
	if err := writeOutput(s, out, func(w io.Writer) error { return write(rep, w) }); err != nil {
		return err
	}
	if !rep.OK {
		return invalid()
	}
	return nil
}

// runScenario predicts the recordings of a scenario's calls.
func runScenario(s *streams, dir, file, preset, format, out string) error {
	if format != "json" {
		return usageErr(fmt.Errorf("--scenario writes json: use --format json"))
	}
	cl, err := classify.New(classify.Config{Preset: preset})
	if err != nil {
		return usageErr(err)
	}
	sc, err := scenario.ParseFile(file)
	if err != nil {
		return usageErr(err)
	}
	t, err := compileDir(s, dir)
	if err != nil {
		return err
	}
	ps, err := simulate.PredictScenarioWith(t, sc, cl)
	if err != nil {
		return usageErr(fmt.Errorf("simulating %s: %w", file, err))
	}
	return writeOutput(s, out, func(w io.Writer) error { return simulate.WritePredictionJSON(w, t.Version, ps) })
}
