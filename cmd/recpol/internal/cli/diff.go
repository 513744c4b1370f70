package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDiffCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:    "diff OLD NEW",
		Short:  "Compare two policies (not available yet)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErr(fmt.Errorf("diff is not available yet"))
		},
	}
}
