package runtime

import (
	"context"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/runtime/eslcmd"
	"github.com/recpol/recpol/table"
)

// The machine's commands (package callstate) become event-socket commands
// (package eslcmd) here, at the runtime's boundary; the engine keeps the
// typed command until the sender renders it on the wire.

// recordVars are a recording's settings as the variables of its start
// command, in the order and form the settings table gives
// (table.RecordVars).
func recordVars(s table.Settings, readOnly bool) []eslcmd.Var {
	tv := table.RecordVars(&s, readOnly)
	vars := make([]eslcmd.Var, len(tv))
	for i, v := range tv {
		vars[i] = eslcmd.Var{Name: v.Name, Value: v.Value}
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
