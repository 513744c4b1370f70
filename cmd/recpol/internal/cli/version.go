package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/internal/version"
	"github.com/recpol/recpol/table"
)

func newVersionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print recpol's version, the commit it was built from, and the table format it writes",
		Long: `version prints which build of recpol this is: the module version ("(devel)"
for a build from a checkout), the commit and its time (stamped by the Go
toolchain, or passed by the Makefile when the toolchain cannot see the
repository), the format_version of the decision tables it writes, and the
Go toolchain that built it. The runtime reports the same in /healthz, its
start-up log line and the recpol_build_info metric.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := version.Get()
			fmt.Fprintf(s.stdout, "recpol %s\n", in.Version)
			switch {
			case in.Revision == "":
				fmt.Fprintf(s.stdout, "commit unknown (built without VCS information: use make build)\n")
			case in.Time == "":
				fmt.Fprintf(s.stdout, "commit %s\n", in.Revision)
			default:
				fmt.Fprintf(s.stdout, "commit %s (%s)\n", in.Revision, in.Time)
			}
			fmt.Fprintf(s.stdout, "table format_version %d\ngo %s\n", table.FormatVersion, in.Go)
			return nil
		},
	}
}
