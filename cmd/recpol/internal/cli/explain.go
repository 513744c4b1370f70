package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
)

func newExplainCmd(s *streams) *cobra.Command {
	var account, from, to string
	cmd := &cobra.Command{
		Use:   "explain DIR --account A --from device:X|offnet --to device:Y|user:U|offnet",
		Short: "Explain which recordings one call starts, and why",
		Long: `explain compiles the policy in DIR and traces the decision of one call of
account A, step by step:

  1. the account's inbound cell for where the call comes from; when it does
     not record, the account's outbound cell for where the call goes;
  2. the caller device's outbound cell (a call from offnet has no caller);
  3. the inbound cell of every device that rings (a user's devices, never
     the caller's own).

Every consulted cell says whether it records and where each field that
mattered came from ("device:d1 call_recording.any.any.enabled",
"builtin format", ...). The trace ends with the recordings the call starts.

Exit status: 0 ok, 1 invalid policy, 2 usage or I/O error (unknown account,
device or user included).`,
		Example: `  recpol explain policies --account acme --from offnet --to user:bob
  recpol explain policies --account acme --from device:desk-1 --to offnet`,
		Args: exactArgs(1, "a policy directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if account == "" || from == "" || to == "" {
				return usageErr(fmt.Errorf("explain needs --account, --from and --to; see 'recpol explain --help'"))
			}
			f, err := table.ParseParty(from)
			if err != nil {
				return usageErr(fmt.Errorf("--from: %w", err))
			}
			if f.Kind == table.UserParty {
				return usageErr(fmt.Errorf("--from %s: a call is placed by a device or from offnet", from))
			}
			tp, err := table.ParseParty(to)
			if err != nil {
				return usageErr(fmt.Errorf("--to: %w", err))
			}
			t, err := compileDir(s, args[0])
			if err != nil {
				return err
			}
			a, ok := t.Account(account)
			if !ok {
				return usageErr(fmt.Errorf("--account %s: no such account in %s", account, args[0]))
			}
			if err := simulate.Explain(s.stdout, a, table.Call{From: f, To: tp}); err != nil {
				return usageErr(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "the `ACCOUNT` id the call belongs to")
	cmd.Flags().StringVar(&from, "from", "", "the caller: device:<id> or offnet")
	cmd.Flags().StringVar(&to, "to", "", "the callee: device:<id>, user:<id> or offnet")
	return cmd
}
