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
// call with peer or both (SPEC 2.5).
func (m *Machine) dtmf(l *Leg, digit string, ts int64) {
	c := l.call
	for _, el := range c.metaflowLegs() {
		own := el.leg == l
		switch el.mf.ListenOn {
		case "self":
			if !own {
				continue
			}
		case "peer":
			if own {
				continue
			}
		}
		col := el.leg.dtmf[el.device]
		if col == nil {
			col = &table.Collector{}
			if el.leg.dtmf == nil {
				el.leg.dtmf = map[string]*table.Collector{}
			}
			el.leg.dtmf[el.device] = col
		}
		if b, ok := col.Feed(el.mf, digit, ts/1000); ok {
			m.metaflow(c, el, b, ts)
		}
	}
}

// metaflow runs a metaflow action: start, stop and toggle act on the
// endpoint's own leg; mask, unmask, pause and resume on every recording of
// the call, on all legs.
func (m *Machine) metaflow(c *Call, el endpointLeg, b *table.MetaflowBinding, ts int64) {
	own := func() []*Recording {
		var out []*Recording
		for _, r := range c.recs {
			if r.Leg == el.leg && r.Scope == "metaflow" && (r.State == Requested || r.State == Running || r.State == Waiting) {
				out = append(out, r)
			}
		}
		return out
	}
	switch b.Action.Action {
	case "start":
		if len(own()) == 0 {
			m.startMetaflow(c, el, b, ts)
		}
	case "stop":
		for _, r := range own() {
			m.stop(r)
		}
	case "toggle":
		rs := own()
		if len(rs) == 0 {
			m.startMetaflow(c, el, b, ts)
			return
		}
		for _, r := range rs {
			if r.pauseFrom >= 0 {
				m.resume(r, ts)
			} else {
				m.pause(r, ts)
			}
		}
	case "mask", "unmask", "pause", "resume":
		m.callWide(c, b.Action.Action, ts)
	}
}

// callWide masks, unmasks, pauses or resumes every running recording of a
// call, on all its legs (metaflows, the operator API); a recording that
// starts later while the call is masked starts masked. It returns the
// commands to send.
func (m *Machine) callWide(c *Call, action string, ts int64) []Command {
	switch action {
	case "mask":
		c.masked = true
	case "unmask":
		c.masked = false
	}
	for _, r := range c.recs {
		if r.State != Requested && r.State != Running {
			continue
		}
		switch action {
		case "mask":
			m.mask(r, ts)
		case "unmask":
			if r.maskFrom >= 0 {
				r.masks = append(r.masks, Range{StartMS: r.fileMS(r.maskFrom), EndMS: r.fileMS(ts)})
				r.maskFrom = -1
				m.emit(Command{Kind: Unmask, Rec: r})
			}
		case "pause":
			m.pause(r, ts)
		case "resume":
			m.resume(r, ts)
		}
	}
	return m.out
}

// ErrNoAccount, ErrAlreadyRunning and ErrNothingRunning are the refusals
// of Act.
var (
	ErrNoAccount      = errors.New("the call's account is not in the policy")
	ErrAlreadyRunning = errors.New("an API recording of this leg is already running")
	ErrNothingRunning = errors.New("no recording of this leg is running")
)

// Act runs an operator's action on leg (the operator API, as Wazo's
// calld): start records the leg with the settings of its account's cell for
// the call and origin "api"; stop stops the leg's recordings; mask,
// unmask, pause and resume act on every recording of the call. found is
// false when the machine follows no call of that leg. The commands are
// valid until the next call.
func (m *Machine) Act(leg, action string, ts int64) (cmds []Command, found bool, err error) {
	m.out = m.out[:0]
	l := m.legs[leg]
	if l == nil || l.call == nil || l.hungup {
		return nil, false, nil
	}
	c := l.call
	if c.ignored || c.acct == nil {
		return nil, true, ErrNoAccount
	}
	switch action {
	case "start":
		for _, r := range c.recs {
			if r.Leg == l && r.Scope == "api" && (r.State == Requested || r.State == Running) {
				return nil, true, ErrAlreadyRunning
			}
		}
		cell := c.acct.Cells.Get(table.Inbound, c.from)
		r := &Recording{Call: c, Leg: l, Account: c.acct, Scope: "api", Origin: "api", Trigger: "api",
			Settings: *cell.Settings, Provenance: *cell.Provenance}
		r.Provenance.Enabled = ""
		r.Settings.RecordOnAnswer, r.Settings.RecordOnBridge = false, false
		m.add(r)
		m.start(r, ts)
	case "stop":
		n := 0
		for _, r := range c.recs {
			if r.Leg == l && (r.State == Requested || r.State == Running) {
				m.stop(r)
				n++
			}
		}
		if n == 0 {
			return nil, true, ErrNothingRunning
		}
	default:
		m.callWide(c, action, ts)
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
	r := &Recording{Call: c, Leg: el.leg, Account: c.acct, Scope: "metaflow", Endpoint: el.device,
		Origin: "metaflow : " + el.mf.BindingDigit + b.Code, Trigger: "dtmf",
		Settings: *act.Settings, Provenance: *act.Provenance, FollowTransfer: act.FollowTransfer}
	m.add(r)
	r.waitFor = ""
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
