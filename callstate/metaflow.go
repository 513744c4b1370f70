package callstate

import (
	"errors"

	"github.com/recpol/recpol/table"
)

// endpointLeg is a leg of the call carrying a device of the call's account,
// with that device's resolved metaflows.
type endpointLeg struct {
	leg    *Leg
	device string
	mf     *table.Metaflows
}

func (c *Call) metaflowLegs() []endpointLeg {
	var out []endpointLeg
	for _, l := range c.legs {
		if l.hungup || !l.classified || l.class.Device == "" || l.class.Account != c.acct.ID {
			continue
		}
		d, ok := c.acct.Devices[l.class.Device]
		if !ok || d.Metaflows == nil {
			continue
		}
		out = append(out, endpointLeg{l, l.class.Device, d.Metaflows})
	}
	return out
}

// dtmf feeds a digit pressed on leg l to every metaflow listening to it:
// an endpoint's own leg with listen_on self or both, another leg of the
// call with peer or both (SPEC 2.5). A code whose action sets dtmf_leg
// listens to that leg instead. Digits of the endpoint's own leg and of the
// other legs are collected apart, so that two parties pressing keys at once
// never make a code together. One key press runs one action: when the
// metaflows of several endpoints complete a code with it, the pressing
// leg's own endpoint wins, else the first endpoint of the call (a toggle
// heard by both parties must not start and then pause).
func (m *Machine) dtmf(l *Leg, digit string, ts int64) {
	c := l.call
	var run *endpointLeg
	var runB *table.MetaflowBinding
	for _, el := range c.metaflowLegs() {
		source := table.DTMFPeer
		if el.leg == l {
			source = table.DTMFSelf
		}
		if !listens(el.mf.ListenOn, source) && !el.mf.AnyDTMFLeg(source) {
			continue
		}
		key := el.device + "/" + string(source)
		col := el.leg.dtmf[key]
		if col == nil {
			col = &table.Collector{}
			if el.leg.dtmf == nil {
				el.leg.dtmf = map[string]*table.Collector{}
			}
			el.leg.dtmf[key] = col
		}
		b, ok := col.Feed(el.mf, digit, ts/1000)
		if !ok {
			continue
		}
		want := el.mf.ListenOn
		if b.Action.DTMFLeg != "" {
			want = b.Action.DTMFLeg
		}
		if listens(want, source) && (run == nil || source == table.DTMFSelf && run.leg != l) {
			run, runB = &el, b
		}
	}
	if run != nil {
		m.metaflow(c, *run, runB, ts)
	}
}

// listens reports whether a listen_on or dtmf_leg value takes the digits
// of source (DTMFSelf or DTMFPeer).
func listens(on, source table.DTMFSource) bool {
	return on == table.DTMFBoth || on == source
}

// metaflow runs a metaflow action (SPEC 2.5):
//   - start records the endpoint's own leg (once: a second start while its
//     metaflow recording runs does nothing);
//   - stop stops the endpoint's own metaflow recordings; with scope "call"
//     it stops every recording of the call its account decided, policy
//     and callflow recordings included;
//   - toggle starts a metaflow recording when nothing records the call,
//     else pauses every recording of the call, or resumes them when all
//     are paused: one file, as Wazo's *3;
//   - mask, unmask, pause and resume act on every recording of the call,
//     on all legs.
func (m *Machine) metaflow(c *Call, el endpointLeg, b *table.MetaflowBinding, ts int64) {
	own := func() []*Recording {
		var out []*Recording
		for _, r := range c.recs {
			if r.Leg == el.leg && r.is(ScopeMetaflow) && (r.State == Requested || r.State == Running || r.State == Waiting) {
				out = append(out, r)
			}
		}
		return out
	}
	switch b.Action.Action {
	case table.Start:
		if len(own()) == 0 {
			m.startMetaflow(c, el, b, ts)
		}
	case table.Stop:
		by := "metaflow " + el.mf.BindingDigit + b.Code + " of device:" + el.device
		if b.Action.Scope == table.StopCall {
			for _, r := range c.recs {
				if r.Account == c.acct && (r.State == Waiting || r.State == Requested || r.State == Running) {
					r.StoppedBy = by
					m.stop(r)
				}
			}
			return
		}
		for _, r := range own() {
			r.StoppedBy = by
			m.stop(r)
		}
	case table.Toggle:
		var rs []*Recording
		paused := true
		for _, r := range c.recs {
			if r.State == Requested || r.State == Running {
				rs = append(rs, r)
				paused = paused && r.pauseFrom >= 0
			}
		}
		if len(rs) == 0 {
			m.startMetaflow(c, el, b, ts)
			return
		}
		for _, r := range rs {
			if paused {
				m.resume(r, ts)
			} else {
				m.pause(r, ts)
			}
		}
	case table.Mask, table.Unmask, table.Pause, table.Resume:
		m.callWide(c, b.Action.Action, ts)
	}
}

// callWide masks, unmasks, pauses or resumes every running recording of a
// call, on all its legs (metaflows, the operator API); a recording that
// starts later while the call is masked starts masked. It returns the
// commands to send.
func (m *Machine) callWide(c *Call, action table.Verb, ts int64) []Command {
	switch action {
	case table.Mask:
		c.masked = true
	case table.Unmask:
		c.masked = false
	}
	for _, r := range c.recs {
		if r.State != Requested && r.State != Running {
			continue
		}
		switch action {
		case table.Mask:
			m.mask(r, ts)
		case table.Unmask:
			if r.maskFrom >= 0 {
				r.masks = append(r.masks, Range{StartMS: r.fileMS(r.maskFrom), EndMS: r.fileMS(ts)})
				r.maskFrom = -1
				m.emit(Command{Kind: Unmask, Rec: r})
			}
		case table.Pause:
			m.pause(r, ts)
		case table.Resume:
			m.resume(r, ts)
		}
	}
	return m.out
}

// The refusals of Act.
var (
	ErrNoAccount      = errors.New("the call's account is not in the policy")
	ErrAlreadyRunning = errors.New("an API recording of this leg is already running")
	ErrNothingRunning = errors.New("no recording of this leg is running")
	// ErrOutOfScope: the leg's call is not of the actor's account, or the
	// leg not of the actor's device.
	ErrOutOfScope = errors.New("the call is outside the token's scope")
	// ErrPolicyRecording: the actor may stop API recordings only, and
	// only policy recordings run on the leg.
	ErrPolicyRecording = errors.New("only policy recordings run on this leg: stopping them needs the control right on the account")
)

// Actor says who acts through Act and what they may touch.
type Actor struct {
	// Name is who acts ("api token ops"); a recording Act stops keeps it
	// in StoppedBy.
	Name string
	// Account, when set, limits the actor to calls of that account.
	Account string
	// Device, when set, limits the actor to legs of that device.
	Device string
	// PolicyStop lets a stop end every recording of the leg, policy
	// recordings included; without it a stop ends the leg's API
	// recordings only.
	PolicyStop bool
}

// Act runs an operator's action on leg (the operator API, as Wazo's
// calld): start records the leg with the settings of its account's cell for
// the call and origin "api"; stop stops the leg's recordings (its API
// recordings only, unless the actor may stop policy recordings); mask,
// unmask, pause and resume act on every recording of the call. found is
// false when the machine follows no call of that leg. The commands are
// valid until the next call.
func (m *Machine) Act(leg, action string, who Actor, ts int64) (cmds []Command, found bool, err error) {
	m.out = m.out[:0]
	l := m.legs[leg]
	if l == nil || l.call == nil || l.hungup {
		return nil, false, nil
	}
	c := l.call
	if c.ignored || c.acct == nil {
		return nil, true, ErrNoAccount
	}
	acct := c.acct.ID
	if l.classified && l.class.Account != "" {
		acct = l.class.Account
	}
	if who.Account != "" && who.Account != acct || who.Device != "" && (!l.classified || l.class.Device != who.Device) {
		return nil, true, ErrOutOfScope
	}
	switch verb := table.Verb(action); verb {
	case table.Start:
		for _, r := range c.recs {
			if r.Leg == l && r.is(ScopeAPI) && (r.State == Requested || r.State == Running) {
				return nil, true, ErrAlreadyRunning
			}
		}
		cell := c.acct.Cells.Get(table.Inbound, c.from)
		r := &Recording{Call: c, Leg: l, Account: c.acct, Scope: ScopeAPI, Origin: "api", Trigger: TriggerAPI,
			Settings: *cell.Settings, Provenance: *cell.Provenance}
		if l.classified && l.class.Account == c.acct.ID {
			r.Endpoint = l.class.Device // the leg's device, if any
		}
		r.Provenance.Enabled = ""
		r.Settings.RecordOnAnswer, r.Settings.RecordOnBridge = false, false
		m.add(r)
		m.start(r, ts)
	case table.Stop:
		n, policy := 0, 0
		for _, r := range c.recs {
			if r.Leg != l || (r.State != Requested && r.State != Running) {
				continue
			}
			if !r.is(ScopeAPI) && !who.PolicyStop {
				policy++
				continue
			}
			r.StoppedBy = who.Name
			m.stop(r)
			n++
		}
		if n == 0 && policy > 0 {
			return nil, true, ErrPolicyRecording
		}
		if n == 0 {
			return nil, true, ErrNothingRunning
		}
	default:
		m.callWide(c, verb, ts)
	}
	return m.out, true, nil
}

func (m *Machine) mask(r *Recording, ts int64) {
	if r.maskFrom >= 0 {
		return
	}
	r.maskFrom = ts
	m.emit(Command{Kind: Mask, Rec: r})
}

func (m *Machine) startMetaflow(c *Call, el endpointLeg, b *table.MetaflowBinding, ts int64) {
	act := b.Action
	origin := act.Origin
	if origin == "" {
		origin = "metaflow : " + el.mf.BindingDigit + b.Code
	}
	r := &Recording{Call: c, Leg: el.leg, Account: c.acct, Scope: ScopeMetaflow, Endpoint: el.device,
		Origin: origin, Trigger: TriggerDTMF, MediaName: act.MediaName,
		Settings: *act.Settings, Provenance: *act.Provenance, FollowTransfer: act.FollowTransfer}
	m.add(r)
	r.waitFor = waitMedia
	m.start(r, ts)
}

func (m *Machine) pause(r *Recording, ts int64) {
	if r.pauseFrom >= 0 {
		return
	}
	if r.maskFrom >= 0 { // close the masked span at the pause
		r.masks = append(r.masks, Range{StartMS: r.fileMS(r.maskFrom), EndMS: r.fileMS(ts)})
		r.maskFrom = ts
	}
	r.pauseFrom = ts
	m.emit(Command{Kind: Pause, Rec: r})
}

func (m *Machine) resume(r *Recording, ts int64) {
	if r.pauseFrom < 0 {
		return
	}
	r.paused += ts - r.pauseFrom
	r.pauseFrom = -1
	if r.maskFrom >= 0 {
		r.maskFrom = ts
	}
	m.emit(Command{Kind: Resume, Rec: r})
}
