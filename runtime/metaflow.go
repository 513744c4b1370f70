package runtime

import (
	"fmt"

	"github.com/recpol/recpol/table"
)

// endpointLeg is a leg carrying a device of the call's account, with that
// device's resolved metaflows.
type endpointLeg struct {
	leg    *leg
	device string
	mf     *table.Metaflows
}

func (e *engine) metaflowLegs(c *call) []endpointLeg {
	var out []endpointLeg
	for _, l := range append([]*leg{c.a}, c.bs...) {
		if !l.classified || l.class.device == "" || l.class.account != c.acct.ID {
			continue
		}
		d, ok := c.acct.Devices[l.class.device]
		if !ok || d.Metaflows == nil {
			continue
		}
		out = append(out, endpointLeg{l, l.class.device, d.Metaflows})
	}
	return out
}

// dtmf feeds a digit pressed on leg l to every metaflow listening to it:
// an endpoint's own leg with listen_on self or both, another leg of the
// call with peer or both.
func (e *engine) dtmf(l *leg, digit string, ts int64) {
	c := l.call
	if c.acct == nil || len(digit) != 1 {
		return
	}
	for _, el := range e.metaflowLegs(c) {
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
			el.leg.dtmf[el.device] = col
		}
		if b, ok := col.Feed(el.mf, digit, ts/1000); ok {
			e.metaflow(c, el, b, ts)
		}
	}
}

// metaflow runs a metaflow action. start, stop and toggle act on the
// endpoint's own leg; mask, unmask, pause and resume on every recording of
// the call, on all legs.
func (e *engine) metaflow(c *call, el endpointLeg, b *table.MetaflowBinding, ts int64) {
	act := b.Action
	e.log.Info("metaflow", "switch", e.sw.Name, "call", c.a.uuid, "device", el.device, "code", el.mf.BindingDigit+b.Code, "action", act.Action)
	own := func() []*recording {
		var out []*recording
		for _, r := range c.recsOf(el.leg) {
			if r.scope == "metaflow" && (r.state == recRequested || r.state == recRunning || r.state == recWaiting) {
				out = append(out, r)
			}
		}
		return out
	}
	switch act.Action {
	case "start":
		if len(own()) == 0 {
			e.startMetaflow(c, el, b, ts)
		}
	case "stop":
		for _, r := range own() {
			e.stop(r)
		}
	case "toggle":
		rs := own()
		if len(rs) == 0 {
			e.startMetaflow(c, el, b, ts)
			return
		}
		for _, r := range rs {
			if r.pauseFrom >= 0 {
				e.resume(r, ts)
			} else {
				e.pause(r, ts)
			}
		}
	case "mask", "unmask", "pause", "resume":
		e.callWide(c, act.Action, ts)
	}
}

// callWide masks, unmasks, pauses or resumes every running recording of a
// call, on all legs; a recording that starts later while the call is
// masked starts masked.
func (e *engine) callWide(c *call, action string, ts int64) {
	switch action {
	case "mask":
		c.masked = true
	case "unmask":
		c.masked = false
	case "pause":
		c.paused = true
	case "resume":
		c.paused = false
	}
	for _, r := range c.recs {
		if r.state != recRequested && r.state != recRunning {
			continue
		}
		switch action {
		case "mask":
			if r.maskFrom < 0 {
				r.maskFrom = ts
				e.send(fmt.Sprintf("uuid_record %s mask %s", r.leg.uuid, r.path))
			}
		case "unmask":
			if r.maskFrom >= 0 {
				r.masks = append(r.masks, Range{StartMS: r.fileMS(r.maskFrom), EndMS: r.fileMS(ts)})
				r.maskFrom = -1
				e.send(fmt.Sprintf("uuid_record %s unmask %s", r.leg.uuid, r.path))
			}
		case "pause":
			e.pause(r, ts)
		case "resume":
			e.resume(r, ts)
		}
	}
}

func (e *engine) startMetaflow(c *call, el endpointLeg, b *table.MetaflowBinding, ts int64) {
	act := b.Action
	r := &recording{call: c, leg: el.leg, scope: "metaflow", endpoint: el.device,
		origin:   "metaflow : " + el.mf.BindingDigit + b.Code,
		settings: *act.Settings, provenance: *act.Provenance, followTransfer: act.FollowTransfer}
	e.add(r)
	r.waitFor = ""
	e.start(r, ts)
}

func (e *engine) pause(r *recording, ts int64) {
	if r.pauseFrom >= 0 {
		return
	}
	if r.maskFrom >= 0 { // close the masked span at the pause
		r.masks = append(r.masks, Range{StartMS: r.fileMS(r.maskFrom), EndMS: r.fileMS(ts)})
		r.maskFrom = ts
	}
	r.pauseFrom = ts
	e.send(fmt.Sprintf("uuid_record %s pause %s", r.leg.uuid, r.path))
}

func (e *engine) resume(r *recording, ts int64) {
	if r.pauseFrom < 0 {
		return
	}
	r.paused += ts - r.pauseFrom
	r.pauseFrom = -1
	if r.maskFrom >= 0 {
		r.maskFrom = ts
	}
	e.send(fmt.Sprintf("uuid_record %s resume %s", r.leg.uuid, r.path))
}
