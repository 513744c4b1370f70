package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
)

func newExplainCmd(s *streams) *cobra.Command {
	var account, from, to string
	cmd := &cobra.Command{
		Use:   "explain DIR [--account A] --from PARTY --to PARTY",
		Short: "Explain which recordings one call starts, and why",
		Long: `explain compiles the policy in DIR and traces the decision of one call of
account A, step by step:

  1. the account's inbound cell for where the call comes from; when it does
     not record, the account's outbound cell for where the call goes;
  2. the caller device's outbound cell (a call from offnet or from another
     account has no caller in this account);
  3. the inbound cell of every device that rings (a user's devices, never
     the caller's own).

Every consulted cell says whether it records and where each field that
mattered came from ("device:d1 call_recording.any.any.enabled",
"builtin format", ...). The trace ends with the recordings the call starts.

A party is device:<id>, user:<id> (callee only), offnet, or other-account (a
party on another account of the platform: the call is onnet). Either may be
written account:<id>/<party> instead of using --account. A call between two
accounts (--from account:A/device:X --to account:B/device:Y) is traced once
per account: each account decides on its own legs (SPEC 2.7), A as the
caller's account with the callee on another account, B as the callee's
account with the caller on another account.

Exit status: 0 ok, 1 invalid policy, 2 usage or I/O error (unknown account,
device or user included).`,
		Example: `  recpol explain policies --account acme --from offnet --to user:bob
  recpol explain policies --account acme --from device:desk-1 --to offnet
  recpol explain policies --from account:acme/device:desk-1 --to account:beta/user:ann`,
		Args: exactArgs(1, "a policy directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || to == "" {
				return usageErr(fmt.Errorf("explain needs --from and --to; see 'recpol explain --help'"))
			}
			fa, f, err := parseAccountParty(from, account)
			if err != nil {
				return usageErr(fmt.Errorf("--from: %w", err))
			}
			if f.Kind == table.UserParty {
				return usageErr(fmt.Errorf("--from %s: a call is placed by a device, from offnet or from another account", from))
			}
			ta, tp, err := parseAccountParty(to, account)
			if err != nil {
				return usageErr(fmt.Errorf("--to: %w", err))
			}
			if fa == "" || ta == "" {
				return usageErr(fmt.Errorf("explain needs --account, or both parties written account:<id>/<party>"))
			}
			t, err := compileDir(s, args[0])
			if err != nil {
				return err
			}
			type side struct {
				acct string
				call table.Call
			}
			sides := []side{{fa, table.Call{From: f, To: tp}}}
			if fa != ta {
				if f.Kind == table.OtherAccountParty || tp.Kind == table.OtherAccountParty {
					return usageErr(fmt.Errorf("a call between accounts %s and %s names its parties, not other-account", fa, ta))
				}
				sides = []side{
					{fa, table.Call{From: f, To: table.OtherAccountRef()}},
					{ta, table.Call{From: table.OtherAccountRef(), To: tp}},
				}
			}
			for i, sd := range sides {
				a, ok := t.Account(sd.acct)
				if !ok {
					return usageErr(fmt.Errorf("account %s: no such account in %s", sd.acct, args[0]))
				}
				if i > 0 {
					fmt.Fprintln(s.stdout)
				}
				if err := simulate.Explain(s.stdout, a, sd.call); err != nil {
					return usageErr(err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "the `ACCOUNT` id the call belongs to (unless the parties name theirs)")
	cmd.Flags().StringVar(&from, "from", "", "the caller: device:<id>, offnet or other-account, optionally as account:<id>/<party>")
	cmd.Flags().StringVar(&to, "to", "", "the callee: device:<id>, user:<id>, offnet or other-account, optionally as account:<id>/<party>")
	return cmd
}

// parseAccountParty parses "[account:<id>/]<party>"; an account the party
// does not name is def.
func parseAccountParty(s, def string) (string, table.Party, error) {
	acct := def
	if rest, ok := strings.CutPrefix(s, "account:"); ok {
		id, party, ok := strings.Cut(rest, "/")
		if !ok || id == "" {
			return "", table.Party{}, fmt.Errorf("%q: want account:<id>/<party>", s)
		}
		if def != "" && def != id {
			return "", table.Party{}, fmt.Errorf("%q names account %s, --account says %s", s, id, def)
		}
		acct, s = id, party
	}
	p, err := table.ParseParty(s)
	return acct, p, err
}
