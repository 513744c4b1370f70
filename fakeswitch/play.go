package fakeswitch

import (
	"strconv"
	"strings"

	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// A call is played by rendering its effects (scenario.Call.Effects, the
// expansion the simulator reads too) as the events FreeSWITCH 1.10.12
// sends for them. The effects of one step happen at one virtual time, in
// one scheduled action, so a step can look ahead at what it does (a
// uuid_bridge shows its new partner on the CHANNEL_UNBRIDGE before it, as
// in the attended_transfer capture).

// startCall schedules the effects of c, step by step. Callers hold s.mu.
func (s *Server) startCall(c scenario.Call) {
	call := &c
	legs := map[string]*channel{}
	base := s.now
	effs := call.Effects()
	for i := 0; i < len(effs); {
		j := i
		for j < len(effs) && effs[j].Step == effs[i].Step {
			j++
		}
		step := effs[i:j]
		s.schedule(base+step[0].AtMS, true, func() { s.playStep(call, legs, step) })
		i = j
	}
}

// stepPlay is what a step does, found before its effects are rendered.
type stepPlay struct {
	call *scenario.Call
	legs map[string]*channel
	// joins: a leg a uuid_bridge in this step bridges, with its new
	// partner and whether it is the bridging side (Other-Type
	// originatee).
	joins map[string]join
	// transfers: the transfer of a leg in this step.
	transfers map[string]scenario.Effect
	done      map[string]bool // legs whose join or transfer is applied
}

type join struct {
	partner string
	a       bool
}

// playStep renders the effects of one step. Callers hold s.mu.
func (s *Server) playStep(call *scenario.Call, legs map[string]*channel, effs []scenario.Effect) {
	p := &stepPlay{call: call, legs: legs, joins: map[string]join{}, transfers: map[string]scenario.Effect{}, done: map[string]bool{}}
	for _, e := range effs {
		switch {
		case e.Kind == scenario.EffExecute && e.App == "uuid_bridge":
			for _, l := range call.Legs {
				if l.UUID == e.Data {
					_, seen := p.joins[l.Name]
					p.joins[e.Leg] = join{partner: l.Name, a: !seen}
				}
			}
		case e.Kind == scenario.EffTransfer:
			p.transfers[e.Leg] = e
		}
	}
	for _, e := range effs {
		s.render(p, e)
	}
}

// render renders one effect. An effect on a leg that is not up (a client
// killed it) is skipped. Callers hold s.mu.
func (s *Server) render(p *stepPlay, e scenario.Effect) {
	if e.Kind == scenario.EffCreate {
		s.createLeg(p.call, p.legs, p.call.Leg(e.Leg))
		return
	}
	ch := p.legs[e.Leg]
	if ch == nil || ch.completed || (ch.hungup && e.Kind != scenario.EffHangupComplete && e.Kind != scenario.EffUnbridge) {
		s.log.Debug("effect skipped: leg not up", "call", p.call.ID, "leg", e.Leg, "effect", e.Kind.String())
		return
	}
	switch e.Kind {
	case scenario.EffSet:
		for _, k := range scenario.SortedKeys(e.Vars) {
			v := e.Vars[k]
			s.execute(ch, "set", k+"="+v, func() { ch.setVar(k, v) })
		}
	case scenario.EffExecute:
		if e.App == "uuid_bridge" {
			s.joinOnce(p, ch)
			// uuid_bridge_on_soft_execute (src/switch_ivr_bridge.c):
			// the attended_transfer capture, events 25-26.
			trailer := []eslwire.Header{{Name: "Application", Value: e.App}, {Name: "Application-Data", Value: e.Data}, {Name: "Application-UUID", Value: newUUID()}}
			ch.setVar("current_application", e.App)
			s.publish(s.channelEvent("CHANNEL_EXECUTE", ch, "switch_ivr_bridge.c", "uuid_bridge_on_soft_execute", 1243, nil, trailer))
			return
		}
		s.execute(ch, e.App, e.Data, nil)
	case scenario.EffRing:
		if !ch.ringing {
			ch.ringing = true
			ch.progressUS = s.usec()
			s.publish(s.channelEvent("CHANNEL_PROGRESS", ch, "switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3691, nil, nil))
		}
	case scenario.EffMedia:
		if !ch.early && !ch.answered {
			s.markEarly(ch)
			s.publishProgressMedia(ch)
		}
	case scenario.EffAnswer:
		s.answer(ch)
	case scenario.EffBridge:
		if o := p.legs[e.Other]; o != nil && !o.hungup {
			s.bridge(ch, o)
		}
	case scenario.EffUnbridge:
		o := p.legs[e.Other]
		if o == nil || ch.made[o.uuid] == nil {
			return
		}
		s.unbridge(p, ch, o)
	case scenario.EffPark:
		// switch_ivr_park (src/switch_ivr.c): attended_transfer capture,
		// event 20.
		s.publish(s.channelEvent("CHANNEL_PARK", ch, "switch_ivr.c", "switch_ivr_park", 1002, nil, nil))
	case scenario.EffDTMF:
		ev := s.channelEvent("DTMF", ch, "switch_channel.c", "switch_channel_dequeue_dtmf", 677, nil, nil, noVars)
		ev.Add("DTMF-Digit", e.Digit)
		ev.Add("DTMF-Duration", strconv.Itoa(e.Duration))
		ev.Add("DTMF-Source", e.Source)
		s.publish(ev)
	case scenario.EffTransfer:
		if e.App != "" {
			s.execute(ch, e.App, e.Data, func() { s.transferOnce(p, ch) })
			return
		}
		// uuid_transfer sends no CHANNEL_EXECUTE (blind_transfer capture).
		s.transferOnce(p, ch)
	case scenario.EffHangup:
		for _, k := range scenario.SortedKeys(e.Vars) {
			ch.setVar(k, e.Vars[k])
		}
		s.hangupStart(ch, e.Cause)
	case scenario.EffHangupComplete:
		if ch.hungup {
			s.hangupComplete(ch)
		}
	case scenario.EffReplace:
		// mod_sofia's attended transfer (src/mod/endpoints/mod_sofia/
		// sofia.c): when the replaced leg's recording_follow_transfer is
		// true, switch_core_media_bug_transfer_recordings moves its
		// recordings to the leg that replaces it, where they go on (same
		// file; no event says so).
		o := p.legs[e.Other]
		if v, _ := ch.getVar("recording_follow_transfer"); o == nil || o.hungup || !strings.EqualFold(v, "true") {
			return
		}
		for _, r := range ch.recordings {
			r.ch = o
			r.owners = append(r.owners, ownerSpan{ch: o, from: s.now})
			o.recordings = append(o.recordings, r)
		}
		ch.recordings = nil
	}
}

// unbridge ends the bridge a made with b: CHANNEL_UNBRIDGE on a with
// Bridge-A/B (switch_ivr_multi_threaded_bridge, line 1879 in the
// captures). When a is transferred or uuid_bridged in the same step, the
// event already shows it: a blind transfer's new destination and no
// Other-Leg (blind_transfer event 17), a uuid_bridge's new partner as
// Other-Leg (attended_transfer event 24, loopback event 27).
func (s *Server) unbridge(p *stepPlay, a, b *channel) {
	delete(a.bridged, b.uuid)
	delete(b.bridged, a.uuid)
	endPartner(a, b, s.now)
	endPartner(b, a, s.now)
	delete(a.made, b.uuid)
	a.unsetVar("bridge_to")
	if !a.hungup {
		a.unsetVar("signal_bond")
	}
	a.setVar("bridge_hangup_cause", "NORMAL_CLEARING")
	if _, ok := p.joins[a.leg]; ok && !a.hungup {
		s.joinOnce(p, a)
	} else if _, ok := p.transfers[a.leg]; ok && !a.hungup {
		s.transferOnce(p, a)
	}
	pre := []eslwire.Header{{Name: "Bridge-A-Unique-ID", Value: a.uuid}, {Name: "Bridge-B-Unique-ID", Value: b.uuid}}
	s.publish(s.channelEvent("CHANNEL_UNBRIDGE", a, "switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1879, pre, nil))
}

// joinOnce applies what a uuid_bridge does to ch before its bridge, once
// per step: the channel is transferred to its new partner (a caller
// profile of its own, Caller-Transfer-Source and transfer_history
// "<epoch>:<uuid>:uuid_br:<partner uuid>", signal_bond and bridge_uuid the
// partner, Other-Leg the partner with Other-Type originatee on the
// bridging side and originator on the other), as in the attended_transfer
// capture (events 24 and 26).
func (s *Server) joinOnce(p *stepPlay, ch *channel) {
	j, ok := p.joins[ch.leg]
	o := p.legs[j.partner]
	if !ok || o == nil || p.done[ch.leg] {
		return
	}
	p.done[ch.leg] = true
	ch.other, ch.otherType = o, "originator"
	if j.a {
		ch.otherType = "originatee"
		ch.setVar("uuid_bridge", o.uuid)
	}
	s.newProfile(ch, "uuid_br:"+o.uuid)
	ch.setVar("bridge_channel", o.name)
	ch.setVar("bridge_uuid", o.uuid)
	ch.setVar("signal_bond", o.uuid)
}

// transferOnce applies a blind transfer (uuid_transfer or the transfer
// application: switch_ivr_session_transfer) to ch, once per step: a new
// caller profile with the new destination, Caller-RDNIS the old one,
// Caller-Transfer-Source and transfer_history
// "<epoch>:<uuid>:bl_xfer:<dest>/<context>/XML", no Other-Leg until its
// next bridge (blind_transfer capture, event 17 on).
func (s *Server) transferOnce(p *stepPlay, ch *channel) {
	e, ok := p.transfers[ch.leg]
	if !ok || p.done[ch.leg] {
		return
	}
	p.done[ch.leg] = true
	ch.rdnis = ch.dest
	ch.dest = e.Dest
	s.newProfile(ch, "bl_xfer:"+e.Dest+"/"+ch.context+"/XML")
	ch.other, ch.otherType = nil, ""
	ch.unsetVar("signal_bond")
	ch.unsetVar("bridge_to")
}

// newProfile gives ch a new caller profile for a transfer described by
// what ("bl_xfer:..." or "uuid_br:...").
func (s *Server) newProfile(ch *channel, what string) {
	ch.profile++
	ch.transferUS = s.usec()
	ch.transferSource = strconv.FormatInt(s.wall().Unix(), 10) + ":" + newUUID() + ":" + what
	ch.setVar("transfer_history", ch.transferSource)
	ch.setVar("transfer_source", ch.transferSource)
}

// loopbackSkip are the variables of a loopback -a half the -b half does
// not get a copy of: its identity and origination variables (compared
// at CHANNEL_CREATE in the loopback_between_accounts and late_vars_bridge
// captures).
var loopbackSkip = map[string]bool{
	"direction": true, "is_outbound": true, "uuid": true, "session_id": true, "channel_name": true, "call_uuid": true,
	"originator": true, "originating_leg_uuid": true, "originator_codec": true, "signal_bond": true,
	"loopback_from_uuid": true, "originate_endpoint": true, "originate_early_media": true, "max_forwards": true,
	"switch_m_sdp": true, "other_loopback_leg_uuid": true, "loopback_leg": true, "other_loopback_from_uuid": true,
	"read_codec": true, "read_rate": true, "write_codec": true, "write_rate": true,
}

// createLeg creates the channel of l: CHANNEL_CREATE. Callers hold s.mu.
func (s *Server) createLeg(call *scenario.Call, legs map[string]*channel, l *scenario.Leg) {
	s.sessions++
	ch := &channel{
		uuid: l.UUID, callID: call.ID, call: call, leg: l.Name, name: l.ChannelName, direction: l.Direction,
		cidName: l.CallerIDName, cidNumber: l.CallerIDNumber, dest: l.DestinationNumber, context: l.Context,
		callUUID: l.UUID, bridged: map[string]*channel{}, made: map[string]*channel{}, source: "mod_sofia",
		session: s.sessions, profile: 1, createdUS: s.usec(),
	}
	if l.Parent != "" {
		if p := legs[l.Parent]; p != nil {
			ch.parent = p
			ch.other = p
			ch.otherType = "originator"
			ch.callUUID = p.uuid
		}
	}
	// The halves of a loopback (mod_loopback): the -a half is the leg
	// the caller's bridge originated, the -b half (loopback_of) runs the
	// dialplan. Both name each other from their CHANNEL_CREATE on
	// (loopback_between_accounts capture, events 9 and 10).
	var half *channel // the -a half, when l is the -b half
	bUUID := ""
	if l.LoopbackOf != "" {
		half = legs[l.LoopbackOf]
		ch.source = "mod_loopback"
	}
	for _, o := range call.Legs {
		if o.LoopbackOf == l.Name {
			bUUID = o.UUID
			ch.source = "mod_loopback"
		}
	}
	ch.setVar("direction", ch.direction)
	if ch.direction == "outbound" {
		ch.setVar("is_outbound", "true")
	}
	ch.setVar("uuid", ch.uuid)
	ch.setVar("session_id", strconv.Itoa(ch.session))
	ch.setVar("channel_name", ch.name)
	ch.setVar("read_codec", "PCMU")
	ch.setVar("read_rate", "8000")
	ch.setVar("write_codec", "PCMU")
	ch.setVar("write_rate", "8000")
	if ch.parent != nil {
		ch.setVar("originator_codec", "PCMU@8000h@20i")
		ch.setVar("originator", ch.parent.uuid)
		ch.setVar("signal_bond", ch.parent.uuid)
		ch.setVar("originating_leg_uuid", ch.parent.uuid)
		if bUUID != "" {
			ch.setVar("loopback_from_uuid", ch.parent.uuid)
		}
	}
	ch.setVar("call_uuid", ch.callUUID)
	if bUUID != "" {
		ch.setVar("other_loopback_leg_uuid", bUUID)
		ch.setVar("loopback_leg", "A")
	}
	if half != nil {
		for _, v := range half.vars {
			if !loopbackSkip[v.Name] {
				ch.setVar(v.Name, v.Value)
			}
		}
		ch.setVar("other_loopback_leg_uuid", half.uuid)
		if half.parent != nil {
			ch.setVar("other_loopback_from_uuid", half.parent.uuid)
		}
		ch.setVar("loopback_leg", "B")
	}
	for _, k := range scenario.SortedKeys(l.Variables) {
		ch.setVar(k, l.Variables[k])
	}
	if half != nil {
		ch.loopPeer, half.loopPeer = half, ch
	}
	ch.voice = voiceFor(ch.uuid, legs)
	legs[l.Name] = ch
	s.channels[ch.uuid] = ch
	s.publish(s.channelEvent("CHANNEL_CREATE", ch, "switch_core_state_machine.c", "switch_core_session_run", 626, nil, nil))
}

// hangupStart hangs up ch: CHANNEL_HANGUP. Callers hold s.mu.
func (s *Server) hangupStart(ch *channel, cause string) {
	ch.hungup = true
	ch.cause = cause
	ch.hangupUS = s.usec()
	ch.setVar("hangup_cause", cause)
	s.publish(s.channelEvent("CHANNEL_HANGUP", ch, "switch_channel.c", "switch_channel_perform_hangup", 3445, nil, nil))
}

// hangupComplete completes ch's hangup: one RECORD_STOP per running
// recording, CHANNEL_HANGUP_COMPLETE; the leg is gone. Callers hold s.mu.
func (s *Server) hangupComplete(ch *channel) {
	for len(ch.recordings) > 0 {
		s.stopRecording(ch.recordings[0], causeHangup)
	}
	ch.completed = true
	pre := []eslwire.Header{{Name: "Hangup-Cause", Value: ch.cause}}
	s.publish(s.channelEvent("CHANNEL_HANGUP_COMPLETE", ch, "switch_core_state_machine.c", "switch_core_session_reporting_state", 943, pre, nil))
	delete(s.channels, ch.uuid)
}

// hangup hangs up ch at a client's request (uuid_kill) and the legs that
// go with it (scenario.HangupSet), as a scenario's hangup step does: per
// leg CHANNEL_HANGUP, CHANNEL_UNBRIDGE for each bridge it made, its
// RECORD_STOPs, CHANNEL_HANGUP_COMPLETE. Callers hold s.mu.
func (s *Server) hangup(ch *channel, cause string) {
	if ch.hungup {
		return
	}
	byName := map[string]*channel{}
	for _, c := range s.channels {
		if c.callID == ch.callID {
			byName[c.leg] = c
		}
	}
	up := func(n string) bool { c := byName[n]; return c != nil && !c.hungup }
	bridged := func(n string) []string {
		var out []string
		if c := byName[n]; c != nil {
			for _, o := range c.bridged {
				if o.callID == ch.callID {
					out = append(out, o.leg)
				}
			}
		}
		sortStrings(out)
		return out
	}
	names := []string{ch.leg}
	if ch.call != nil {
		names = scenario.HangupSet(ch.call, ch.leg, up, bridged)
	}
	p := &stepPlay{call: ch.call, legs: byName, done: map[string]bool{}}
	for i, n := range names {
		c := byName[n]
		if c == nil {
			continue
		}
		cs := cause
		if i > 0 && !c.answered && c.bridgedUS == 0 {
			cs = scenario.CauseOriginatorCancel
		}
		s.hangupStart(c, cs)
		for _, u := range sortedKeys(c.made) {
			s.unbridge(p, c, c.made[u])
		}
		s.hangupComplete(c)
	}
}
