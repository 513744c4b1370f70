package cli

import (
	"fmt"
	"github.com/recpol/recpol/compiler"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/simulate"
	"github.com/recpol/recpol/table"
)

func newExplainCmd(s *streams) *cobra.Command {
	var account, from, to, number, dtmf, endpoint string
	cmd := &cobra.Command{
		Use:   "explain DIR [--account A] --from PARTY --to PARTY | --number N [--from PARTY] | --dtmf KEYS (--from --to | --endpoint E)",
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

With --number N explain traces a call to a dialled number instead (from
--from, default offnet): which callflow answers it and why it wins (an
exact number beats every pattern, the longest pattern match wins; the
losers are listed with the reason), what each of its actions starts or
stops with the provenance of every setting, and the account's and the
caller's own decisions for the call (the platform answers it: to onnet).

With --dtmf KEYS ("*72": the binding digit, then the code) explain says
what the keys do in the call --from --to: for the caller device and each
ringing device with metaflows (only --endpoint device:<id> when given), the
binding that answers and the scope it comes from (device > owner >
account), whose key presses fire it (listen_on, or the action's dtmf_leg),
and what it does to which recordings of the call (mask, unmask, pause and
resume act on every recording of the call; start and stop on the device's
own leg; a stop with scope "call" stops the call's policy recordings too;
toggle starts one when nothing records, else pauses or resumes). With
--endpoint alone it explains that device's binding without a call.

Exit status: 0 ok, 1 invalid policy, 2 usage or I/O error (unknown account,
device or user included).`,
		Example: `  recpol explain policies --account acme --from offnet --to user:bob
  recpol explain policies --account acme --from device:desk-1 --to offnet
  recpol explain policies --from account:acme/device:desk-1 --to account:beta/user:ann
  recpol explain policies --account pci --number +442071234567
  recpol explain policies --account pci --dtmf '*72' --from offnet --to user:bob
  recpol explain policies --account pci --dtmf '*74' --endpoint device:bob-phone`,
		Args: exactArgs(1, "a policy directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if number != "" || dtmf != "" {
				return explainExplicit(s, args[0], account, from, to, number, dtmf, endpoint)
			}
			if endpoint != "" {
				return usageErr(fmt.Errorf("--endpoint goes with --dtmf"))
			}
			if from == "" || to == "" {
				return usageErr(fmt.Errorf("explain needs --from and --to, --number or --dtmf; see 'recpol explain --help'"))
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
					return usageErr(fmt.Errorf("account %s: no such account in %s%s", sd.acct, args[0], didYouMean(sd.acct, t.AccountIDs())))
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
	cmd.Flags().StringVar(&number, "number", "", "explain a call to the dialled `NUMBER`: the callflow that answers it and why")
	cmd.Flags().StringVar(&dtmf, "dtmf", "", "explain what the `KEYS` (\"*72\") pressed during the call --from --to (or on --endpoint) do")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "with --dtmf: the `DEVICE` (device:<id>) whose metaflows to explain")
	return cmd
}

// explainExplicit runs explain --number or --dtmf.
func explainExplicit(s *streams, dir, account, from, to, number, dtmf, endpoint string) error {
	if number != "" && dtmf != "" {
		return usageErr(fmt.Errorf("--number and --dtmf explain different things: give one"))
	}
	var fa, ta string
	var fp, tp table.Party
	var err error
	if from != "" {
		if fa, fp, err = parseAccountParty(from, account); err != nil {
			return usageErr(fmt.Errorf("--from: %w", err))
		}
	}
	if to != "" {
		if ta, tp, err = parseAccountParty(to, account); err != nil {
			return usageErr(fmt.Errorf("--to: %w", err))
		}
	}
	acct := account
	for _, x := range []string{fa, ta} {
		if x != "" {
			if acct != "" && acct != x {
				return usageErr(fmt.Errorf("--dtmf and --number explain one account's call: %s and %s differ", acct, x))
			}
			acct = x
		}
	}
	if acct == "" {
		return usageErr(fmt.Errorf("explain needs --account, or a party written account:<id>/<party>"))
	}
	var dev string
	if endpoint != "" {
		id, ok := strings.CutPrefix(endpoint, "device:")
		if !ok || id == "" {
			return usageErr(fmt.Errorf("--endpoint %q: want device:<id> (DTMF is heard on a device's leg)", endpoint))
		}
		dev = id
	}
	if number != "" {
		if to != "" || endpoint != "" {
			return usageErr(fmt.Errorf("--number is the callee: it takes --from only"))
		}
		if from == "" {
			fp = table.OffnetRef()
		}
	} else if (from == "") != (to == "") || (from == "" && dev == "") {
		return usageErr(fmt.Errorf("--dtmf needs a call (--from and --to) or --endpoint device:<id>"))
	}
	t, err := compileDir(s, dir)
	if err != nil {
		return err
	}
	a, ok := t.Account(acct)
	if !ok {
		return usageErr(fmt.Errorf("account %s: no such account in %s%s", acct, dir, didYouMean(acct, t.AccountIDs())))
	}
	if number != "" {
		if err := simulate.ExplainNumber(s.stdout, a, fp, number); err != nil {
			return usageErr(err)
		}
		return nil
	}
	var call *table.Call
	if from != "" {
		call = &table.Call{From: fp, To: tp}
	}
	if err := simulate.ExplainDTMF(s.stdout, a, call, dev, dtmf); err != nil {
		return usageErr(err)
	}
	return nil
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

// didYouMean is " (did you mean a, b?)" with the names close to name, or
// "" when none is.
func didYouMean(name string, candidates []string) string {
	if s := compiler.Suggest(name, candidates); len(s) > 0 {
		return " (did you mean " + strings.Join(s, ", ") + "?)"
	}
	return ""
}
