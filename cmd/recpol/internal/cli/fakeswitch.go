package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/recpol/recpol/fakeswitch"
	"github.com/recpol/recpol/scenario"
)

func newFakeswitchCmd(s *streams) *cobra.Command {
	var (
		listen, password, scenarioFile, recordings, mp3 string
		realtime, stay                                  bool
		waitClients                                     int
		quiet                                           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "fakeswitch --recordings DIR [--scenario FILE] [flags]",
		Short: "Run a fake FreeSWITCH (a test double) that plays scripted calls",
		Long: `fakeswitch runs a stand-in for FreeSWITCH's event socket (mod_event_socket):
clients such as 'recpol run' connect to it, authenticate and subscribe to
events exactly as they would with FreeSWITCH. It plays the calls of a
scenario file (JSON or CUE, see fakeswitch/README.md) as channel
events, answers uuid_record and friends with FreeSWITCH's replies, and writes
each recording as a WAV file under --recordings (a tone per leg, silence
while masked). It is a test double, not a switch: no SIP, no media, no
dialplan.

It prints the switches entry of a runtime config that records through it:
record_dir and local_dir are the --recordings directory, as absolute paths
(the runtime's default, a directory in its spool, is not where this switch
may write).

--mp3 says how it records .mp3 paths: "stub" (the default) writes WAV bytes
under the .mp3 name; "auto" writes real MP3 with the lame command, or, when
lame is not installed, is a FreeSWITCH without mod_shout; "off" is a
FreeSWITCH without mod_shout (module_exists mod_shout: false, an .mp3
start refused).

The scenario starts once --wait-clients clients have logged in and sent a
command (their subscription). Without --realtime the virtual clock runs as
fast as the clients allow: it advances only after --quiet of real time with
no command arriving and every event written, so a ten-minute call plays in
well under a second. With --realtime it follows the wall clock, between the scenario's
events and after the last one too, so a command sent by hand (a mask
through the runtime's API) acts when it arrives; like FreeSWITCH, it never
waits for the clients: a start sent after the hangup is refused.

It exits when the scenario is over, unless --stay, and on SIGINT/SIGTERM.`,
		Example: `  recpol fakeswitch --recordings /tmp/rec --scenario testdata/scenarios/basic.json
  recpol fakeswitch --listen 127.0.0.1:8021 --password ClueCon --recordings /tmp/rec --stay`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if recordings == "" {
				return usageErr(errors.New("fakeswitch: --recordings DIR is required"))
			}
			dir, err := filepath.Abs(recordings)
			if err != nil {
				return usageErr(fmt.Errorf("fakeswitch: recordings directory: %w", err))
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return usageErr(fmt.Errorf("fakeswitch: recordings directory: %w", err))
			}
			mode, ok := mp3Modes[mp3]
			if !ok {
				return usageErr(fmt.Errorf("fakeswitch: --mp3 %q: want stub, auto or off", mp3))
			}
			var sc *scenario.Scenario
			if scenarioFile != "" {
				if sc, err = scenario.ParseFile(scenarioFile); err != nil {
					return usageErr(fmt.Errorf("fakeswitch: scenario %s:\n%w", scenarioFile, err))
				}
			} else {
				stay = true
			}
			log := slog.New(slog.NewTextHandler(s.stderr, nil))
			srv := fakeswitch.New(fakeswitch.Config{
				Password:      password,
				RecordingsDir: dir,
				Realtime:      realtime,
				Quiet:         quiet,
				Logger:        log,
				MP3:           mode,
			})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usageErr(fmt.Errorf("fakeswitch: %w", err))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			defer srv.Close()
			log.Info("fakeswitch listening (a FreeSWITCH stand-in)", "addr", ln.Addr().String(), "recordings", dir, "core_uuid", srv.CoreUUID(), "realtime", realtime, "mp3", mp3)
			fmt.Fprintf(s.stdout, "# the runtime config's entry for this switch (recpol run --config FILE.cue):\n%s\n",
				switchEntry(ln.Addr().String(), password, dir))
			if sc != nil {
				if waitClients > 0 {
					log.Info("waiting for clients before playing the scenario", "clients", waitClients)
					if err := srv.WaitClients(ctx, waitClients); err != nil {
						log.Info("stopped before the scenario started")
						return nil
					}
				}
				log.Info("playing scenario", "file", scenarioFile, "calls", len(sc.Calls))
				if err := srv.Play(ctx, sc); err != nil {
					if errors.Is(err, context.Canceled) {
						log.Info("stopped", "virtual_time", srv.Now().String())
						return nil
					}
					return fmt.Errorf("fakeswitch: %w", err)
				}
				log.Info("scenario over", "virtual_time", srv.Now().String(), "recordings", len(srv.Files()))
			}
			if stay {
				// A realtime clock goes on after the scenario: heartbeats
				// and the running recordings' time limits fall due.
				var tick <-chan time.Time
				if realtime {
					t := time.NewTicker(time.Second)
					defer t.Stop()
					tick = t.C
				}
				for {
					select {
					case <-ctx.Done():
						log.Info("stopped", "virtual_time", srv.Now().String())
						return nil
					case err := <-served:
						return fmt.Errorf("fakeswitch: %w", err)
					case <-tick:
						srv.Now()
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8021", "address to listen on")
	f.StringVar(&password, "password", "ClueCon", "event-socket password")
	f.StringVar(&scenarioFile, "scenario", "", "scenario file (.json or .cue) to play; none: serve with no calls until stopped")
	f.StringVar(&recordings, "recordings", "", "directory recordings may be written under (created if missing)")
	f.BoolVar(&realtime, "realtime", false, "follow the wall clock instead of playing as fast as the clients allow")
	f.StringVar(&mp3, "mp3", "stub", "how .mp3 paths are recorded: stub (WAV bytes under the .mp3 name), auto (real MP3 with lame, else as off), off (no mod_shout)")
	f.BoolVar(&stay, "stay", false, "keep serving after the scenario is over, until SIGINT/SIGTERM")
	f.IntVar(&waitClients, "wait-clients", 1, "clients to wait for before playing the scenario (0: start at once)")
	f.DurationVar(&quiet, "quiet", 20*time.Millisecond, "real time with no client activity before the virtual clock advances (not with --realtime)")
	return cmd
}

var mp3Modes = map[string]fakeswitch.MP3Support{
	"stub": fakeswitch.MP3Stub,
	"auto": fakeswitch.MP3Auto,
	"off":  fakeswitch.MP3Off,
}

// switchEntry is the switches entry of a runtime config for a fake switch
// at addr recording under dir: the runtime on the same machine sees the
// directory where the switch writes.
func switchEntry(addr, password, dir string) string {
	return fmt.Sprintf("switches: [{address: %q, password: %q, record_dir: %q, local_dir: %q}]", addr, password, dir, dir)
}
