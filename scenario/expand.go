package scenario

import "sort"

// Effects expands the call's steps into primitive effects in order: what
// every step does to the legs, with all the semantics of the call shapes
// (who hangs up on a transfer, what a bow-out does). It is deterministic
// and pure (the call is not changed; defaults that Normalize would fill in
// are applied); each effect has AtMS = c.StartMS + step.AtMS and Step =
// the step's index. A step that is not valid at its point of the call (see
// Scenario.Validate) expands into nothing.
//
// The expansion of each step:
//
//   - create, set, execute, ring, media, answer, bridge: one EffCreate,
//     EffSet (all the step's variables), EffExecute, EffRing, EffMedia,
//     EffAnswer, EffBridge (Leg = the step's leg, Other = the other).
//   - dtmf: one EffDTMF per digit.
//   - hangup: for each leg of HangupSet, in its order: EffHangup (the
//     step's cause for the step's leg and for answered or bridged
//     followers, ORIGINATOR_CANCEL for a follower never answered nor
//     bridged: a cancelled originate), then EffUnbridge(leg, partner) for
//     each bridge the leg made (it got the CHANNEL_BRIDGE), then
//     EffHangupComplete.
//   - transfer (blind_transfer capture): when the leg is bridged, each
//     bridge partner hangs up with NORMAL_CLEARING together with what it
//     originated (EffHangup, EffUnbridge of the bridges it made,
//     EffHangupComplete per leg), then EffUnbridge for the transferred
//     leg's bridge, then EffTransfer (App "transfer" and Data = the
//     destination when via is "application", App empty when via is "api").
//   - uuid_bridge leg other (attended_transfer capture): for leg, then
//     other, each third leg bridged to it hangs up (as for a transfer),
//     then EffUnbridge of that bridge; then EffExecute "uuid_bridge" on
//     leg (Data = other's uuid) and on other (Data = leg's uuid), then
//     EffBridge(leg, other).
//   - park: EffExecute "park", EffPark.
//   - intercept leg other (switch_ivr_intercept_session): EffExecute
//     "intercept" "-bleg <other's uuid>" on leg, EffAnswer of leg and of
//     other's parent when not answered yet, other hangs up with
//     PICKED_OFF (with what it originated), the parent's other ringing
//     legs with ORIGINATOR_CANCEL, then uuid_bridge of leg and the parent
//     as above.
//   - bowout on the -a half of a loopback (loopback_between_accounts
//     capture): EffHangup of the -a half and of the -b half
//     (NORMAL_CLEARING, Vars loopback_hangup_cause=bridge and
//     loopback_bowout_other_uuid = the outer leg on its side),
//     EffHangupComplete of the -a half, EffUnbridge of the -a half's and
//     of the -b half's bridges, EffHangupComplete of the -b half, then
//     EffExecute "uuid_bridge" on the outer legs and EffBridge(outer A,
//     outer B).
//   - refer leg other (mod_sofia's attended transfer, sofia.c): leg and
//     other must each be bridged to exactly one party, A and D:
//     EffReplace(leg, A), EffReplace(other, D), then uuid_bridge A D as
//     above (leg and other hang up as the third legs).
func (c *Call) Effects() []Effect {
	x := newExpander(c, nil)
	for i := range c.Steps {
		x.step(i)
	}
	return x.out
}

// Transfer modes, the values of Step.Via.
const (
	// ViaApplication: the transfer application runs on the leg
	// (CHANNEL_EXECUTE transfer). The default.
	ViaApplication = "application"
	// ViaAPI: uuid_transfer from outside (a SIP REFER blind transfer):
	// no CHANNEL_EXECUTE.
	ViaAPI = "api"
)

// Causes of the hangups an expansion makes.
const (
	// CauseOriginatorCancel: a leg being originated whose caller went
	// away (a cancelled originate).
	CauseOriginatorCancel = "ORIGINATOR_CANCEL"
	// CausePickedOff: the ringing leg an intercept picked up
	// (SWITCH_CAUSE_PICKED_OFF in switch_ivr_intercept_session).
	CausePickedOff = "PICKED_OFF"
)

// legStatus is a leg's state while a call's steps are expanded.
type legStatus struct {
	created, answered, early, hungup, everBridged bool
}

// liveBridge is a bridge in force: a got the CHANNEL_BRIDGE
// (Bridge-A-Unique-ID), b is Bridge-B-Unique-ID.
type liveBridge struct{ a, b string }

// expander walks a call's steps, keeping each leg's state, and expands
// each step into effects. check uses it to validate (errf reports a
// problem with a field of the current step); Effects with errf nil.
type expander struct {
	c       *Call
	legs    map[string]*legStatus
	bridges []liveBridge // in force, in the order they were made
	out     []Effect
	idx     int
	at      int64
	errf    func(field, format string, args ...any)
}

func newExpander(c *Call, errf func(field, format string, args ...any)) *expander {
	x := &expander{c: c, legs: map[string]*legStatus{}, errf: errf}
	for _, l := range c.Legs {
		x.legs[l.Name] = &legStatus{}
	}
	return x
}

func (x *expander) fail(field, format string, args ...any) bool {
	if x.errf != nil {
		x.errf(field, format, args...)
	}
	return false
}

func (x *expander) emit(e Effect) {
	e.AtMS = x.at
	e.Step = x.idx
	x.out = append(x.out, e)
}

func (x *expander) up(n string) bool {
	st := x.legs[n]
	return st != nil && st.created && !st.hungup
}

func (x *expander) uuid(n string) string {
	if l := x.c.Leg(n); l != nil && l.UUID != "" {
		return l.UUID
	}
	return LegUUID(x.c.ID, n)
}

// partners lists the legs bridged to n, sorted.
func (x *expander) partners(n string) []string {
	var out []string
	for _, b := range x.bridges {
		switch n {
		case b.a:
			out = append(out, b.b)
		case b.b:
			out = append(out, b.a)
		}
	}
	sort.Strings(out)
	return out
}

func (x *expander) bridged(a, b string) bool {
	for _, br := range x.bridges {
		if (br.a == a && br.b == b) || (br.a == b && br.b == a) {
			return true
		}
	}
	return false
}

// unbridge emits EffUnbridge for each bridge in force that keep selects,
// in the order they were made, and forgets them.
func (x *expander) unbridge(keep func(liveBridge) bool) {
	kept := x.bridges[:0]
	for _, b := range x.bridges {
		if keep(b) {
			x.emit(Effect{Kind: EffUnbridge, Leg: b.a, Other: b.b})
			continue
		}
		kept = append(kept, b)
	}
	x.bridges = kept
}

// hangupLegs hangs up names in order: EffHangup, EffUnbridge of the
// bridges the leg made, EffHangupComplete. Followers (every leg but the
// first) never answered nor bridged hang up with ORIGINATOR_CANCEL.
func (x *expander) hangupLegs(names []string, cause string) {
	for i, n := range names {
		st := x.legs[n]
		cs := cause
		if i > 0 && !st.answered && !st.everBridged {
			cs = CauseOriginatorCancel
		}
		st.hungup = true
		x.emit(Effect{Kind: EffHangup, Leg: n, Cause: cs})
		x.unbridge(func(b liveBridge) bool { return b.a == n })
		x.emit(Effect{Kind: EffHangupComplete, Leg: n})
	}
}

// hangupSet is HangupSet over the expander's state, leaving out the legs
// of spare (they neither hang up nor carry the hangup on).
func (x *expander) hangupSet(leg string, spare ...string) []string {
	spared := func(n string) bool {
		for _, s := range spare {
			if s == n {
				return true
			}
		}
		return false
	}
	up := func(n string) bool { return x.up(n) && !spared(n) }
	bridged := func(n string) []string {
		var out []string
		for _, p := range x.partners(n) {
			if !spared(p) {
				out = append(out, p)
			}
		}
		return out
	}
	return HangupSet(x.c, leg, up, bridged)
}

// dropPartners hangs up every leg bridged to leg except the spared ones,
// with what each originated, then ends the bridges of leg to them.
func (x *expander) dropPartners(leg string, spare ...string) {
	for _, p := range x.partners(leg) {
		if !x.up(p) || contains(spare, p) {
			continue
		}
		x.hangupLegs(x.hangupSet(p, append([]string{leg}, spare...)...), DefaultCause)
	}
	x.unbridge(func(b liveBridge) bool {
		return (b.a == leg || b.b == leg) && (x.legs[b.a].hungup || x.legs[b.b].hungup)
	})
}

// uuidBridge emits the events of uuid_bridge a b once a and b are free.
func (x *expander) uuidBridge(a, b string) {
	x.emit(Effect{Kind: EffExecute, Leg: a, App: "uuid_bridge", Data: x.uuid(b)})
	x.emit(Effect{Kind: EffExecute, Leg: b, App: "uuid_bridge", Data: x.uuid(a)})
	x.addBridge(a, b)
}

func (x *expander) addBridge(a, b string) {
	x.emit(Effect{Kind: EffBridge, Leg: a, Other: b})
	x.bridges = append(x.bridges, liveBridge{a, b})
	x.legs[a].everBridged = true
	x.legs[b].everBridged = true
}

// loopbackB returns the -b half of the loopback whose -a half is a, or "".
func (x *expander) loopbackB(a string) string {
	for _, l := range x.c.Legs {
		if l.LoopbackOf == a && l.Name != a {
			return l.Name
		}
	}
	return ""
}

// step checks and expands step i.
func (x *expander) step(i int) {
	s := &x.c.Steps[i]
	x.idx, x.at = i, x.c.StartMS+s.AtMS
	st := x.legs[s.Leg]
	if st == nil {
		x.fail("leg", "unknown leg %q", s.Leg)
		return
	}
	if s.Do != DoCreate && !st.created {
		x.fail("do", "%s on leg %q before it is created", s.Do, s.Leg)
		return
	}
	if st.hungup {
		x.fail("do", "%s on leg %q after it hung up", s.Do, s.Leg)
		return
	}
	switch s.Do {
	case DoCreate:
		if st.created {
			x.fail("do", "leg %q created twice", s.Leg)
			return
		}
		l := x.c.Leg(s.Leg)
		if p := l.Parent; p != "" && x.legs[p] != nil && !x.legs[p].created {
			x.fail("do", "leg %q created before its parent %q", s.Leg, p)
		}
		if a := l.LoopbackOf; a != "" && x.legs[a] != nil && !x.legs[a].created {
			x.fail("do", "loopback -b half %q created before its -a half %q", s.Leg, a)
		}
		st.created = true
		x.emit(Effect{Kind: EffCreate, Leg: s.Leg})
	case DoSet:
		if len(s.Variables) == 0 {
			x.fail("variables", "a set step needs variables")
			return
		}
		x.emit(Effect{Kind: EffSet, Leg: s.Leg, Vars: cloneVars(s.Variables)})
	case DoExecute:
		if s.Application == "" || !varRe.MatchString(s.Application) {
			x.fail("application", "an execute step needs an application name")
			return
		}
		x.emit(Effect{Kind: EffExecute, Leg: s.Leg, App: s.Application, Data: s.Data})
	case DoRing:
		if st.answered {
			x.fail("do", "leg %q rings after it was answered", s.Leg)
			return
		}
		x.emit(Effect{Kind: EffRing, Leg: s.Leg})
	case DoMedia:
		switch {
		case st.answered:
			x.fail("do", "leg %q has early media after it was answered", s.Leg)
			return
		case st.early:
			x.fail("do", "leg %q has early media twice", s.Leg)
			return
		}
		st.early = true
		x.emit(Effect{Kind: EffMedia, Leg: s.Leg})
	case DoAnswer:
		if st.answered {
			x.fail("do", "leg %q answered twice", s.Leg)
			return
		}
		st.answered = true
		x.emit(Effect{Kind: EffAnswer, Leg: s.Leg})
	case DoBridge:
		if !x.checkOther(s, "a bridge step") {
			return
		}
		x.addBridge(s.Leg, s.Other)
	case DoDTMF:
		if !digitsRe.MatchString(s.Digits) {
			x.fail("digits", "digits %q must be 0-9, *, # or A-D", s.Digits)
			return
		}
		src, dur := s.Source, s.Duration
		if src == "" {
			src = DefaultDTMFSource
		}
		if dur == 0 {
			dur = DefaultDTMFDuration
		}
		for _, d := range s.Digits {
			x.emit(Effect{Kind: EffDTMF, Leg: s.Leg, Digit: string(d), Source: src, Duration: dur})
		}
	case DoTransfer:
		if s.DestinationNumber == "" || !tokenRe.MatchString(s.DestinationNumber) {
			x.fail("destination_number", "a transfer step needs a destination number without spaces")
			return
		}
		e := Effect{Kind: EffTransfer, Leg: s.Leg, Dest: s.DestinationNumber}
		switch s.Via {
		case "", ViaApplication:
			e.App, e.Data = "transfer", s.DestinationNumber
		case ViaAPI:
		default:
			x.fail("via", "via must be %q or %q, not %q", ViaApplication, ViaAPI, s.Via)
			return
		}
		x.dropPartners(s.Leg)
		x.emit(e)
	case DoHangup:
		cause := s.Cause
		if cause == "" {
			cause = DefaultCause
		}
		x.hangupLegs(x.hangupSet(s.Leg), cause)
	case DoUUIDBridge:
		if !x.checkOther(s, "a uuid_bridge step") {
			return
		}
		for _, n := range []string{s.Leg, s.Other} {
			if !x.legs[n].answered {
				x.fail("do", "uuid_bridge of leg %q before it is answered", n)
				return
			}
		}
		x.dropPartners(s.Leg, s.Other)
		x.dropPartners(s.Other, s.Leg)
		x.uuidBridge(s.Leg, s.Other)
	case DoPark:
		if p := x.partners(s.Leg); len(p) > 0 {
			x.fail("do", "park of leg %q while it is bridged to %q", s.Leg, p[0])
			return
		}
		x.emit(Effect{Kind: EffExecute, Leg: s.Leg, App: "park"})
		x.emit(Effect{Kind: EffPark, Leg: s.Leg})
	case DoIntercept:
		x.intercept(s)
	case DoBowout:
		x.bowout(s)
	case DoRefer:
		x.refer(s)
	default:
		x.fail("do", "unknown action %q", s.Do)
	}
}

// checkOther checks the other leg of a two-leg step.
func (x *expander) checkOther(s *Step, what string) bool {
	o := x.legs[s.Other]
	switch {
	case s.Other == "":
		return x.fail("other", "%s needs the other leg", what)
	case o == nil:
		return x.fail("other", "unknown leg %q", s.Other)
	case s.Other == s.Leg:
		return x.fail("other", "a leg cannot be bridged to itself")
	case !o.created || o.hungup:
		return x.fail("other", "leg %q is not up", s.Other)
	case x.bridged(s.Leg, s.Other):
		return x.fail("other", "legs %q and %q are already bridged", s.Leg, s.Other)
	}
	return true
}

// intercept expands a pickup: leg intercepts the ringing leg other, as
// switch_ivr_intercept_session (src/switch_ivr_bridge.c, signalwire/
// freeswitch) does for "intercept -bleg <other>" (mod_dptools'
// intercept_function): the partner of other (its parent, the caller) is
// found; switch_channel_answer(leg); the caller is answered unless it
// was; leg and the caller are uuid_bridged (switch_ivr_uuid_bridge, the
// events of the attended_transfer capture); other is hung up with
// SWITCH_CAUSE_PICKED_OFF. The caller's originate ends with it, so its
// other ringing legs are cancelled (not captured: ORIGINATOR_CANCEL, as
// for any cancelled originate here).
func (x *expander) intercept(s *Step) {
	if !x.checkOther(s, "an intercept step") {
		return
	}
	o := x.legs[s.Other]
	parent := x.c.Leg(s.Other).Parent
	switch {
	case o.answered:
		x.fail("other", "leg %q was answered: only a ringing leg can be intercepted", s.Other)
		return
	case parent == "":
		x.fail("other", "leg %q has no parent: only a leg another leg originated can be intercepted", s.Other)
		return
	case !x.up(parent):
		x.fail("other", "the parent %q of leg %q is not up", parent, s.Other)
		return
	case parent == s.Leg:
		x.fail("other", "leg %q cannot intercept a leg it originated", s.Leg)
		return
	case len(x.partners(s.Leg)) > 0:
		x.fail("do", "leg %q intercepts while bridged", s.Leg)
		return
	case len(x.partners(parent)) > 0:
		x.fail("other", "the parent %q of leg %q is bridged", parent, s.Other)
		return
	}
	x.emit(Effect{Kind: EffExecute, Leg: s.Leg, App: "intercept", Data: "-bleg " + x.uuid(s.Other)})
	for _, n := range []string{s.Leg, parent} {
		if !x.legs[n].answered {
			x.legs[n].answered = true
			x.emit(Effect{Kind: EffAnswer, Leg: n})
		}
	}
	x.hangupLegs(x.hangupSet(s.Other, s.Leg, parent), CausePickedOff)
	for _, l := range x.c.Legs {
		st := x.legs[l.Name]
		if l.Parent == parent && x.up(l.Name) && !st.answered && !st.everBridged {
			x.hangupLegs(x.hangupSet(l.Name, s.Leg, parent), CauseOriginatorCancel)
		}
	}
	x.uuidBridge(s.Leg, parent)
}

// bowout expands the bow-out of a loopback pair, leg being its -a half,
// in the order of call-shapes/loopback_between_accounts_rx_raw.txt
// (events 24-32).
func (x *expander) bowout(s *Step) {
	a := s.Leg
	b := x.loopbackB(a)
	if b == "" {
		x.fail("leg", "leg %q is not the -a half of a loopback (no leg has loopback_of %q)", a, a)
		return
	}
	if !x.up(b) {
		x.fail("leg", "the -b half %q of loopback %q is not up", b, a)
		return
	}
	for _, n := range []string{a, b} {
		if !x.legs[n].answered {
			x.fail("leg", "bowout of loopback half %q before it is answered", n)
			return
		}
	}
	outerA := ""
	for _, p := range x.partners(a) {
		if p != b {
			outerA = p
		}
	}
	if outerA == "" {
		outerA = x.c.Leg(a).Parent
	}
	outerB := ""
	for _, p := range x.partners(b) {
		if p != a {
			outerB = p
		}
	}
	switch {
	case outerA == "" || !x.up(outerA):
		x.fail("leg", "the -a half %q is not bridged to an outer leg", a)
		return
	case outerB == "" || !x.up(outerB):
		x.fail("leg", "the -b half %q is not bridged to an outer leg", b)
		return
	case len(x.partners(a)) > 1 || len(x.partners(b)) > 1:
		x.fail("leg", "a loopback half is bridged to more than one leg")
		return
	case x.bridged(outerA, outerB) || outerA == outerB:
		x.fail("leg", "the outer legs %q and %q are already bridged", outerA, outerB)
		return
	}
	bowVars := func(other string) map[string]string {
		return map[string]string{"loopback_hangup_cause": "bridge", "loopback_bowout_other_uuid": x.uuid(other)}
	}
	x.legs[a].hungup, x.legs[b].hungup = true, true
	x.emit(Effect{Kind: EffHangup, Leg: a, Cause: DefaultCause, Vars: bowVars(outerA)})
	x.emit(Effect{Kind: EffHangup, Leg: b, Cause: DefaultCause, Vars: bowVars(outerB)})
	x.emit(Effect{Kind: EffHangupComplete, Leg: a})
	x.unbridge(func(br liveBridge) bool { return br.a == a || br.b == a })
	x.unbridge(func(br liveBridge) bool { return br.a == b || br.b == b })
	x.emit(Effect{Kind: EffHangupComplete, Leg: b})
	x.uuidBridge(outerA, outerB)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// refer expands an attended transfer by a SIP REFER with Replaces as
// mod_sofia does it (src/mod/endpoints/mod_sofia/sofia.c, signalwire/
// freeswitch): br_a is the partner of the leg that got the REFER, br_b
// the partner of the replaced leg; when a leg's recording_follow_transfer
// is true its recordings move to its partner
// (switch_core_media_bug_transfer_recordings); then switch_ivr_uuid_bridge
// br_a br_b, which drops the two transferor legs.
func (x *expander) refer(s *Step) {
	o := x.legs[s.Other]
	switch {
	case s.Other == "":
		x.fail("other", "a refer step needs the consultation leg")
		return
	case o == nil:
		x.fail("other", "unknown leg %q", s.Other)
		return
	case s.Other == s.Leg:
		x.fail("other", "a leg cannot replace itself")
		return
	case !o.created || o.hungup:
		x.fail("other", "leg %q is not up", s.Other)
		return
	}
	var party [2]string
	for i, n := range []string{s.Leg, s.Other} {
		p := x.partners(n)
		if len(p) != 1 {
			x.fail("do", "refer: leg %q must be bridged to one party, not %d", n, len(p))
			return
		}
		party[i] = p[0]
	}
	if party[0] == party[1] || party[0] == s.Other || party[1] == s.Leg {
		x.fail("do", "refer: legs %q and %q are in one call", s.Leg, s.Other)
		return
	}
	x.emit(Effect{Kind: EffReplace, Leg: s.Leg, Other: party[0]})
	x.emit(Effect{Kind: EffReplace, Leg: s.Other, Other: party[1]})
	x.dropPartners(party[0], party[1])
	x.dropPartners(party[1], party[0])
	x.uuidBridge(party[0], party[1])
}
