package callstate_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/compiler"
	"github.com/recpol/recpol/table"
)

// policy is the policy of the rule tests: acme records every call from
// offnet on the A-leg, d1 records the calls it places, d2 and d3 the calls
// they receive, and *72/*73 mask and unmask; beta records every call from
// another account and e1 the calls it receives.
const policy = `package recpol
accounts: acme: {
	call_recording: account: inbound: offnet: enabled: true
	devices: d1: call_recording: outbound: any: enabled: true
	devices: d2: call_recording: inbound: any: enabled: true
	devices: d3: call_recording: inbound: any: enabled: true
	metaflows: {listen_on: "both", numbers: {
		"3": {module: "record_call", data: action: "toggle"}
		"71": {module: "record_call", data: {action: "start", dtmf_leg: "self", origin: "agent asked"}}
		"72": {module: "record_call", data: action: "mask"}
		"73": {module: "record_call", data: action: "unmask"}
		"74": {module: "record_call", data: action: "stop"}
		"75": {module: "record_call", data: {action: "stop", scope: "call"}}}}
	callflows: consult: {numbers: ["7200"], actions: [{module: "record_call", data: action: "start"}]}
	callflows: startstop: {numbers: ["8000"], actions: [
		{module: "record_call", data: action: "start"},
		{module: "record_call", data: action: "stop"}]}
	callflows: stoponly: {numbers: ["8100"], actions: [{module: "record_call", data: action: "stop"}]}
}
accounts: beta: {
	call_recording: account: inbound: onnet: enabled: true
	devices: e1: call_recording: inbound: onnet: enabled: true
}
`

func compile(t *testing.T) *table.Table {
	t.Helper()
	res := compiler.Options{}.CompileFiles([]compiler.File{{Name: "p.cue", Data: []byte(policy)}})
	if res.Table == nil {
		t.Fatal(res.Diagnostics)
	}
	return res.Table
}

// run plays events on a machine, answering every start with a
// RECORD_START, and returns the commands as "<command> <leg> <scope>
// <origin>" lines.
type run struct {
	t      *testing.T
	m      *callstate.Machine
	ts     int64
	got    []string
	recs   map[string]*callstate.Recording
	follow map[string]bool   // recording_follow_transfer per leg
	moved  map[string]string // recordings the switch moved with a transfer, from leg
	legs   map[string]bool   // every leg an event named
	forgot map[string]int    // Forget commands, by leg
}

func newRun(t *testing.T, tb *table.Table) *run {
	n := 0
	r := &run{t: t, recs: map[string]*callstate.Recording{}, follow: map[string]bool{}, moved: map[string]string{},
		legs: map[string]bool{}, forgot: map[string]int{}}
	r.m = callstate.New(callstate.Config{Classifier: classify.Must(classify.Config{}),
		Table: func() *table.Table { return tb }, NewID: func() string { n++; return "r" + strconv.Itoa(n) }})
	return r
}

// ev feeds one event. vars are "name=value" strings.
func (r *run) ev(kind callstate.EventKind, leg string, f func(*callstate.Event), vars ...string) {
	r.ts += 1000_000
	ev := callstate.Event{Kind: kind, TS: r.ts, Leg: leg}
	if len(vars) > 0 {
		m := callstate.VarMap{}
		for _, v := range vars {
			k, val, _ := strings.Cut(v, "=")
			m[k] = val
		}
		ev.Vars = m
	}
	if f != nil {
		f(&ev)
	}
	if ev.Leg != "" {
		r.legs[ev.Leg] = true
	}
	r.do(r.m.Handle(&ev))
}

func (r *run) do(cmds []callstate.Command) {
	var started, stopped []string
	for _, c := range cmds {
		switch c.Kind {
		case callstate.TagLeg:
			continue
		case callstate.Forget:
			r.forgot[c.Leg]++
			continue
		case callstate.Follow:
			r.follow[c.Leg] = c.Value == "true"
			r.got = append(r.got, fmt.Sprintf("follow %s %s", c.Leg, c.Value))
			continue
		case callstate.Announce:
			r.got = append(r.got, fmt.Sprintf("announce %s %s %s: %s to %s at %d", c.Leg, c.Rec.Scope, c.Rec.Origin, c.Value, c.Target, c.Rec.AnnouncedAt/1000_000))
			continue
		}
		r.got = append(r.got, fmt.Sprintf("%s %s %s %s", c.Kind, c.Rec.Leg.UUID, c.Rec.Scope, c.Rec.Origin))
		switch c.Kind {
		case callstate.Start:
			r.recs[c.Rec.ID] = c.Rec
			started = append(started, c.Rec.ID)
		case callstate.Stop:
			stopped = append(stopped, c.Rec.ID)
		}
	}
	for _, id := range started {
		r.m.Handle(&callstate.Event{Kind: callstate.RecordStarted, TS: r.ts, Rec: id})
	}
	for _, id := range stopped {
		r.do(r.m.Handle(&callstate.Event{Kind: callstate.RecordStopped, TS: r.ts, Rec: id}))
	}
}

func (r *run) create(leg, dir, other string, vars ...string) {
	r.ev(callstate.Create, leg, func(e *callstate.Event) {
		e.Direction, e.OtherLeg, e.ChannelName = dir, other, "sofia/internal/"+leg
		if strings.HasPrefix(leg, "loopback") {
			e.ChannelName = leg
		}
	}, vars...)
}

func (r *run) exec(leg, app string, vars ...string) {
	r.ev(callstate.Execute, leg, func(e *callstate.Event) { e.App = app }, vars...)
}

func (r *run) bridge(a, b string) {
	r.ev(callstate.Bridge, a, func(e *callstate.Event) { e.BridgeA, e.BridgeB = a, b })
}

// call places a two-leg call: leg a (variables set by its dialplan, seen
// on the bridge's CHANNEL_EXECUTE) originates leg b (its dial-string
// variables), b answers, a is answered and the two are bridged.
func (r *run) call(a, b string, aVars, bVars []string) {
	r.create(a, "inbound", "")
	r.exec(a, "bridge", aVars...)
	r.create(b, "outbound", a, bVars...)
	r.ev(callstate.Answer, b, nil)
	r.ev(callstate.Answer, a, nil)
	r.bridge(a, b)
}

func (r *run) dtmf(leg, digits string) {
	for _, d := range digits {
		r.ev(callstate.DTMF, leg, func(e *callstate.Event) { e.Digit = string(d) })
	}
}

// replace plays the switch's side of an attended transfer that replaces
// leg: when its recording_follow_transfer is true, its recordings move
// (and do not stop when it hangs up).
func (r *run) replace(leg string) {
	if !r.follow[leg] {
		return
	}
	for id, rec := range r.recs {
		if rec.Leg.UUID == leg && rec.State == callstate.Running {
			r.moved[id] = leg
		}
	}
}

// forgetOnly keeps the Forget commands of a RECORD_STOP the switch sends
// on a hangup (the call may end on it); its other commands are the
// hangup's own, which the rules do not list.
func (r *run) forgetOnly(cmds []callstate.Command) {
	for _, c := range cmds {
		if c.Kind == callstate.Forget {
			r.forgot[c.Leg]++
		}
	}
}

func (r *run) hangup(leg string) {
	r.ev(callstate.Hangup, leg, nil)
	for id, rec := range r.recs {
		if rec.Leg.UUID == leg && rec.State == callstate.Running && r.moved[id] != leg {
			r.forgetOnly(r.m.Handle(&callstate.Event{Kind: callstate.RecordStopped, TS: r.ts, Rec: id}))
		}
	}
	r.ev(callstate.HangupComplete, leg, nil)
}

var (
	offnetCaller = []string{"recpol_account=acme", "recpol_network=offnet"}
	d1Caller     = []string{"recpol_account=acme", "recpol_device=d1", "recpol_network=onnet"}
)

func dev(acct, id string) []string {
	return []string{"recpol_account=" + acct, "recpol_device=" + id, "recpol_network=onnet"}
}

// TestRules states the rules of SPEC 2.3, 2.7 and section 5 case by case:
// the commands the machine gives for each call shape.
func TestRules(t *testing.T) {
	tb := compile(t)
	tests := []struct {
		name string
		play func(r *run)
		want []string
	}{
		{
			"a recording waits for its leg's media: nothing starts on a ringing A-leg",
			func(r *run) {
				r.create("A", "inbound", "")
				r.exec("A", "set")
				r.exec("A", "bridge", offnetCaller...)
				r.create("B", "outbound", "A", dev("acme", "d2")...)
				r.ev(callstate.Ring, "B", nil)
				r.hangup("A")
				r.hangup("B")
			},
			nil,
		},
		{
			"blind transfer of the A-leg (uuid_transfer: no CHANNEL_EXECUTE) never stops its recording; the new callee decides at its answer",
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.hangup("B")
				r.ev(callstate.Unbridge, "A", func(e *callstate.Event) { e.BridgeA, e.BridgeB = "A", "B" })
				r.exec("A", "bridge")
				r.create("C", "outbound", "A", dev("acme", "d3")...)
				r.ev(callstate.Answer, "C", nil)
				r.bridge("A", "C")
				r.hangup("A")
				r.hangup("C")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
				"start C callee inbound from offnet to endpoint",
			},
		},
		{
			"the transfer application on the A-leg stops nothing either",
			func(r *run) {
				r.create("A", "inbound", "")
				r.exec("A", "bridge", offnetCaller...)
				r.ev(callstate.Answer, "A", nil)
				r.exec("A", "transfer")
				r.exec("A", "bridge")
				r.hangup("A")
			},
			[]string{"start A account inbound from offnet to account"},
		},
		{
			"the platform answers (voicemail): to is onnet from the answer, the caller's outbound onnet cell records",
			func(r *run) {
				r.create("A", "inbound", "")
				r.exec("A", "set", d1Caller...)
				r.exec("A", "answer")
				r.ev(callstate.Answer, "A", nil)
				r.exec("A", "voicemail")
				r.hangup("A")
			},
			[]string{"start A caller outbound to onnet from endpoint"},
		},
		{
			"an announcement or a park before the bridge to the PSTN is not the platform answering: to is offnet",
			func(r *run) {
				r.create("A", "inbound", "")
				r.exec("A", "park", d1Caller...)
				r.exec("A", "playback")
				r.exec("A", "bridge")
				r.create("B", "outbound", "A", "recpol_account=acme", "recpol_network=offnet")
				r.ev(callstate.Answer, "B", nil)
				r.ev(callstate.Answer, "A", nil)
				r.hangup("A")
				r.hangup("B")
			},
			[]string{"start A caller outbound to offnet from endpoint"},
		},
		{
			"a call to another account: beta decides on its own leg with from onnet, its device at answer",
			func(r *run) {
				r.call("A", "B", d1Caller, dev("beta", "e1"))
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B account inbound from onnet to account",
				"start B callee inbound from onnet to endpoint",
				"start A caller outbound to onnet from endpoint",
			},
		},
		{
			"through a loopback: nothing on the halves, beta decides on e1, the bow-out stops nothing",
			func(r *run) {
				r.create("A", "inbound", "")
				r.exec("A", "bridge", d1Caller...)
				r.create("loopback/beta-a", "outbound", "A")
				r.create("loopback/beta-b", "inbound", "", "other_loopback_leg_uuid=loopback/beta-a")
				r.exec("loopback/beta-b", "bridge", "recpol_account=beta", "recpol_network=onnet")
				r.create("E", "outbound", "loopback/beta-b", dev("beta", "e1")...)
				r.ev(callstate.Answer, "E", nil)
				r.ev(callstate.Answer, "loopback/beta-b", nil)
				r.ev(callstate.Answer, "loopback/beta-a", nil)
				r.ev(callstate.Answer, "A", nil)
				r.hangup("loopback/beta-a")
				r.hangup("loopback/beta-b")
				r.bridge("A", "E")
				r.dtmf("A", "*72")
				r.hangup("A")
				r.hangup("E")
			},
			[]string{
				"start E account inbound from onnet to account",
				"start E callee inbound from onnet to endpoint",
				"start A caller outbound to onnet from endpoint",
				// A mask acts on every recording of the call, beta's too.
				"mask A caller outbound to onnet from endpoint",
				"mask E account inbound from onnet to account",
				"mask E callee inbound from onnet to endpoint",
			},
		},
		{
			"an attended transfer merges the consultation call: its target is a new callee of the customer's call, and *72 masks it",
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				// d2's phone calls d3 (the consultation, a call of its own).
				r.call("C2", "D", dev("acme", "d2"), dev("acme", "d3"))
				// REFER with Replaces: uuid_bridge A D.
				r.hangup("B")
				r.hangup("C2")
				r.bridge("A", "D")
				r.dtmf("A", "*72")
				r.hangup("A")
				r.hangup("D")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
				"start D callee inbound from onnet to endpoint",
				"mask A account inbound from offnet to account",
				"mask D callee inbound from onnet to endpoint",
			},
		},
		{
			"a leg that joins a masked call is masked from the join: *72 before the attended transfer completes",
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.dtmf("B", "*72")
				r.call("C2", "D", dev("acme", "d2"), dev("acme", "d3"))
				r.hangup("B")
				r.hangup("C2")
				r.bridge("A", "D")
				r.hangup("A")
				r.hangup("D")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
				"mask A account inbound from offnet to account",
				"mask B callee inbound from offnet to endpoint",
				"start D callee inbound from onnet to endpoint",
				"mask D callee inbound from onnet to endpoint",
			},
		},
		{
			"an attended transfer by REFER: the consultation's callflow recording follows to the target, the callee's policy recording stays and ends with its leg",
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.ev(callstate.Create, "C2", func(e *callstate.Event) { e.Direction, e.Dest = "inbound", "7200" })
				r.exec("C2", "bridge", dev("acme", "d2")...)
				r.create("D", "outbound", "C2", dev("acme", "d3")...)
				r.ev(callstate.Answer, "D", nil)
				r.ev(callstate.Answer, "C2", nil)
				r.bridge("C2", "D")
				r.replace("B")
				r.replace("C2")
				r.hangup("B")
				r.hangup("C2")
				r.bridge("A", "D")
				r.dtmf("A", "*72")
				r.hangup("A")
				r.hangup("D")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
				"start D callee inbound from onnet to endpoint",
				"start C2 callflow callflow : consult",
				"follow C2 true",
				"moved D callflow callflow : consult",
				"mask A account inbound from offnet to account",
				"mask D callflow callflow : consult",
				"mask D callee inbound from onnet to endpoint",
			},
		},
		{
			"a blind transfer to a callflow number runs that callflow on the transferred leg; a transfer to a stop-only callflow stops it",
			func(r *run) {
				r.ev(callstate.Create, "A", func(e *callstate.Event) { e.Direction, e.Dest = "inbound", "2002" })
				r.exec("A", "bridge", offnetCaller...)
				r.create("B", "outbound", "A", dev("acme", "d2")...)
				r.ev(callstate.Answer, "B", nil)
				r.ev(callstate.Answer, "A", nil)
				r.bridge("A", "B")
				r.hangup("B")
				// uuid_transfer A 7200: A's events carry the new number.
				r.ev(callstate.Unbridge, "A", func(e *callstate.Event) { e.BridgeA, e.BridgeB, e.Dest = "A", "B", "7200" })
				r.exec("A", "bridge")
				// Transferred back to 7200 again: the callflow recording
				// already runs, no second one.
				r.ev(callstate.Other, "A", func(e *callstate.Event) { e.Dest = "7201" })
				r.ev(callstate.Other, "A", func(e *callstate.Event) { e.Dest = "7200" })
				r.ev(callstate.Other, "A", func(e *callstate.Event) { e.Dest = "8100" })
				r.hangup("A")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
				"start A callflow callflow : consult",
				"stop A callflow callflow : consult",
			},
		},
		{
			"*74 stops the pressing endpoint's own metaflow recording only; *75 (scope call) stops the call's policy recordings too",
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.dtmf("B", "*74")
				r.dtmf("B", "*71")
				r.dtmf("B", "*74")
				r.dtmf("B", "*75")
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
				"start B metaflow agent asked",
				"stop B metaflow agent asked",
				"stop A account inbound from offnet to account",
				"stop B callee inbound from offnet to endpoint",
			},
		},
		{
			"*71 has dtmf_leg self: the caller pressing it on the other leg starts nothing",
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.dtmf("A", "*71")
				r.hangup("A")
				r.hangup("B")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
			},
		},
		{
			"*3 on a recorded call pauses and resumes the call's recordings (one file each); on an unrecorded call it starts one",
			func(r *run) {
				r.call("A", "B", offnetCaller, dev("acme", "d2"))
				r.dtmf("B", "*3")
				r.dtmf("B", "*3")
				r.hangup("A")
				r.hangup("B")
				r.call("C", "D", dev("acme", "d2"), dev("acme", "d1"))
				r.dtmf("C", "*3")
				r.dtmf("C", "*3")
				r.hangup("C")
				r.hangup("D")
			},
			[]string{
				"start B callee inbound from offnet to endpoint",
				"start A account inbound from offnet to account",
				"pause A account inbound from offnet to account",
				"pause B callee inbound from offnet to endpoint",
				"resume A account inbound from offnet to account",
				"resume B callee inbound from offnet to endpoint",
				"start C metaflow metaflow : *3",
				"follow C true",
				"pause C metaflow metaflow : *3",
			},
		},
		{
			"a callflow's start then stop records nothing",
			func(r *run) {
				r.ev(callstate.Create, "A", func(e *callstate.Event) { e.Direction, e.Dest = "inbound", "8000" })
				r.exec("A", "answer", dev("acme", "d9")...)
				r.ev(callstate.Answer, "A", nil)
				r.hangup("A")
			},
			nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRun(t, tb)
			tc.play(r)
			if diff := cmp.Diff(tc.want, r.got); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
			if n := r.m.Legs(); n != 0 {
				t.Errorf("%d legs left after every leg hung up", n)
			}
			// Each leg the machine followed is forgotten once, so that a
			// driver drops what it keeps of it (the runtime's idle
			// check of legs).
			want := map[string]int{}
			for l := range r.legs {
				want[l] = 1
			}
			if diff := cmp.Diff(want, r.forgot); diff != "" {
				t.Errorf("Forget commands by leg (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOrderFree sets the caller's three variables one "set" at a time in
// every order: the recordings are the same.
func TestOrderFree(t *testing.T) {
	tb := compile(t)
	perms := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	want := []string{"start B callee inbound from onnet to endpoint", "start A caller outbound to onnet from endpoint"}
	for _, p := range perms {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			r := newRun(t, tb)
			r.create("A", "inbound", "")
			seen := []string{}
			for _, i := range p {
				// A set's variable shows on the leg's next event.
				r.exec("A", "set", seen...)
				seen = append(seen, d1Caller[i])
			}
			r.exec("A", "bridge", seen...)
			r.create("B", "outbound", "A", dev("acme", "d2")...)
			r.ev(callstate.Answer, "B", nil)
			r.ev(callstate.Answer, "A", nil)
			r.hangup("A")
			r.hangup("B")
			if diff := cmp.Diff(want, r.got); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}
