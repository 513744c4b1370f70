// Package cli implements the recpol command line. It is a library so that
// the commands can be run in-process by tests: Main returns the exit code
// instead of calling os.Exit, and every error is printed in one place.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/cue/input"
)

// Exit codes shared by every command.
const (
	ExitOK      = 0 // success
	ExitInvalid = 1 // the policy is invalid, or an expectation failed
	ExitUsage   = 2 // usage or I/O error
)

// exitError carries an exit code through cobra's error return. A nil err
// with a code means the command already reported what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// invalid returns an error that makes recpol exit with ExitInvalid without
// printing anything more (the command printed its diagnostics itself).
func invalid() error { return &exitError{code: ExitInvalid} }

// usageErr wraps err so that recpol exits with ExitUsage.
func usageErr(err error) error { return &exitError{code: ExitUsage, err: err} }

// Main runs recpol with the process's arguments and standard streams and
// returns the exit code.
func Main() int {
	return Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// Run runs recpol with the given arguments and streams and returns the exit
// code. It is what Main calls, and what tests call.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunContext(context.Background(), args, stdin, stdout, stderr)
}

// RunContext is Run with a context: a command that runs until it is
// stopped (run, fakeswitch) stops when ctx is done, as on SIGINT.
func RunContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		var ds input.Diagnostics
		switch {
		case errors.As(ee.err, &ds):
			// An input's errors (a runtime config's, a scenario's) print
			// as vet prints a policy's: one diagnostic a line.
			_ = input.Print(stderr, ds)
		case ee.err != nil:
			fmt.Fprintf(stderr, "recpol: %v\n", ee.err)
		}
		return ee.code
	}
	// Anything else comes from cobra's own argument and flag parsing.
	fmt.Fprintf(stderr, "recpol: %v\nRun 'recpol --help' for usage.\n", err)
	return ExitUsage
}

// streams are the standard streams a command writes to.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	s := &streams{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "recpol",
		Short: "Call-recording policy as code for FreeSWITCH platforms",
		Long: `recpol turns call-recording policy written in CUE into a versioned decision
table, shows which calls a policy records, and executes it beside FreeSWITCH.

  recpol vet DIR         check a policy directory and report every error
  recpol compile DIR     compile a policy directory into its decision table
  recpol simulate DIR    show which recordings every call starts
  recpol simulate --matrix   reproduce KAZOO's documented recording matrix
  recpol explain DIR     trace the decisions of one call
  recpol diff OLD NEW    what a policy change changes, for review
  recpol schema          print the policy schema for editors and 'cue vet'

Exit status: 0 ok, 1 the policy is invalid, 2 usage or I/O error.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		newVetCmd(s),
		newCompileCmd(s),
		newSchemaCmd(s),
		newGenCmd(s),
		newVersionCmd(s),
		newSimulateCmd(s),
		newExplainCmd(s),
		newDiffCmd(s),
		newRunCmd(s),
		newDemoCmd(s),
		newFakeswitchCmd(s),
		newCatalogCmd(s),
	)
	return root
}
