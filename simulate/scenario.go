package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/callstate/classify"
	"github.com/recpol/recpol/scenario"
	"github.com/recpol/recpol/table"
)

// Predicted is a recording the simulator predicts for a scenario call:
// which leg, why, with which settings, and when it starts and stops on the
// scenario's clock. The runtime, run against the fake switch on the same
// scenario, must produce exactly these recordings.
type Predicted struct {
	Call     string `json:"call"`
	Leg      string `json:"leg"` // the scenario leg's name
	LegUUID  string `json:"leg_uuid"`
	Account  string `json:"account"` // the account that decided it
	Scope    string `json:"scope"`   // account, caller, callee, callflow, metaflow
	Endpoint string `json:"endpoint,omitempty"`
	Origin   string `json:"origin"`
	// Trigger is what started it: media (the leg's early media), answer,
	// bridge, callflow or dtmf.
	Trigger    string            `json:"trigger"`
	Settings   *table.Settings   `json:"-"`
	Provenance *table.Provenance `json:"-"`
	StartMS    int64             `json:"start_ms"`
	StopMS     int64             `json:"stop_ms"`
	DurationMS int64             `json:"duration_ms"`
	Masked     []Span            `json:"masked"`
	// Kept is false for a recording shorter than its record_min_sec (or
	// empty): the switch deletes it.
	Kept bool `json:"kept"`
	// MovedTo names the leg the recording moved to with an attended
	// transfer (SPEC 2.5: a callflow recording follows the leg that
	// replaces its own), and where it stopped.
	MovedTo string `json:"moved_to,omitempty"`
	// Announced is the consent announcement the switch played when the
	// recording started; nil when there was none (its settings announce
	// nothing, or the call had heard the announcement of its reason).
	Announced *Announcement `json:"announced,omitempty"`
}

// Announcement is a consent announcement played when a recording started.
type Announcement struct {
	// AtMS is when, on the scenario's clock (the recording's start).
	AtMS int64 `json:"at_ms"`
	// Announce is the setting, Media what the switch plays for it
	// (uuid_broadcast <leg> <media> <to>), To who hears it: both, aleg
	// (the recorded leg's party) or bleg (the party bridged to it).
	Announce string `json:"announce"`
	Media    string `json:"media"`
	To       string `json:"to"`
	// Provenance says where the announce setting came from.
	Provenance string `json:"provenance"`
}

// Span is a part of a recording file, in milliseconds from its start.
type Span struct {
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
}

// PredictScenario plays a scenario against a table for the recpol
// classification preset (recpol_account, recpol_device, recpol_network).
// See PredictScenarioWith.
func PredictScenario(t *table.Table, sc *scenario.Scenario) ([]Predicted, error) {
	return PredictScenarioWith(t, sc, classify.Must(classify.Config{}))
}

// PredictScenarioWith plays a scenario against a table on a virtual
// switch: every call's steps expand into the effects the fake switch
// plays (scenario.Call.Effects), their events go to the call state machine
// (package callstate) that the runtime drives over the event socket, and
// the machine's commands act on the virtual switch's recordings as on
// FreeSWITCH (a start records from the time it is sent, the time limit
// stops a recording, a hangup stops its leg's recordings, a recording
// shorter than record_min_sec is deleted). The timing rules are the
// machine's: nothing here decides what is recorded.
func PredictScenarioWith(t *table.Table, sc *scenario.Scenario, cl classify.Classifier) ([]Predicted, error) {
	cp := sc.Clone()
	cp.Normalize()
	var out []Predicted
	for i := range cp.Calls {
		v := newVirtualSwitch(t, &cp.Calls[i], cl)
		if err := v.run(); err != nil {
			return nil, fmt.Errorf("call %s: %w", cp.Calls[i].ID, err)
		}
		out = append(out, v.result()...)
	}
	return out, nil
}

// WritePredictionJSON writes predictions as {"format_version": 1,
// "policy_version", "recordings": [...]} with each recording's settings and
// provenance in the table's JSON form.
func WritePredictionJSON(w io.Writer, version string, ps []Predicted) error {
	type rec struct {
		Predicted
		Settings   JSONSettings   `json:"settings"`
		Provenance JSONProvenance `json:"provenance"`
	}
	out := struct {
		FormatVersion int    `json:"format_version"`
		PolicyVersion string `json:"policy_version"`
		Recordings    []rec  `json:"recordings"`
	}{FormatVersion: 1, PolicyVersion: version, Recordings: []rec{}}
	for _, p := range ps {
		jr := recordingJSON(table.Recording{Cell: &table.Cell{Settings: p.Settings, Provenance: p.Provenance}})
		out.Recordings = append(out.Recordings, rec{Predicted: p, Settings: jr.Settings, Provenance: jr.Provenance})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// vLeg is a leg of the virtual switch.
type vLeg struct {
	def     *scenario.Leg
	vars    callstate.VarMap // visible on the leg's events
	pending map[string]string
	dest    string
	up      bool
	hungup  bool
	follow  bool // recording_follow_transfer, as the machine set it
}

// vRec is a recording file of the virtual switch.
type vRec struct {
	Predicted
	rec     *callstate.Recording
	leg     *vLeg
	limitAt int64 // µs
	stopped bool
}

type virtualSwitch struct {
	t      *table.Table
	c      *scenario.Call
	m      *callstate.Machine
	legs   map[string]*vLeg
	byUUID map[string]*vLeg
	recs   []*vRec
	byID   map[string]*vRec
	ids    int
	err    error
}

func newVirtualSwitch(t *table.Table, c *scenario.Call, cl classify.Classifier) *virtualSwitch {
	v := &virtualSwitch{t: t, c: c, legs: map[string]*vLeg{}, byUUID: map[string]*vLeg{}, byID: map[string]*vRec{}}
	v.m = callstate.New(callstate.Config{Classifier: cl, Table: func() *table.Table { return t },
		NewID: func() string { v.ids++; return c.ID + "-" + strconv.Itoa(v.ids) }})
	for i := range c.Legs {
		l := &c.Legs[i]
		vl := &vLeg{def: l, vars: callstate.VarMap{}, pending: map[string]string{}, dest: l.DestinationNumber}
		v.legs[l.Name] = vl
		v.byUUID[l.UUID] = vl
	}
	return v
}

// transferOf returns the destination of the blind transfer that unbridge
// belongs to: an EffTransfer of the same leg at the same time among the
// effects that follow it.
func transferOf(rest []scenario.Effect, unbridge scenario.Effect) (string, bool) {
	for _, e := range rest {
		if e.AtMS != unbridge.AtMS {
			break
		}
		if e.Kind == scenario.EffTransfer && e.Leg == unbridge.Leg {
			return e.Dest, true
		}
	}
	return "", false
}

// run plays the call's effects.
func (v *virtualSwitch) run() error {
	effs := v.c.Effects()
	for i, e := range effs {
		ts := e.AtMS * 1000
		v.expire(ts)
		l := v.legs[e.Leg]
		if l == nil {
			return fmt.Errorf("effect %s: no leg %q", e.Kind, e.Leg)
		}
		if e.Kind != scenario.EffCreate && (!l.up || l.hungup) {
			continue
		}
		ev := callstate.Event{TS: ts, Leg: l.def.UUID, Vars: l.vars, ChannelName: l.def.ChannelName,
			Direction: l.def.Direction, Dest: l.dest, CallerNum: l.def.CallerIDNumber}
		switch e.Kind {
		case scenario.EffCreate:
			l.up = true
			v.createVars(l)
			ev.Kind = callstate.Create
			if p := v.legs[l.def.Parent]; p != nil {
				ev.OtherLeg = p.def.UUID
			}
		case scenario.EffSet:
			// The CHANNEL_EXECUTE of "set" fires before the variables
			// apply: they show on the leg's next event.
			ev.Kind, ev.App = callstate.Execute, "set"
			v.handle(&ev)
			for k, val := range e.Vars {
				l.vars[strings.ToLower(k)] = val
			}
			continue
		case scenario.EffExecute:
			ev.Kind, ev.App, ev.AppData = callstate.Execute, e.App, e.Data
		case scenario.EffRing:
			continue // CHANNEL_PROGRESS: not in the runtime's subscription
		case scenario.EffMedia:
			ev.Kind = callstate.Media
		case scenario.EffAnswer:
			ev.Kind = callstate.Answer
		case scenario.EffBridge, scenario.EffUnbridge:
			o := v.legs[e.Other]
			if o == nil {
				return fmt.Errorf("effect %s: no leg %q", e.Kind, e.Other)
			}
			ev.Kind, ev.BridgeA, ev.BridgeB = callstate.Bridge, l.def.UUID, o.def.UUID
			if e.Kind == scenario.EffUnbridge {
				ev.Kind = callstate.Unbridge
				// A leg unbridged by its blind transfer carries its new
				// caller profile on CHANNEL_UNBRIDGE already
				// (esl-captures/freeswitch-1.10.12/call-shapes/blind_transfer_rx_raw.txt).
				if d, ok := transferOf(effs[i+1:], e); ok {
					l.dest, ev.Dest = d, d
				}
			}
		case scenario.EffPark:
			ev.Kind = callstate.Park
		case scenario.EffDTMF:
			ev.Kind, ev.Digit, ev.Vars = callstate.DTMF, e.Digit, nil
		case scenario.EffTransfer:
			if e.App != "" {
				tr := ev
				tr.Kind, tr.App, tr.AppData = callstate.Execute, e.App, e.Dest
				v.handle(&tr)
			}
			l.dest = e.Dest
			continue
		case scenario.EffReplace:
			// An attended transfer moves the replaced leg's recordings
			// to the leg replacing it when the leg's
			// recording_follow_transfer is true, as mod_sofia does.
			o := v.legs[e.Other]
			if o == nil || !l.follow || !o.up || o.hungup {
				continue
			}
			for _, r := range v.recs {
				if r.leg == l && !r.stopped {
					r.leg, r.MovedTo = o, o.def.Name
				}
			}
			continue
		case scenario.EffHangup:
			ev.Kind = callstate.Hangup
			v.handle(&ev)
			l.hungup = true
			for _, r := range v.recs {
				if r.leg == l && !r.stopped {
					v.stop(r, ts)
				}
			}
			ev.Kind = callstate.HangupComplete
		default:
			continue
		}
		v.handle(&ev)
		if v.err != nil {
			return v.err
		}
	}
	return v.err
}

// createVars gives a new leg its variables: its definition's, and for the
// -b half of a loopback a copy of its -a half's first, with the variables
// mod_loopback links the halves by.
func (v *virtualSwitch) createVars(l *vLeg) {
	if a := v.legs[l.def.LoopbackOf]; l.def.LoopbackOf != "" && a != nil {
		for k, val := range a.vars {
			l.vars[k] = val
		}
		l.vars["other_loopback_leg_uuid"] = a.def.UUID
		a.vars["other_loopback_leg_uuid"] = l.def.UUID
	}
	for k, val := range l.def.Variables {
		l.vars[strings.ToLower(k)] = val
	}
}

// handle feeds one event to the machine and carries out its commands.
func (v *virtualSwitch) handle(ev *callstate.Event) {
	cmds := append([]callstate.Command(nil), v.m.Handle(ev)...)
	v.do(cmds, ev.TS)
}

func (v *virtualSwitch) do(cmds []callstate.Command, ts int64) {
	for _, c := range cmds {
		switch c.Kind {
		case callstate.Start:
			l := v.byUUID[c.Rec.Leg.UUID]
			if l == nil || !l.up || l.hungup {
				v.v(callstate.Event{Kind: callstate.StartRefused, TS: ts, Rec: c.Rec.ID})
				continue
			}
			if v.byID[c.Rec.ID] != nil {
				continue // a path already recording starts nothing
			}
			r := &vRec{rec: c.Rec, leg: l, limitAt: ts + int64(c.Rec.Settings.TimeLimit)*1_000_000}
			r.Predicted = Predicted{Call: v.c.ID, Leg: l.def.Name, LegUUID: l.def.UUID, Account: c.Rec.Account.ID,
				Scope: string(c.Rec.Scope), Origin: c.Rec.Origin, Trigger: string(c.Rec.Trigger),
				Settings: &c.Rec.Settings, Provenance: &c.Rec.Provenance, StartMS: ts / 1000, StopMS: -1}
			if c.Rec.Endpoint != "" {
				r.Endpoint = "device:" + c.Rec.Endpoint
			}
			v.recs = append(v.recs, r)
			v.byID[c.Rec.ID] = r
			v.v(callstate.Event{Kind: callstate.RecordStarted, TS: ts, Rec: c.Rec.ID})
		case callstate.Stop:
			if r := v.byID[c.Rec.ID]; r != nil && !r.stopped {
				v.stop(r, ts)
			}
		case callstate.Follow:
			if l := v.byUUID[c.Leg]; l != nil {
				l.follow = c.Value == "true"
			}
		case callstate.Announce:
			if r := v.byID[c.Rec.ID]; r != nil && r.Announced == nil {
				r.Announced = &Announcement{AtMS: c.Rec.AnnouncedAt / 1000, Announce: c.Rec.Settings.Announce,
					Media: c.Value, To: c.Target, Provenance: c.Rec.Provenance.Announce}
			}
		}
	}
}

// v feeds a recording event to the machine and carries out what follows.
func (v *virtualSwitch) v(ev callstate.Event) {
	cmds := append([]callstate.Command(nil), v.m.Handle(&ev)...)
	v.do(cmds, ev.TS)
}

// stop stops a recording file at ts, as the switch's RECORD_STOP.
func (v *virtualSwitch) stop(r *vRec, ts int64) {
	r.stopped = true
	v.v(callstate.Event{Kind: callstate.RecordStopped, TS: ts, Rec: r.rec.ID})
	r.StopMS = ts / 1000
	r.DurationMS = r.rec.FileMS(ts)
	r.Kept = r.DurationMS > 0 && r.DurationMS >= int64(r.Settings.RecordMinSec)*1000
	r.Masked = []Span{}
	for _, m := range r.rec.Masks() {
		r.Masked = append(r.Masked, Span{StartMS: m.StartMS, EndMS: m.EndMS})
	}
}

// expire stops the recordings whose time limit has passed at ts.
func (v *virtualSwitch) expire(ts int64) {
	for _, r := range v.recs {
		if !r.stopped && r.limitAt <= ts {
			v.stop(r, r.limitAt)
		}
	}
}

func (v *virtualSwitch) result() []Predicted {
	out := make([]Predicted, 0, len(v.recs))
	for _, r := range v.recs {
		if !r.stopped { // never hung up: still running at the end
			r.Masked = []Span{}
			for _, m := range r.rec.Masks() {
				r.Masked = append(r.Masked, Span{StartMS: m.StartMS, EndMS: m.EndMS})
			}
		}
		out = append(out, r.Predicted)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartMS < out[j].StartMS })
	return out
}
