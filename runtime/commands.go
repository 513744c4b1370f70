package runtime

import (
	"context"
	"strconv"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/table"
)

// The machine's commands (package callstate) become event-socket commands
// (package eslcmd) here, at the runtime's boundary; the engine keeps the
// typed command until the sender renders it on the wire.

// recordVars are the recording variables a recording starts with
// (uuid_record start's {...}), from its settings: the one place they are
// derived. A read-only recording (the leg's own party only) is never
// stereo; a stereo one has the leg's own party (read) left, the other
// (write) right (switch_ivr_async.c, switch_ivr_record_session_event,
// SMBF_STEREO).
func recordVars(s table.Settings, readOnly bool) []eslcmd.Var {
	vars := []eslcmd.Var{
		{Name: "RECORD_MIN_SEC", Value: strconv.Itoa(s.RecordMinSec)},
		{Name: "record_sample_rate", Value: strconv.Itoa(s.RecordSampleRate)},
	}
	if readOnly {
		vars = append(vars, eslcmd.Var{Name: "RECORD_READ_ONLY", Value: "true"})
	} else if s.Stereo {
		vars = append(vars, eslcmd.Var{Name: "RECORD_STEREO", Value: "true"})
	}
	return vars
}

// startCommand is a recording's start command, its settings in its own
// recording variables.
func startCommand(r *recording) eslcmd.RecordStart {
	return eslcmd.RecordStart{UUID: r.Leg.UUID, Path: r.path, TimeLimit: r.Settings.TimeLimit,
		Vars: recordVars(r.Settings, r.ReadOnly)}
}

// recordOps are the machine's commands on a running recording as
// uuid_record's operations.
var recordOps = map[callstate.CommandKind]eslcmd.RecordOp{
	callstate.Stop: eslcmd.Stop, callstate.Mask: eslcmd.Mask, callstate.Unmask: eslcmd.Unmask,
	callstate.Pause: eslcmd.Pause, callstate.Resume: eslcmd.Resume,
}

// followVar is the channel variable of callstate.Follow.
const followVar = "recording_follow_transfer"

// announce plays a recording's consent announcement to the parties of
// its leg (uuid_broadcast). It goes out after the start, in the leg's
// command order; unsafe media, a bad uuid or an unknown target are
// refused at the socket (vet refuses them earlier). e.mu is held.
func (e *engine) announce(c callstate.Command) {
	cmd := eslcmd.Broadcast{UUID: c.Leg, Media: c.Value, Target: eslcmd.Target(c.Target)}
	if err := cmd.Validate(); err != nil {
		e.log.Error("refusing to announce", "error", err)
		e.obs("announce_refused")
		return
	}
	e.send(cmd)
}

// runAPI runs a synchronous api command once it validates.
func runAPI(ctx context.Context, api apiFunc, cmd eslcmd.Command) (string, error) {
	if err := cmd.Validate(); err != nil {
		return "", err
	}
	return api(ctx, cmd.String())
}
