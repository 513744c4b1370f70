package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	recpolruntime "github.com/recpol/recpol/runtime"
	"github.com/recpol/recpol/runtime/store"
)

func newCatalogCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Maintain the recordings catalog of a runtime config",
		Long: `The catalog holds every recording's metadata and state, the upload queue and
the audit trail (SQLite in the spool by default, or PostgreSQL: see catalog in
the runtime config). The sidecar JSON beside each file in storage is a
readable copy. Stop the runtime before running these on its spool.`,
	}
	var config string
	rebuild := &cobra.Command{
		Use:   "rebuild --config FILE.cue",
		Short: "Enter every recording of storage in the catalog, from the sidecars",
		Long: `rebuild walks storage (<storage>/<account>/<yyyy>/<mm>/<dd>/<id>.json) and
enters every recording a sidecar describes that the catalog lacks, as stored:
the migration of a storage written before the catalog existed, or the repair
of a lost catalog. Recordings the catalog has keep their state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return catalogRun(s, config, func(st *store.Store) error {
				read, entered, err := st.Rebuild(context.Background())
				if err != nil {
					return err
				}
				fmt.Fprintf(s.stdout, "%d sidecars read, %d recordings entered in the catalog\n", read, entered)
				return nil
			})
		},
	}
	sidecars := &cobra.Command{
		Use:   "sidecars --config FILE.cue",
		Short: "Write every stored recording's sidecar again from the catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return catalogRun(s, config, func(st *store.Store) error {
				n, err := st.WriteSidecars(context.Background())
				if err != nil {
					return err
				}
				fmt.Fprintf(s.stdout, "%d sidecars written\n", n)
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{rebuild, sidecars} {
		c.Flags().StringVar(&config, "config", "", "the runtime config (`FILE.cue`)")
		cmd.AddCommand(c)
	}
	return cmd
}

func catalogRun(s *streams, config string, f func(*store.Store) error) error {
	if config == "" {
		return usageErr(errors.New("needs --config FILE.cue"))
	}
	cfg, err := recpolruntime.LoadConfig(config)
	if err != nil {
		return usageErr(err)
	}
	log := slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := recpolruntime.CatalogTool(cfg, log, f); err != nil {
		return usageErr(err)
	}
	return nil
}
