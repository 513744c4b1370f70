package fakeswitch

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/recpol/recpol/runtime/eslwire"
	"github.com/recpol/recpol/scenario"
)

// channel is one live leg.
type channel struct {
	uuid      string
	callID    string
	call      *scenario.Call
	leg       string
	name      string
	direction string
	cidName   string
	cidNumber string
	dest      string
	context   string
	callUUID  string
	parent    *channel            // the leg that originated this one
	other     *channel            // Other-Leg: the originator, or the bridged leg
	otherType string              // "originator" or "originatee"
	bridged   map[string]*channel // legs bridged to this one
	made      map[string]*channel // of those, the bridges this leg made (it got the CHANNEL_BRIDGE)
	source    string              // Caller-Source: mod_sofia, mod_loopback
	vars      []eslwire.Header    // channel variables in the order they were set
	session   int
	profile   int

	ringing, early, answered, hungup, completed bool
	cause                                       string
	transferSource                              string
	rdnis                                       string // Caller-RDNIS: the destination before a blind transfer

	createdUS, answeredUS, progressUS, progressMediaUS, bridgedUS, hangupUS, transferUS int64
	answeredMS                                                                          int64 // virtual time of the answer

	recordings []*recording // running, in start order
	closing    atomic.Int32 // recording files being closed (file jobs)

	// What the leg's recordings hear (audio.go).
	voice         voice           // the leg's party
	partners      []partnerSpan   // every bridge of the leg, in order
	loopPeer      *channel        // the other half of a loopback pair
	announcements []*announcement // uuid_broadcast playbacks to the leg
}

func (ch *channel) getVar(name string) (string, bool) {
	for _, h := range ch.vars {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

func (ch *channel) setVar(name, value string) {
	for i := range ch.vars {
		if ch.vars[i].Name == name {
			ch.vars[i].Value = value
			return
		}
	}
	ch.vars = append(ch.vars, eslwire.Header{Name: name, Value: value})
}

func (ch *channel) unsetVar(name string) {
	for i := range ch.vars {
		if ch.vars[i].Name == name {
			ch.vars = append(ch.vars[:i], ch.vars[i+1:]...)
			return
		}
	}
}

// execute fires CHANNEL_EXECUTE for app, runs apply (the application's
// effect), then fires CHANNEL_EXECUTE_COMPLETE when apply is not nil.
func (s *Server) execute(ch *channel, app, data string, apply func()) {
	appUUID := newUUID()
	ch.setVar("current_application", app)
	if data != "" {
		ch.setVar("current_application_data", data)
	} else {
		ch.unsetVar("current_application_data")
	}
	trailer := []eslwire.Header{{Name: "Application", Value: app}}
	if data != "" {
		trailer = append(trailer, eslwire.Header{Name: "Application-Data", Value: data})
	}
	trailer = append(trailer, eslwire.Header{Name: "Application-UUID", Value: appUUID})
	s.publish(s.channelEvent("CHANNEL_EXECUTE", ch, "switch_core_session.c", "switch_core_session_exec", 2944, nil, trailer))
	if apply == nil {
		return
	}
	apply()
	done := append([]eslwire.Header{}, trailer[:len(trailer)-1]...)
	done = append(done, eslwire.Header{Name: "Application-Response", Value: "_none_"}, eslwire.Header{Name: "Application-UUID", Value: appUUID})
	s.publish(s.channelEvent("CHANNEL_EXECUTE_COMPLETE", ch, "switch_core_session.c", "switch_core_session_exec", 2988, nil, done))
}

// markEarly puts ch into early media. Callers hold s.mu.
func (s *Server) markEarly(ch *channel) {
	ch.early = true
	ch.progressMediaUS = s.usec()
}

// publishProgressMedia fires CHANNEL_PROGRESS_MEDIA for ch, as
// switch_channel_perform_mark_pre_answered (src/switch_channel.c) does.
func (s *Server) publishProgressMedia(ch *channel) {
	s.publish(s.channelEvent("CHANNEL_PROGRESS_MEDIA", ch, "switch_channel.c", "switch_channel_perform_mark_pre_answered", 3741, nil, nil))
}

// endPartner closes the open bridge span of ch with o at now.
func endPartner(ch, o *channel, now int64) {
	for i := range ch.partners {
		if p := &ch.partners[i]; p.partner == o && p.to < 0 {
			p.to = now
		}
	}
}

func (s *Server) answer(ch *channel) {
	if ch.answered || ch.hungup {
		return
	}
	ch.answered = true
	ch.answeredUS = s.usec()
	ch.answeredMS = s.now
	ch.setVar("endpoint_disposition", "ANSWER")
	s.publish(s.channelEvent("CHANNEL_ANSWER", ch, "switch_channel.c", "switch_channel_perform_mark_answered", 3846, nil, nil))
}

// bridge bridges a (the caller's leg, which gets CHANNEL_BRIDGE) with b.
func (s *Server) bridge(a, b *channel) {
	a.bridged[b.uuid] = b
	b.bridged[a.uuid] = a
	a.partners = append(a.partners, partnerSpan{partner: b, from: s.now, to: -1})
	b.partners = append(b.partners, partnerSpan{partner: a, from: s.now, to: -1})
	a.made[b.uuid] = b
	a.other, a.otherType = b, "originatee"
	if b.other == nil {
		b.other, b.otherType = a, "originator"
	}
	now := s.usec()
	a.bridgedUS, b.bridgedUS = now, now
	a.setVar("bridge_to", b.uuid)
	a.setVar("last_bridge_to", b.uuid)
	a.setVar("bridge_channel", b.name)
	a.setVar("bridge_uuid", b.uuid)
	a.setVar("signal_bond", b.uuid)
	b.setVar("last_bridge_to", a.uuid)
	b.setVar("bridge_channel", a.name)
	b.setVar("bridge_uuid", a.uuid)
	pre := []eslwire.Header{{Name: "Bridge-A-Unique-ID", Value: a.uuid}, {Name: "Bridge-B-Unique-ID", Value: b.uuid}}
	s.publish(s.channelEvent("CHANNEL_BRIDGE", a, "switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1689, pre, nil))
}

func sortStrings(a []string) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// noVars leaves channel variables out of an event, as FreeSWITCH does for
// DTMF without verbose_events.
const noVars = false

// channelEvent builds a channel event: leading headers, pre, the channel
// data (state, caller profile, other leg, variables), then trailer.
func (s *Server) channelEvent(name string, ch *channel, file, fn string, line int, pre, trailer []eslwire.Header, withVars ...bool) *eslwire.Event {
	// Room for every header, so that the event is allocated once.
	n := eventLeading + len(pre) + channelHeaders + profileHeaders + len(trailer) + extraHeaders
	if ch.other != nil {
		n += 1 + profileHeaders
	}
	if len(withVars) == 0 || withVars[0] {
		n += len(ch.vars)
	}
	ev := s.newEventSized(name, file, fn, line, n)
	ev.Headers = append(ev.Headers, pre...)
	state, num := "CS_EXECUTE", 4
	if ch.parent != nil {
		state, num = "CS_CONSUME_MEDIA", 7
	}
	callState := "DOWN"
	if ch.ringing {
		callState = "RINGING"
	}
	answerState := "ringing"
	if ch.early {
		callState, answerState = "EARLY", "early"
	}
	if ch.answered {
		callState, answerState = "ACTIVE", "answered"
	}
	switch {
	case name == "CHANNEL_CREATE":
		state, num = "CS_INIT", 2
	case name == "CHANNEL_HANGUP_COMPLETE":
		state, num, callState = "CS_REPORTING", 11, "HANGUP"
	case name == "CHANNEL_HANGUP":
		num = 10
	case ch.hungup:
		state, num = "CS_HANGUP", 10
	}
	if ch.hungup {
		answerState = "hangup"
	}
	ev.Add("Channel-State", state)
	ev.Add("Channel-Call-State", callState)
	ev.Add("Channel-State-Number", strconv.Itoa(num))
	ev.Add("Channel-Name", ch.name)
	ev.Add("Unique-ID", ch.uuid)
	ev.Add("Call-Direction", ch.direction)
	ev.Add("Presence-Call-Direction", ch.direction)
	ev.Add("Channel-HIT-Dialplan", strconv.FormatBool(ch.parent == nil))
	ev.Add("Channel-Call-UUID", ch.callUUID)
	ev.Add("Answer-State", answerState)
	if ch.hungup {
		ev.Add("Hangup-Cause", ch.cause)
	}
	ev.Add("Channel-Read-Codec-Name", "PCMU")
	ev.Add("Channel-Read-Codec-Rate", "8000")
	ev.Add("Channel-Read-Codec-Bit-Rate", "64000")
	ev.Add("Channel-Write-Codec-Name", "PCMU")
	ev.Add("Channel-Write-Codec-Rate", "8000")
	ev.Add("Channel-Write-Codec-Bit-Rate", "64000")
	s.addProfile(ev, &callerNames, ch, true)
	if ch.other != nil {
		ev.Add("Other-Type", ch.otherType)
		s.addProfile(ev, &otherLegNames, ch.other, false)
	}
	if len(withVars) == 0 || withVars[0] {
		for _, v := range ch.vars {
			ev.Add(s.varHeader(v.Name), v.Value)
		}
	}
	ev.Headers = append(ev.Headers, trailer...)
	return ev
}

// Header counts of a channel event, for the size of its header slice:
// newEvent's leading headers, channelEvent's own, a caller profile's (at
// most), and room for what a caller adds after (DTMF-*).
const (
	eventLeading   = 13
	channelHeaders = 17
	profileHeaders = 29
	extraHeaders   = 4
)

// profileNames are the header names of a caller profile under one prefix
// ("Caller-", "Other-Leg-"), built once rather than per event.
type profileNames struct {
	direction, logicalDirection, dialplan, callerIDName, callerIDNumber, origCallerIDNumber, ani,
	destinationNumber, uniqueID, source, transferSource, context, rdnis, channelName, profileIndex,
	profileCreated, created, answered, progress, progressMedia, hangup, transfer, resurrect, bridged,
	lastHold, holdAccum, screenBit, hideName, hideNumber string
}

func newProfileNames(p string) profileNames {
	return profileNames{
		direction: p + "Direction", logicalDirection: p + "Logical-Direction", dialplan: p + "Dialplan",
		callerIDName: p + "Caller-ID-Name", callerIDNumber: p + "Caller-ID-Number", origCallerIDNumber: p + "Orig-Caller-ID-Number",
		ani: p + "ANI", destinationNumber: p + "Destination-Number", uniqueID: p + "Unique-ID", source: p + "Source",
		transferSource: p + "Transfer-Source", context: p + "Context", rdnis: p + "RDNIS", channelName: p + "Channel-Name",
		profileIndex: p + "Profile-Index", profileCreated: p + "Profile-Created-Time", created: p + "Channel-Created-Time",
		answered: p + "Channel-Answered-Time", progress: p + "Channel-Progress-Time", progressMedia: p + "Channel-Progress-Media-Time",
		hangup: p + "Channel-Hangup-Time", transfer: p + "Channel-Transfer-Time", resurrect: p + "Channel-Resurrect-Time",
		bridged: p + "Channel-Bridged-Time", lastHold: p + "Channel-Last-Hold", holdAccum: p + "Channel-Hold-Accum",
		screenBit: p + "Screen-Bit", hideName: p + "Privacy-Hide-Name", hideNumber: p + "Privacy-Hide-Number",
	}
}

var (
	callerNames   = newProfileNames("Caller-")
	otherLegNames = newProfileNames("Other-Leg-")
)

// varHeader returns "variable_"+name, the header of a channel variable,
// from a cache of the names seen (bounded: a run that makes up names
// forever gets them concatenated). Callers hold s.mu.
func (s *Server) varHeader(name string) string {
	if h, ok := s.varHeaders[name]; ok {
		return h
	}
	h := "variable_" + name
	if len(s.varHeaders) < maxVarHeaders {
		if s.varHeaders == nil {
			s.varHeaders = map[string]string{}
		}
		s.varHeaders[name] = h
	}
	return h
}

// maxVarHeaders bounds the cache of varHeader.
const maxVarHeaders = 4096

func (s *Server) addProfile(ev *eslwire.Event, p *profileNames, ch *channel, self bool) {
	ev.Add(p.direction, ch.direction)
	ev.Add(p.logicalDirection, ch.direction)
	ev.Add(p.dialplan, "XML")
	if ch.cidName != "" {
		ev.Add(p.callerIDName, ch.cidName)
	}
	ev.Add(p.callerIDNumber, ch.cidNumber)
	ev.Add(p.origCallerIDNumber, ch.cidNumber)
	ev.Add(p.ani, ch.cidNumber)
	ev.Add(p.destinationNumber, ch.dest)
	ev.Add(p.uniqueID, ch.uuid)
	ev.Add(p.source, ch.source)
	if ch.transferSource != "" {
		ev.Add(p.transferSource, ch.transferSource)
	}
	ev.Add(p.context, ch.context)
	if ch.rdnis != "" {
		ev.Add(p.rdnis, ch.rdnis)
	}
	ev.Add(p.channelName, ch.name)
	if self {
		ev.Add(p.profileIndex, strconv.Itoa(ch.profile))
	}
	created := strconv.FormatInt(ch.createdUS, 10)
	ev.Add(p.profileCreated, created)
	ev.Add(p.created, created)
	ev.Add(p.answered, strconv.FormatInt(ch.answeredUS, 10))
	ev.Add(p.progress, strconv.FormatInt(ch.progressUS, 10))
	ev.Add(p.progressMedia, strconv.FormatInt(ch.progressMediaUS, 10))
	ev.Add(p.hangup, strconv.FormatInt(ch.hangupUS, 10))
	ev.Add(p.transfer, strconv.FormatInt(ch.transferUS, 10))
	ev.Add(p.resurrect, "0")
	ev.Add(p.bridged, strconv.FormatInt(ch.bridgedUS, 10))
	ev.Add(p.lastHold, "0")
	ev.Add(p.holdAccum, "0")
	ev.Add(p.screenBit, "true")
	ev.Add(p.hideName, "false")
	ev.Add(p.hideNumber, "false")
}

// heartbeat fires a HEARTBEAT event. Callers hold s.mu.
func (s *Server) heartbeat() {
	ev := s.newEvent("HEARTBEAT", "switch_core.c", "send_heartbeat", 95)
	up := time.Duration(s.now) * time.Millisecond
	ev.Add("Event-Info", "System Ready")
	ev.Add("Up-Time", uptime(up))
	ev.Add("FreeSWITCH-Version", Version)
	ev.Add("Uptime-msec", strconv.FormatInt(s.now, 10))
	ev.Add("Session-Count", strconv.Itoa(len(s.channels)))
	ev.Add("Max-Sessions", "1000")
	ev.Add("Session-Per-Sec", "30")
	ev.Add("Session-Per-Sec-Last", "0")
	ev.Add("Session-Per-Sec-Max", "0")
	ev.Add("Session-Per-Sec-FiveMin", "0")
	ev.Add("Session-Since-Startup", strconv.Itoa(s.sessions))
	ev.Add("Session-Peak-Max", "0")
	ev.Add("Session-Peak-FiveMin", "0")
	ev.Add("Idle-CPU", "100.000000")
	s.publish(ev)
}
