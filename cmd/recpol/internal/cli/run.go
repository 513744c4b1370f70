package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	recpolruntime "github.com/recpol/recpol/runtime"
)

func newRunCmd(s *streams) *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "run --config FILE.cue",
		Short: "Run the runtime beside FreeSWITCH: execute the policy over the event socket",
		Long: `run connects to the FreeSWITCH nodes of the runtime config over the inbound
event socket, follows every call, takes the policy's decisions as the facts
they need become known, starts, masks and stops recordings, stores them with
a metadata sidecar and uploads them when the policy gives a url.

The policy directory is compiled at start (it must be valid) and reloaded
when its files change or on SIGHUP; an invalid change keeps the live table
and logs the positioned errors. SIGINT and SIGTERM stop the runtime.

The config is one CUE file (see the README for every field):

  switches: [{address: "127.0.0.1:8021", password: "env:FS_PASSWORD"}]
  policies: "./policies"
  storage:  "./recordings"
  spool:    "./spool"
  classify: preset: "recpol"       // or "kazoo", "freeswitch"
  http: {listen: "127.0.0.1:8089", token: "env:RECPOL_TOKEN"}

Exit status: 0 stopped by a signal, 1 the policy is invalid, 2 a config,
usage or runtime error.`,
		Example: `  RECPOL_TOKEN=secret recpol run --config runtime.cue`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if config == "" {
				return usageErr(errors.New("run needs --config FILE.cue"))
			}
			cfg, err := recpolruntime.LoadConfig(config)
			if err != nil {
				return usageErr(err)
			}
			opts := &slog.HandlerOptions{Level: cfg.LogLevel}
			var h slog.Handler = slog.NewTextHandler(s.stderr, opts)
			if cfg.LogJSON {
				h = slog.NewJSONHandler(s.stderr, opts)
			}
			log := slog.New(h)
			recpolruntime.ApplyMemoryLimit(cfg, log)
			rt, err := recpolruntime.New(cfg, log)
			if err != nil {
				if errors.Is(err, recpolruntime.ErrInvalidPolicy) {
					fmt.Fprintln(s.stderr, err)
					return invalid()
				}
				return usageErr(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						log.Info("SIGHUP: reloading the policy")
						rt.TriggerReload()
					}
				}
			}()
			if err := rt.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return usageErr(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the runtime config `FILE.cue`")
	return cmd
}
