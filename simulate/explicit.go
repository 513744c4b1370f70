package simulate

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/recpol/recpol/callstate"
	"github.com/recpol/recpol/table"
)

// This file models the explicit actions of SPEC 2.5 without a call state
// machine: what a call to a callflow number records, and what a DTMF code
// does to the recordings of a call. The truth tables, diff, explain, the
// expectations and lint all read these values, so they say the same.

// scopeCallflow and scopeMetaflow are the scopes of recordings that an
// explicit action starts (JSONRecording.Scope), beside account, caller and
// callee: the call state machine's.
const (
	scopeCallflow = string(callstate.ScopeCallflow)
	scopeMetaflow = string(callstate.ScopeMetaflow)
)

// actionOrigin is the origin of a recording a callflow action starts:
// "callflow : <label, or the callflow's id>".
func actionOrigin(cf *table.Callflow, act *table.Action) string {
	label := act.Label
	if label == "" {
		label = cf.ID
	}
	return "callflow : " + label
}

// actionRecording is the recording a start action records, in the JSON form
// of the simulation.
func actionRecording(scope, endpoint string, leg table.Leg, origin string, act *table.Action) JSONRecording {
	r := recordingJSON(table.Recording{Leg: leg, Origin: origin, Cell: &table.Cell{Record: true, Settings: act.Settings, Provenance: act.Provenance}})
	r.Scope, r.Endpoint = scope, endpoint
	r.CallerOnly = act.Module == table.RecordCaller
	return r
}

// callflowRecordings returns the recordings a callflow's actions leave
// running on the caller's leg (the A-leg): the actions run in order, a
// record_call or record_caller start adds a recording, a record_call stop
// stops the callflow recordings the call has so far.
func callflowRecordings(cf *table.Callflow) []JSONRecording {
	out := []JSONRecording{}
	for i := range cf.Actions {
		act := &cf.Actions[i]
		switch {
		case act.Module == table.RecordCall && act.Action == table.Stop:
			out = out[:0]
		case act.Module == table.RecordCall || act.Module == table.RecordCaller:
			out = append(out, actionRecording(scopeCallflow, "", table.LegA, actionOrigin(cf, act), act))
		}
	}
	return out
}

// dialledNumber is how a call reaches a callflow: one of its numbers, or a number
// matching one of its patterns.
type dialledNumber struct {
	Number  string // an exact number, or the pattern when Pattern
	Pattern bool
}

// String returns the number, or the pattern as /<pattern>/.
func (d dialledNumber) String() string {
	if d.Pattern {
		return "/" + d.Number + "/"
	}
	return d.Number
}

// numberCall is a call to a callflow number and the recordings it starts
// on the caller's leg: the account's, the caller device's, then the
// callflow's. The platform answers such a call, so its destination network
// is onnet (SPEC 2.3); what the callflow then rings is not modelled.
type numberCall struct {
	From       table.Party
	Dialled    dialledNumber
	Callflow   string // the callflow that answers
	Recordings []JSONRecording
}

// numberCallOf returns the recordings of a call from a party (a device of
// the account, offnet or another account) to a callflow.
func numberCallOf(a *table.Account, from table.Party, d dialledNumber, cf *table.Callflow) numberCall {
	nc := numberCall{From: from, Dialled: d, Recordings: []JSONRecording{}}
	if r, ok := a.AccountDecision(from.Network(), table.Onnet); ok {
		if from.Kind == table.OtherAccountParty {
			r.Leg = table.LegB
		}
		nc.Recordings = append(nc.Recordings, recordingJSON(r))
	}
	if from.Kind == table.DeviceParty {
		if r, ok := a.CallerDecision(from.ID, table.Onnet); ok {
			nc.Recordings = append(nc.Recordings, recordingJSON(r))
		}
	}
	if cf != nil {
		nc.Callflow = cf.ID
		nc.Recordings = append(nc.Recordings, callflowRecordings(cf)...)
	}
	return nc
}

// numberCalls returns, for every callflow of an account (by id), every
// number then every pattern, the call to it from each device of the
// account and from offnet.
func numberCalls(a *table.Account) []numberCall {
	var out []numberCall
	for _, cf := range a.Callflows {
		for _, d := range callflowDialled(cf) {
			for _, from := range callersOf(a, false) {
				out = append(out, numberCallOf(a, from, d, cf))
			}
		}
	}
	return out
}

func callflowDialled(cf *table.Callflow) []dialledNumber {
	var out []dialledNumber
	for _, n := range cf.Numbers {
		out = append(out, dialledNumber{Number: n})
	}
	for _, p := range cf.Patterns {
		out = append(out, dialledNumber{Number: p, Pattern: true})
	}
	return out
}

// listenOn returns whose DTMF fires a binding: the action's dtmf_leg when
// set, else the metaflows' listen_on (self, peer or both).
func listenOn(mf *table.Metaflows, b *table.MetaflowBinding) table.DTMFSource {
	if b.Action.DTMFLeg != "" {
		return b.Action.DTMFLeg
	}
	return mf.ListenOn
}

// listenWords says whose key presses count for a listen_on value.
func listenWords(listen table.DTMFSource) string {
	switch listen {
	case table.DTMFPeer:
		return "the other party's DTMF (listen_on peer)"
	case table.DTMFBoth:
		return "DTMF of either party (listen_on both)"
	}
	return "its own DTMF (listen_on self)"
}

// actionEffect says in words what a metaflow action does (SPEC 2.5): mask,
// unmask, pause and resume act on every running recording of the call,
// start and stop on the leg of the endpoint that owns the metaflow.
func actionEffect(act *table.Action) string {
	switch act.Action {
	case table.Mask:
		return "masks every running recording of the call, on all legs (silence in the file; a recording that starts later starts masked)"
	case table.Unmask:
		return "unmasks every recording of the call"
	case table.Pause:
		return "pauses every running recording of the call (the gap is left out of the file)"
	case table.Resume:
		return "resumes every paused recording of the call"
	case table.Start:
		return "starts a recording of the endpoint's own leg"
	case table.Stop:
		if act.Scope == table.StopCall {
			return "stops the metaflow recordings of the endpoint's own leg and every policy recording of the call (scope call)"
		}
		return "stops the metaflow recordings of the endpoint's own leg"
	case table.Toggle:
		return "starts a recording of the endpoint's own leg when none runs on the call, else pauses or resumes the call's recordings"
	}
	return string(act.Module) + " " + string(act.Action)
}

// bindingEffect says what a binding does and whose DTMF fires it.
func bindingEffect(mf *table.Metaflows, b *table.MetaflowBinding) string {
	return actionEffect(&b.Action) + "; fired by " + listenWords(listenOn(mf, b))
}

// matchKeys returns the binding a key sequence ("*72": the binding digit,
// then the code) fires on an endpoint's metaflows.
func matchKeys(mf *table.Metaflows, keys string) (*table.MetaflowBinding, bool) {
	if mf == nil {
		return nil, false
	}
	digits, ok := strings.CutPrefix(keys, mf.BindingDigit)
	if !ok || digits == "" {
		return nil, false
	}
	return mf.Match(digits)
}

// dtmfOutcome is what a key sequence pressed during a call does to the
// call's recordings through one device's metaflows. The call's recordings
// are those of its decisions (every ringing leg answered), all running.
type dtmfOutcome struct {
	Device  string // the device whose metaflows answer
	Leg     table.Leg
	Keys    string
	Binding *table.MetaflowBinding // nil when no binding answers
	Listen  table.DTMFSource       // whose DTMF fires it
	// Affected are the call's running recordings it acts on (masks,
	// pauses, stops...), Untouched the others.
	Affected, Untouched []JSONRecording
	// Started is the recording it starts, if any.
	Started *JSONRecording
}

// pressDTMF returns what keys do when a device's metaflows hear them
// during a call of the account (the device is the caller or rings).
func pressDTMF(a *table.Account, c table.Call, device, keys string) (dtmfOutcome, error) {
	recs, err := a.Decide(c)
	if err != nil {
		return dtmfOutcome{}, fmt.Errorf("pressing %s in %s -> %s: %w", keys, c.From, c.To, err)
	}
	out := dtmfOutcome{Device: device, Keys: keys, Leg: table.LegB}
	if c.From.Kind == table.DeviceParty && c.From.ID == device {
		out.Leg = table.LegA
	}
	all := make([]JSONRecording, 0, len(recs))
	for _, r := range recs {
		all = append(all, recordingJSON(r))
	}
	e := a.Devices[device]
	if e == nil {
		return dtmfOutcome{}, fmt.Errorf("account %s has no device %q%s", a.ID, device, table.DidYouMean(device, a.Devices))
	}
	b, ok := matchKeys(e.Metaflows, keys)
	if !ok {
		out.Untouched = all
		return out, nil
	}
	out.Binding, out.Listen = b, listenOn(e.Metaflows, b)
	start := func() {
		r := actionRecording(scopeMetaflow, "device:"+device, out.Leg, "metaflow : "+keys, &b.Action)
		out.Started = &r
	}
	switch b.Action.Action {
	case table.Mask, table.Unmask, table.Pause, table.Resume:
		out.Affected = all
	case table.Start:
		start()
		out.Untouched = all
	case table.Stop:
		if b.Action.Scope == table.StopCall {
			out.Affected = all
		} else {
			out.Untouched = all
		}
	case table.Toggle:
		if len(all) == 0 {
			start()
		} else {
			out.Affected = all
		}
	default:
		out.Untouched = all
	}
	return out, nil
}

// Verb is what the outcome does to each affected recording: masks,
// unmasks, pauses, resumes, stops, or pauses/resumes for a toggle.
func (o *dtmfOutcome) Verb() string {
	if o.Binding == nil {
		return ""
	}
	switch a := o.Binding.Action.Action; a {
	case table.Toggle:
		return "pauses (or resumes)"
	case table.Stop:
		return "stops"
	default:
		return string(a) + "s"
	}
}

// dtmfDevices returns the devices of a call whose metaflows hear DTMF: the
// caller device and every ringing device that has metaflows.
func dtmfDevices(a *table.Account, c table.Call) []string {
	var out []string
	if c.From.Kind == table.DeviceParty {
		if e := a.Devices[c.From.ID]; e != nil && e.Metaflows != nil {
			out = append(out, c.From.ID)
		}
	}
	for _, id := range a.Ringing(c) {
		if e := a.Devices[id]; e != nil && e.Metaflows != nil {
			out = append(out, id)
		}
	}
	return out
}

// matchPattern returns the leftmost match of a callflow pattern in a
// number, as table.Account.MatchCallflow measures it.
func matchPattern(pattern, number string) (string, bool) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", false
	}
	loc := re.FindStringIndex(number)
	if loc == nil {
		return "", false
	}
	return number[loc[0]:loc[1]], true
}
