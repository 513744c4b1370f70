package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/gen"
)

func newGenCmd(s *streams) *cobra.Command {
	var o gen.Options
	var out string
	cmd := &cobra.Command{
		Use:   "gen -o DIR",
		Short: "Generate a seeded, realistic policy for benchmarks and scale tests",
		Long: `gen writes a policy of package recpol into DIR: shared.cue (defaults and a
template for every account) and one file per account with a mix of settings
at every scope, device owners, callflows and metaflows. The same flags and
seed always produce the same files.`,
		Example: `  recpol gen --accounts 1000 --users 10 --devices 20 --seed 1 -o /tmp/policy
  recpol vet /tmp/policy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr(fmt.Errorf("gen needs -o DIR"))
			}
			if err := gen.Write(out, o); err != nil {
				return usageErr(err)
			}
			fmt.Fprintf(s.stderr, "wrote %d accounts (%d users, %d devices each) to %s\n", o.Accounts, o.Users, o.Devices, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Accounts, "accounts", 10, "number of accounts")
	f.IntVar(&o.Users, "users", 10, "users per account")
	f.IntVar(&o.Devices, "devices", 20, "devices per account")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed")
	f.StringVarP(&out, "output", "o", "", "directory to write the policy into (created if needed)")
	return cmd
}
