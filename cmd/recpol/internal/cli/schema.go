package cli

import (
	"github.com/spf13/cobra"

	recpolcue "github.com/recpol/recpol/cue"
)

func newSchemaCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the policy schema as a CUE file",
		Long: `schema prints the policy schema embedded in recpol: one CUE file of package
recpol. Placed beside the policy files as ` + recpolcue.SchemaFileName + `, it makes
the plain 'cue vet' and editors with CUE support enforce the same structure
as 'recpol vet' (which checks further rules: owners, callflow numbers,
record_min_sec against time_limit, safe labels and media names).
recpol itself always uses its embedded copy and ignores that file.`,
		Example: `  recpol schema > policies/` + recpolcue.SchemaFileName + `
  cue vet ./policies`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := s.stdout.Write(recpolcue.Schema()); err != nil {
				return usageErr(err)
			}
			return nil
		},
	}
}
