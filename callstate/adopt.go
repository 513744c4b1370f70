package callstate

import (
	"strings"

	"github.com/recpol/recpol/table"
)

// Continued is a recording that an earlier run of the driver started and
// that is still running on the switch (its intent survived a restart).
type Continued struct {
	ID      string
	StartTS int64 // RECORD_START's time, µs
	Masks   []Range
	// MaskedFromMS, when set, is where in the file a mask still in force
	// began.
	MaskedFromMS *int64
	// Format is the file's format (it may differ from the policy's now).
	Format string
}

// takeAdopted asks the driver whether a recording it decides now is one an
// earlier run started (same leg, scope and origin): it is then continued,
// not started a second time.
func (m *Machine) takeAdopted(r *Recording) (Continued, bool) {
	if m.cfg.Continue == nil {
		return Continued{}, false
	}
	return m.cfg.Continue(r.Leg.UUID, r.Scope, r.Origin)
}

// continueAdopted makes r the continuation of an earlier run's recording:
// it takes its id, start and masks and counts as running. The start is
// sent again (the earlier run may have died between its intent and its
// start; a path the switch records already answers +OK and starts
// nothing), and so is a mask in force.
func (m *Machine) continueAdopted(r *Recording, a *Continued) {
	r.ID, r.StartTS, r.State = a.ID, a.StartTS, Running
	if a.Format != "" {
		r.Settings.Format = a.Format
	}
	r.masks = append([]Range(nil), a.Masks...)
	m.recs[r.ID] = r
	// The earlier run started it, and announced it if it had to.
	r.Call.heard(r.reasonKey())
	m.emit(Command{Kind: Start, Rec: r})
	if a.MaskedFromMS != nil {
		r.maskFrom = r.StartTS + *a.MaskedFromMS*1000
		r.Call.masked = true
		m.emit(Command{Kind: Mask, Rec: r})
	} else if r.Call.masked {
		m.mask(r, r.StartTS)
	}
	m.tag(r)
	m.setFollow(r.Leg)
}

// Snapshot is what the switch says of a live leg when the driver
// (re)connects: its headers and variables (uuid_dump).
type Snapshot struct {
	Leg, ChannelName, Direction, Dest, CallerNum string
	// OtherLeg is Other-Leg-Unique-ID: the originator, or the leg it is
	// bridged to.
	OtherLeg string
	// Vars are the leg's channel variables.
	Vars Vars
	// Answered, Media and Bridged are the leg's state.
	Answered, Media, Bridged bool
}

// Restore rebuilds legs and calls from what the switch says after a
// restart of the driver (SPEC 2.7: a restart loses no call state), so that
// a DTMF or an operator's action afterwards acts as it would have before.
// A leg the machine follows already is left alone. A restored call's
// decisions count as taken (the earlier run took them: its recordings are
// continued with Adopt, never started twice); legs that join it later get
// their decisions as usual.
func (m *Machine) Restore(snaps []Snapshot) {
	var fresh []*Leg
	byUUID := map[string]*Snapshot{}
	for i := range snaps {
		s := &snaps[i]
		if s.Leg == "" || m.legs[s.Leg] != nil {
			continue
		}
		l := &Leg{UUID: s.Leg, Channel: s.ChannelName, Direction: s.Direction, Dest: s.Dest, CallerNum: s.CallerNum,
			Vars: map[string]string{}, answered: s.Answered,
			media: s.Media || s.Answered, bridged: s.Bridged}
		if s.Vars != nil {
			s.Vars.CopyVars(l.Vars, m.want)
		}
		l.loopback = strings.HasPrefix(l.Channel, "loopback/")
		l.classify(m.cfg.Classifier)
		m.legs[l.UUID] = l
		fresh = append(fresh, l)
		byUUID[l.UUID] = s
	}
	// The legs nothing originated start calls, oldest first by the order
	// the switch listed them; the others join their originator's call or
	// the call of the leg they are bridged to.
	for _, l := range fresh {
		if l.Vars["originator"] != "" || l.Vars["originating_leg_uuid"] != "" || !strings.EqualFold(l.Direction, "inbound") ||
			(l.loopback && strings.HasSuffix(l.Channel, "-b")) {
			continue
		}
		l.isA = true
		m.calls++
		c := &Call{ID: l.UUID, A: l, seq: m.calls, accounts: map[string]*acctState{}, aFinal: true, toKnown: true}
		if m.cfg.Table != nil {
			c.Table = m.cfg.Table()
		}
		c.ignored = c.Table == nil
		c.add(l)
		if !c.ignored && l.classified {
			if acct, ok := c.Table.Account(l.class.Account); ok {
				c.acct, c.from = acct, l.class.Network
				if id := m.cfg.Classifier.InteractionID(l.Vars); id != "" {
					c.ID = id
				}
				c.accounts[acct.ID] = &acctState{acct: acct, decided: true}
			} else {
				c.ignored = true
			}
		}
	}
	for pass := 0; pass < 3; pass++ {
		for _, l := range fresh {
			if l.call != nil {
				continue
			}
			for _, o := range []string{l.Vars["originator"], l.Vars["originating_leg_uuid"], byUUID[l.UUID].OtherLeg, l.Vars["other_loopback_leg_uuid"]} {
				if p := m.legs[o]; o != "" && p != nil && p.call != nil {
					p.call.add(l)
					break
				}
			}
		}
	}
	for _, l := range fresh {
		c := l.call
		if c == nil {
			continue
		}
		if l.classified && c.acct != nil && l.class.Account != c.acct.ID && c.accounts[l.class.Account] == nil {
			if x, ok := c.Table.Account(l.class.Account); ok {
				c.accounts[x.ID] = &acctState{acct: x, decided: true}
			}
		}
		if l.answered {
			l.calleeIn = c
		}
	}
	for _, l := range fresh {
		if s := byUUID[l.UUID]; s.OtherLeg != "" && s.Bridged {
			if o := m.legs[s.OtherLeg]; o != nil && o.call != nil && l.call != nil && o.call != l.call {
				m.bridge(l.UUID, o.UUID, 0) // no recording yet: Adopt follows
			}
		}
	}
}

// AdoptedRecording names a recording of an earlier run that the switch
// still records, for Adopt.
type AdoptedRecording struct {
	Continued
	Leg              string
	Scope            Scope
	Origin, Endpoint string
	Settings         table.Settings
	Provenance       table.Provenance
	ReadOnly         bool
}

// Adopt continues a recording of an earlier run on a leg the machine
// follows (after Restore): it counts as running, its masks go on, call-wide
// actions act on it. It returns false when the machine follows no call of
// that leg. The commands (the start and a mask in force, sent again) are
// valid until the next call.
func (m *Machine) Adopt(a AdoptedRecording) ([]Command, bool) {
	m.out = m.out[:0]
	l := m.legs[a.Leg]
	if l == nil || l.call == nil || l.call.ignored || l.call.acct == nil || m.recs[a.ID] != nil {
		return nil, false
	}
	c := l.call
	acct := c.acct
	if l.classified && l.class.Account != acct.ID {
		if x, ok := c.Table.Account(l.class.Account); ok {
			acct = x
		}
	}
	r := &Recording{Call: c, Leg: l, Account: acct, Scope: a.Scope, Origin: a.Origin, Endpoint: a.Endpoint,
		Trigger: TriggerRestored, Settings: a.Settings, Provenance: a.Provenance, ReadOnly: a.ReadOnly}
	m.add(r)
	cont := a.Continued
	m.continueAdopted(r, &cont)
	return m.out, true
}
